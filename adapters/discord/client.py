"""The bot's Discord client: the settings, the service and the command tree every handler reaches through
``interaction.client``, never a module global.

It is the bottom of the package: it knows no command and no button itself (``app.build_client`` hands them in), so
the handlers above can name it in their types without importing it back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands

from adapters.discord.checks import apologize, check_allowed, check_not_banned
from adapters.discord.i18n import CatalogueTranslator
from bot.config import Settings
from bot.restyle import LatestPress
from bot.service import Service

_log = logging.getLogger(__name__)

# A button that works after a restart: discord.py rebuilds it from the custom id of the component pressed.
Button = discord.ui.DynamicItem[discord.ui.Button[Any]]


class AnimeClient(discord.Client):
    """A Discord client holding the settings, the service, the command tree and the re-styles being followed.

    ``buttons``: the classes of the result message's buttons, registered when the client logs in.
    """

    def __init__(self, settings: Settings, service: Service, buttons: Sequence[type[Button]] = ()) -> None:
        # The bot uses no voice: without this, discord.py warns at every start that PyNaCl and davey (its voice
        # dependencies) are missing. These class flags are the switch discord.py reads for those two warnings.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(intents=discord.Intents(guilds=True), max_messages=None)
        self.settings = settings
        self.service = service
        self.restyles: LatestPress[int] = LatestPress()  # result message id -> the press being followed
        self.buttons = tuple(buttons)
        # Installed to a server, or by a person to their own account (then usable in any server, DM or group DM,
        # the bot itself being in none of them).
        self.tree = AnimeCommandTree(
            self,
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
        )

    async def allows(self, interaction: discord.Interaction[discord.Client]) -> bool:
        """Whether the guild allow-list (``settings.allowed_guilds``) lets the interaction in and the person is not
        banned; if not, the person is told so privately (a banned one once a day)."""
        return await check_allowed(interaction, self.service.access) and await check_not_banned(
            interaction, self.service.bans
        )

    async def setup_hook(self) -> None:
        """Register the buttons and sync the commands globally, localized (after login, before the gateway)."""
        self.add_dynamic_items(*self.buttons)
        await self.tree.set_translator(CatalogueTranslator())
        try:
            synced = await self.tree.sync()
        except discord.HTTPException:
            _log.exception("Syncing Discord commands failed; the ones registered before stay in place")
        else:
            _log.info("Synced %d global Discord commands: %s", len(synced), ", ".join(c.name for c in synced))


class AnimeCommandTree(app_commands.CommandTree[AnimeClient]):
    """The command tree, with the guild allow-list applied to every command and a plain reply to crashes."""

    async def interaction_check(self, interaction: discord.Interaction[AnimeClient], /) -> bool:
        """Refuse (ephemerally) interactions from guilds outside ``settings.allowed_guilds``."""
        return await self.client.allows(interaction)

    async def on_error(
        self, interaction: discord.Interaction[AnimeClient], error: app_commands.AppCommandError, /
    ) -> None:
        """Log the crash and tell the person in a plain sentence."""
        _log.error("Discord command %r crashed", interaction.command and interaction.command.name, exc_info=error)
        await apologize(interaction)
