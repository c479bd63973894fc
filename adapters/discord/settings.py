"""Discord ``/settings``: a person's style, strength and face pass for ``/anime`` and "Animefy", kept across
restarts in the same store as Telegram's (``bot/settings_store.py``). Shown and changed privately; the options
of the command are its buttons. The language follows the person's Discord app.
"""

from __future__ import annotations

import discord
from discord import app_commands

from adapters.discord.checks import person_key
from adapters.discord.client import AnimeClient
from adapters.discord.i18n import interaction_translator
from bot.i18n import Translator
from bot.service import Service
from bot.settings_store import FULL_STRENGTH, ChatSettings


def settings_text(settings: ChatSettings, service: Service, _: Translator) -> str:
    """Each setting on a line, then how to change them."""
    titles = {style.name: style.title for style in service.styles()}
    style = service.style_for(settings)
    return "\n".join(
        [
            _("Your settings for /anime and Animefy:"),
            _("Style: {style}", style=titles.get(style, style)),
            _("Strength: {percent}%", percent=settings.strength),
            _("Face pass: on") if settings.faces else _("Face pass: off"),
            _("Change them with the options of /settings; /forget deletes them."),
        ]
    )


async def show_settings(
    interaction: discord.Interaction[AnimeClient],
    style: str | None = None,
    strength: app_commands.Range[float, 0.0, 1.0] | None = None,
    faces: bool | None = None,
) -> None:
    """Show the person's settings, after changing the ones given."""
    _ = interaction_translator(interaction)
    store = interaction.client.service.chat_settings
    person = person_key(interaction.user.id)
    settings = await store.load(person)
    changes: dict[str, object] = {}
    if style is not None:
        changes["style"] = style
    if strength is not None:
        changes["strength"] = round(strength * FULL_STRENGTH)
    if faces is not None:
        changes["faces"] = faces
    if changes:
        settings = settings.with_changes(**changes)
        await store.save(person, settings)
    await interaction.response.send_message(settings_text(settings, interaction.client.service, _), ephemeral=True)
