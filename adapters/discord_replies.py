"""Answers every Discord interaction may need, whichever command or button it came from: privately, always."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from adapters.discord_i18n import interaction_translator
from bot.i18n import N_

if TYPE_CHECKING:
    from adapters.discord import AnimeClient

_log = logging.getLogger("adapters.discord")

NOT_ALLOWED = N_("This bot is not enabled here.")
CRASHED = N_("Something went wrong on my side. Please try again in a moment.")


async def check_allowed(interaction: discord.Interaction[AnimeClient]) -> bool:
    """True when the interaction comes from an allowed place; otherwise say so ephemerally."""
    if interaction.client.service.access.allows_guild(interaction.guild_id):
        return True
    await interaction.response.send_message(interaction_translator(interaction)(NOT_ALLOWED), ephemeral=True)
    return False


async def apologize(interaction: discord.Interaction[AnimeClient]) -> None:
    """Tell the person something broke, whether or not the interaction was answered yet."""
    crashed = interaction_translator(interaction)(CRASHED)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(crashed, ephemeral=True)
        else:
            await interaction.response.send_message(crashed, ephemeral=True)
    except discord.HTTPException:
        _log.warning("Could not tell a Discord user about a crash", exc_info=True)


def is_owner(interaction: discord.Interaction[AnimeClient]) -> bool:
    """Whether the button presser is the person whose command made the message (True when Discord doesn't say)."""
    metadata = interaction.message.interaction_metadata if interaction.message else None
    return metadata is None or metadata.user.id == interaction.user.id
