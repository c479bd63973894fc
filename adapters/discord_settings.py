"""Discord ``/settings``: a person's style, strength and face pass for ``/anime`` and "Animefy", kept across
restarts in the same store as Telegram's (``bot/settings_store.py``). Shown and changed privately; the options
of the command are its buttons. The language follows the person's Discord app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from adapters.discord_i18n import interaction_translator
from adapters.discord_result import USER_PREFIX
from bot.i18n import Translator
from bot.restyle import FULL_STRENGTH
from bot.settings_store import ChatSettings

if TYPE_CHECKING:
    from adapters.discord import AnimeClient
    from bot.service import Service

def owner_of(interaction: discord.Interaction) -> str:  # type: ignore[type-arg]
    """The key a person's settings and kept photos are filed under."""
    return f"{USER_PREFIX}:{interaction.user.id}"


def chosen_style(settings: ChatSettings, service: Service) -> str:
    """The person's style when it is installed, else the server's default."""
    installed = {style.name for style in service.styles()}
    return settings.style if settings.style in installed else service.settings.default_style


def settings_text(settings: ChatSettings, service: Service, _: Translator) -> str:
    """Each setting on a line, then how to change them."""
    titles = {style.name: style.title for style in service.styles()}
    style = chosen_style(settings, service)
    return "\n".join(
        [
            _("Your settings for /anime and Animefy:"),
            _("Style: {style}", style=titles.get(style, style)),
            _("Strength: {percent}%", percent=settings.strength),
            _("Face pass: on") if settings.faces else _("Face pass: off"),
            _("Change them with the options of /settings; /forget deletes them."),
        ]
    )


async def settings_command(
    interaction: discord.Interaction[AnimeClient],
    style: str | None = None,
    strength: app_commands.Range[float, 0.0, 1.0] | None = None,
    faces: bool | None = None,
) -> None:
    """Show the person's settings, after changing the ones given."""
    _ = interaction_translator(interaction)
    store = interaction.client.service.chat_settings
    owner = owner_of(interaction)
    settings = await store.load(owner)
    changes: dict[str, object] = {}
    if style is not None:
        changes["style"] = style
    if strength is not None:
        changes["strength"] = round(strength * FULL_STRENGTH)
    if faces is not None:
        changes["faces"] = faces
    if changes:
        settings = settings.with_changes(**changes)
        await store.save(owner, settings)
    await interaction.response.send_message(settings_text(settings, interaction.client.service, _), ephemeral=True)
