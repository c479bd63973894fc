"""The Discord result message: its caption, its file, its buttons, and re-styling it in place from them.

Buttons: one per installed style (up to 4 rows of 5), then a row with strength −/+ and "Original", within
Discord's 5 rows of 5. Each carries what it asks for in its custom id (``anime:<key>:<style>:<percent>``, plus
``:less``, ``:more`` or ``:orig`` on the controls, since custom ids must be unique in a message) and is a
``DynamicItem``, so it works after a restart for as long as the source photo is kept. The look shown is the one
whose buttons are disabled; while a press's job runs, its button is marked ⏳ and the message's text ends with one
status line. A newer press on the same message supersedes the running one (``bot.restyle.LatestPress``).
"""

from __future__ import annotations

import io
import logging
import math
import mimetypes
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import discord

from adapters.discord.checks import apologize, is_owner
from adapters.discord.client import AnimeClient
from adapters.discord.i18n import interaction_translator
from adapters.discord.orders import submit_order
from adapters.discord.progress import follow
from adapters.discord.stickers import StickerButton
from adapters.discord.texts import LICENCE_NOTE, NOT_YOURS, SOURCE_EXPIRED, STICKER_LABEL
from animegan.manifest import Style
from bot.i18n import ENGLISH, Translator
from bot.jobs import JobError, JobHandle, JobProgress, JobResult, JobStage
from bot.orders import SourceExpired
from bot.restyle import restyle_status
from bot.settings_store import FULL_STRENGTH

_log = logging.getLogger(__name__)

BUTTON_ID = re.compile(
    r"anime:(?P<key>[^:]{1,16}):(?P<style>[a-z0-9_]{1,40}):(?P<percent>\d{1,3})(?::(?P<role>less|more|orig))?"
)
BUTTONS_PER_ROW = 5
MAX_STYLE_BUTTONS = 20  # 4 rows of 5; Discord's 5th and last row holds the controls
STRENGTH_STEP = 25
PENDING_MARK = "⏳ "
LESS, MORE, ORIGINAL = "less", "more", "orig"


@dataclass(frozen=True)
class ButtonLook:
    """What a button asks for: the kept source photo, a style, and a strength in percent (0: the original)."""

    key: str
    style: str
    percent: int

    def custom_id(self, role: str | None = None) -> str:
        """``anime:<key>:<style>:<percent>``, with ``:<role>`` on the strength and original controls."""
        return f"anime:{self.key}:{self.style}:{self.percent}" + (f":{role}" if role else "")


class StyleButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=BUTTON_ID):
    """A button re-styling the photo of its message with the look in its custom id."""

    def __init__(
        self,
        look: ButtonLook,
        *,
        label: str | None = None,
        role: str | None = None,
        current: bool = False,
        pending: bool = False,
        row: int | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=(PENDING_MARK if pending else "") + (label or look.style),
                style=discord.ButtonStyle.primary if current else discord.ButtonStyle.secondary,
                disabled=current,
                custom_id=look.custom_id(role),
                row=row,
            )
        )
        self.look = look

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> StyleButton:
        """Rebuild the button from a pressed component's custom id."""
        return cls(ButtonLook(match["key"], match["style"], min(int(match["percent"]), FULL_STRENGTH)))

    # discord.py hands its items an interaction of any client (``Interaction[Any]``); this one is only registered
    # on an ``AnimeClient``, so the methods pass it on to functions typed for that client.

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """Apply the guild allow-list and let only the photo's sender re-style it."""
        return await may_restyle(interaction)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Queue the new look (a refusal is answered privately), then follow it on the message, last press wins."""
        await restyle(interaction, self.look)


async def may_restyle(interaction: discord.Interaction[AnimeClient]) -> bool:
    """Whether the presser may re-style the message: allowed here, and the person whose command made it."""
    if not await interaction.client.allows(interaction):
        return False
    if not is_owner(interaction):
        await interaction.response.send_message(interaction_translator(interaction)(NOT_YOURS), ephemeral=True)
        return False
    return True


async def restyle(interaction: discord.Interaction[AnimeClient], look: ButtonLook) -> None:
    """Order the button's look of the message's kept photo, then follow it on the message, the last press winning.

    A refusal (the photo expired, the rate limit, a full queue) is answered privately and leaves the message as
    it is.
    """
    _ = interaction_translator(interaction)
    message = interaction.message
    if message is None:  # a button always has its message; without one there is nothing to re-style
        await interaction.response.send_message(_(SOURCE_EXPIRED), ephemeral=True)
        return
    try:
        accepted = await submit_order(
            interaction, source=look.key, style=look.style, strength=look.percent / FULL_STRENGTH
        )
    except SourceExpired:
        await interaction.response.send_message(_(SOURCE_EXPIRED), ephemeral=True)
        return
    except JobError as error:
        await interaction.response.send_message(_.say(error.message), ephemeral=True)
        return
    await interaction.response.defer()
    try:
        await interaction.client.restyles.run(
            message.id, lambda: restyle_in_place(interaction, accepted.handle, look, _)
        )
    except Exception:
        _log.exception("Discord re-style button crashed")
        await apologize(interaction)


# The message


def result_view(
    styles: list[Style], current: ButtonLook, pending: ButtonLook | None = None, _: Translator = ENGLISH
) -> discord.ui.View:
    """Style buttons, then strength −/+ and "Original"; the buttons of the ``current`` look are disabled."""
    view = discord.ui.View(timeout=None)
    styled = current.percent or FULL_STRENGTH  # from the original, a style button brings the full style back
    for index, style in enumerate(styles[:MAX_STYLE_BUTTONS]):
        look = replace(current, style=style.name, percent=styled)
        view.add_item(
            StyleButton(
                look, label=style.title, current=look == current, pending=look == pending, row=index // BUTTONS_PER_ROW
            )
        )
    controls_row = math.ceil(min(len(styles), MAX_STYLE_BUTTONS) / BUTTONS_PER_ROW)
    controls = [
        (_("− strength"), LESS, replace(current, percent=max(STRENGTH_STEP, current.percent - STRENGTH_STEP))),
        (_("+ strength"), MORE, replace(current, percent=min(FULL_STRENGTH, current.percent + STRENGTH_STEP))),
        (_("Original"), ORIGINAL, replace(current, percent=0)),
    ]
    for label, role, look in controls:
        view.add_item(
            StyleButton(
                look, label=label, role=role, current=look == current, pending=look == pending, row=controls_row
            )
        )
    view.add_item(StickerButton(current.key, current.style, current.percent, label=_(STICKER_LABEL), row=controls_row))
    return view


def shown_look(message: discord.Message) -> ButtonLook | None:
    """The look a result message shows now, read from its disabled button (None on a message without buttons)."""
    for row in message.components:
        for button in getattr(row, "children", []):
            match = BUTTON_ID.fullmatch(getattr(button, "custom_id", None) or "")
            if match is not None and button.disabled:
                return ButtonLook(match["key"], match["style"], int(match["percent"]))
    return None


def settled_text(content: str) -> str:
    """A result's text without any re-style status line."""
    return "\n".join(line for line in content.split("\n") if not line.startswith(PENDING_MARK))


def caption(result: JobResult, styles: list[Style], _: Translator = ENGLISH) -> str:
    """The message text under a result: style, strength, time, the engine's notes, and the licence."""
    titles = {style.name: style.title for style in styles}
    if result.strength:
        head = f"**{titles.get(result.style, result.style)}** · " + _(
            "strength {percent}%", percent=round(result.strength * FULL_STRENGTH)
        )
    else:
        head = f"**{_('Original')}**"
    lines = [
        f"{head} · " + _("{seconds:.1f} s", seconds=result.seconds),
        *(f"-# {_.say(note)}" for note in result.notes),
        f"-# {_(LICENCE_NOTE)}",
    ]
    return "\n".join(lines)


def result_filename(result: JobResult) -> str:
    """A file name whose extension matches the result's kind (``anime-shinkai.jpg``)."""
    extension = mimetypes.guess_extension(result.mime) or "." + result.mime.rpartition("/")[2]
    return f"anime-{result.style}{extension}"


async def show_result(
    interaction: discord.Interaction[AnimeClient],
    result: JobResult,
    key: str,
    percent: int,
    edit: Callable[..., Awaitable[Any]] | None = None,
) -> None:
    """Put the result, its caption and its buttons in the interaction's message (or the one ``edit`` edits)."""
    styles = interaction.client.service.styles()
    _ = interaction_translator(interaction)
    await (edit or interaction.edit_original_response)(
        content=caption(result, styles, _),
        attachments=[discord.File(io.BytesIO(result.image), filename=result_filename(result))],
        view=result_view(styles, ButtonLook(key, result.style, percent), _=_),
    )


async def restyle_in_place(
    interaction: discord.Interaction[AnimeClient], handle: JobHandle, look: ButtonLook, _: Translator = ENGLISH
) -> None:
    """Follow a button's job on its message: one status line and the pressed button marked, then the result.

    On failure the message is put back as it was and the person is told privately.
    """
    assert interaction.message is not None
    styles = interaction.client.service.styles()
    titles = {style.name: style.title for style in styles}
    shown = shown_look(interaction.message) or replace(look, percent=FULL_STRENGTH)
    text = settled_text(interaction.message.content)
    running = result_view(styles, shown, pending=look, _=_)

    def status(event: JobProgress) -> str | None:
        if event.stage in (JobStage.DONE, JobStage.FAILED):
            return None
        return restyle_status(titles.get(look.style, look.style), look.percent, event, _)

    async def show(line: str) -> None:
        await interaction.edit_original_response(content=f"{text}\n{PENDING_MARK}{line}", view=running)

    try:
        result = await follow(handle, status, show)
    except JobError as error:
        await interaction.edit_original_response(content=text, view=result_view(styles, shown, _=_))
        await interaction.followup.send(_.say(error.message), ephemeral=True)
        return
    await show_result(interaction, result, look.key, look.percent)
