"""The admins' slash commands ``/ban``, ``/unban`` and ``/usage``: for the person keys of ``ANIMEBOT_ADMIN_IDS``
only (anyone else gets a plain refusal); every answer is private, and every action is written to the audit log by
the core (``bot.admin_actions``)."""

from __future__ import annotations

import discord

from adapters.discord.checks import USER_PREFIX, person_key
from adapters.discord.client import AnimeClient
from adapters.discord.i18n import interaction_translator
from adapters.discord.texts import NAME_A_PERSON
from bot.admin_actions import NOT_AN_ADMIN, ban_reply, unban_reply, usage_reply
from bot.admin_actions import person_key as named_person
from bot.i18n import Translator

MAX_REASON_CHARS = 200


async def ban(interaction: discord.Interaction[AnimeClient], person: str, reason: str | None = None) -> None:
    """Block a person: the bot ignores them from now on."""
    found = await admin_and_target(interaction, person)
    if found is None:
        return
    admin, target, _ = found
    outcome = await interaction.client.service.admin.ban(admin, target, (reason or "")[:MAX_REASON_CHARS])
    await interaction.response.send_message(_.say(ban_reply(outcome, target)), ephemeral=True)


async def unban(interaction: discord.Interaction[AnimeClient], person: str) -> None:
    """Lift a person's ban."""
    found = await admin_and_target(interaction, person)
    if found is None:
        return
    admin, target, _ = found
    lifted = await interaction.client.service.admin.unban(admin, target)
    await interaction.response.send_message(_.say(unban_reply(lifted, target)), ephemeral=True)


async def usage(interaction: discord.Interaction[AnimeClient], person: str) -> None:
    """A person's daily budget today, and whether they are banned."""
    found = await admin_and_target(interaction, person)
    if found is None:
        return
    admin, target, _ = found
    report = await interaction.client.service.admin.usage(admin, target)
    await interaction.response.send_message(" ".join(_.say(line) for line in usage_reply(report)), ephemeral=True)


async def admin_and_target(
    interaction: discord.Interaction[AnimeClient], person: str
) -> tuple[str, str, Translator] | None:
    """(the admin's key, the person named, the admin's translator); anyone else, or an option naming no one, is
    answered here and gets None."""
    _ = interaction_translator(interaction)
    admin = person_key(interaction.user.id)
    if not interaction.client.service.admin.is_admin(admin):
        await interaction.response.send_message(_.say(NOT_AN_ADMIN), ephemeral=True)
        return None
    target = named_person(person, USER_PREFIX)
    if target is None:
        await interaction.response.send_message(_(NAME_A_PERSON), ephemeral=True)
        return None
    return admin, target, _
