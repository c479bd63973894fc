"""What every Discord interaction is checked against, whichever command or button it came from, and the private
answers those checks give: the guild allow-list, the owner of a result message, the key a person is filed under,
and the apology for a crash.

These know nothing of the bot's client (they sit below it): what they need from the service is passed in.
"""

from __future__ import annotations

import logging

import discord

from adapters.discord.i18n import interaction_translator
from adapters.discord.texts import CRASHED, NOT_ALLOWED
from bot.limits import AccessList

_log = logging.getLogger(__name__)

USER_PREFIX = "discord"


def person_key(user_id: int) -> str:
    """The key a Discord user's settings, kept photos, queue share and rate limit are filed under."""
    return f"{USER_PREFIX}:{user_id}"


async def check_allowed(interaction: discord.Interaction[discord.Client], access: AccessList) -> bool:
    """True when the interaction comes from a place ``access`` allows; otherwise say so ephemerally."""
    if access.allows_guild(interaction.guild_id):
        return True
    await interaction.response.send_message(interaction_translator(interaction)(NOT_ALLOWED), ephemeral=True)
    return False


async def apologize(interaction: discord.Interaction[discord.Client]) -> None:
    """Tell the person something broke, whether or not the interaction was answered yet."""
    crashed = interaction_translator(interaction)(CRASHED)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(crashed, ephemeral=True)
        else:
            await interaction.response.send_message(crashed, ephemeral=True)
    except discord.HTTPException:
        _log.warning("Could not tell a Discord user about a crash", exc_info=True)


def is_owner(interaction: discord.Interaction[discord.Client]) -> bool:
    """Whether the button presser is the person whose command made the message (True when Discord doesn't say)."""
    metadata = interaction.message.interaction_metadata if interaction.message else None
    return metadata is None or metadata.user.id == interaction.user.id
