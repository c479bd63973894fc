"""What every Discord interaction is checked against, whichever command or button it came from, and the private
answers those checks give: the guild allow-list, the bans, the owner of a result message, the keys a person and a
guild are filed under, a refusal in words, and the apology for a crash.

These know nothing of the bot's client (they sit below it): what they need from the service is passed in.
"""

from __future__ import annotations

import logging

import discord

from adapters.discord.i18n import interaction_translator
from adapters.discord.texts import CRASHED, NOT_ALLOWED
from bot.bans import BANNED_MESSAGE, BanStore
from bot.budgets import BudgetExhausted
from bot.i18n import Translator
from bot.jobs import JobError
from bot.limits import AccessList

_log = logging.getLogger(__name__)

USER_PREFIX = "discord"
GUILD_PREFIX = "discord-guild"


def person_key(user_id: int) -> str:
    """The key a Discord user's settings, kept photos, queue share and rate limit are filed under."""
    return f"{USER_PREFIX}:{user_id}"


def guild_key(guild_id: int | None) -> str | None:
    """The key a guild's shared daily budget is filed under (None: a direct message or a group DM)."""
    return None if guild_id is None else f"{GUILD_PREFIX}:{guild_id}"


async def check_not_banned(interaction: discord.Interaction[discord.Client], bans: BanStore) -> bool:
    """True unless the person is banned; a banned person is told so privately, once a day, and otherwise dropped."""
    person = person_key(interaction.user.id)
    if not await bans.is_banned(person):
        return True
    if await bans.should_tell(person):
        await interaction.response.send_message(interaction_translator(interaction)(BANNED_MESSAGE), ephemeral=True)
    return False


def refusal_text(error: JobError, _: Translator) -> str:
    """A refusal's sentence in the person's language; a budget's reset time as Discord's timestamp markup, which
    each reader's app shows in their own time zone."""
    if isinstance(error, BudgetExhausted):
        return _.say(error.said_at(f"<t:{int(error.resets_at.timestamp())}:t>"))
    return _.say(error.message)


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
