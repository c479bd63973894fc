"""The Discord result's "Sticker" button: the picture the message shows, as a 512 px WEBP file, sent privately
to whoever pressed it (to save, or to add as a server sticker). No new job: the sticker is made from the
message's own attachment."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import discord

from adapters.discord.client import AnimeClient
from adapters.discord.i18n import interaction_translator
from adapters.discord.texts import NO_PICTURE, STICKER_LABEL

_log = logging.getLogger(__name__)

STICKER_ID = re.compile(r"anime:(?P<key>[^:]{1,16}):(?P<style>[a-z0-9_]{1,40}):(?P<percent>\d{1,3}):sticker")


class StickerButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=STICKER_ID):
    """Sends the message's picture as a 512 px WEBP sticker file, ephemerally.

    discord.py hands its items an interaction of any client (``Interaction[Any]``); this one is only registered
    on an ``AnimeClient``, so each method passes it on to a function typed for that client.
    """

    def __init__(
        self, key: str, style: str, percent: int, *, label: str = STICKER_LABEL, row: int | None = None
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji="🎨",
                style=discord.ButtonStyle.secondary,
                custom_id=f"anime:{key}:{style}:{percent}:sticker",
                row=row,
            )
        )
        self.key, self.style, self.percent = key, style, percent

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> StickerButton:
        """Rebuild the button from a pressed component's custom id."""
        return cls(match["key"], match["style"], int(match["percent"]))

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """Apply the guild allow-list."""
        client: AnimeClient = interaction.client
        return await client.allows(interaction)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Make the sticker from the message's picture and send it privately."""
        await send_sticker(interaction, self.style)


async def send_sticker(interaction: discord.Interaction[AnimeClient], style: str) -> None:
    """Make a sticker of the picture the interaction's message shows (in ``style``) and send it privately."""
    _ = interaction_translator(interaction)
    pictures = interaction.message.attachments if interaction.message else []
    if not pictures:
        await interaction.response.send_message(_(NO_PICTURE), ephemeral=True)
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        sticker = await interaction.client.service.sticker(await pictures[0].read())
    except (discord.HTTPException, ValueError):
        _log.warning("Making a Discord sticker failed", exc_info=True)
        await interaction.followup.send(_(NO_PICTURE), ephemeral=True)
        return
    name = f"anime-{style}-sticker.webp"
    await interaction.followup.send(
        _("Your sticker: 512 px WEBP."), file=discord.File(io.BytesIO(sticker), filename=name), ephemeral=True
    )
