"""Telegram's inline keyboard under a result: what each button asks for, and re-styling the photo in place.

Buttons carry everything they need in their callback data (``key|style|strength``), so they work after a restart
for as long as the source photo is kept. While a press's job runs, the photo's caption gets one status line
("⏳ Re-styling as Hayao… 40%") and the pressed button a ⏳ mark; the other buttons stay live, and a newer press
on the same message supersedes the running one (``bot.restyle.LatestPress``). Both marks are derived from the
message itself, so they are removed the same way after a restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMedia,
    InputMediaAnimation,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
)
from telegram.constants import ChatType, InlineKeyboardButtonLimit

from animegan.manifest import Style
from bot.i18n import ENGLISH, Translator
from bot.jobs import JobError, JobHandle, JobProgress, JobStage
from bot.restyle import FULL_STRENGTH, restyle_status
from adapters.telegram_status import StatusLine, best_effort
from adapters.telegram_stickers import sticker_button

STRENGTH_STEP = 25
STYLE_BUTTONS_PER_ROW = 3
NOOP_DATA = "-"
CURRENT_MARK = "✓ "
PENDING_MARK = "⏳ "


@dataclass(frozen=True)
class Look:
    """What an inline button asks for: the cached source photo, a style and a strength in percent (0 = original)."""

    key: str
    style: str
    strength: int

    def to_callback_data(self) -> str:
        """``key|style|strength``, checked against Telegram's 64-byte limit."""
        data = f"{self.key}|{self.style}|{self.strength}"
        assert len(data.encode()) <= InlineKeyboardButtonLimit.MAX_CALLBACK_DATA, data
        return data

    @classmethod
    def from_callback_data(cls, data: str) -> Look | None:
        """The look a button carries, or None for anything else (a stale layout, a no-op button)."""
        parts = data.split("|")
        if len(parts) != 3 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], min(int(parts[2]), FULL_STRENGTH))


def keyboard(look: Look, styles: Iterable[Style], _: Translator = ENGLISH) -> InlineKeyboardMarkup:
    """One button per installed style, strength -/+ and "original"; the current look's own button does nothing."""

    def button(text: str, target: Look) -> InlineKeyboardButton:
        data = NOOP_DATA if target == look else target.to_callback_data()
        return InlineKeyboardButton(text, callback_data=data)

    strength = look.strength or FULL_STRENGTH
    style_buttons = [
        button(
            (CURRENT_MARK if s.name == look.style and look.strength else "") + s.title, Look(look.key, s.name, strength)
        )
        for s in styles
    ]
    rows = [style_buttons[i : i + STYLE_BUTTONS_PER_ROW] for i in range(0, len(style_buttons), STYLE_BUTTONS_PER_ROW)]
    weaker = Look(look.key, look.style, max(STRENGTH_STEP, look.strength - STRENGTH_STEP))
    stronger = Look(look.key, look.style, min(FULL_STRENGTH, look.strength + STRENGTH_STEP))
    rows.append([button(_("− strength"), weaker), button(_("+ strength"), stronger)])
    rows.append(
        [
            button((CURRENT_MARK if not look.strength else "") + _("Original"), Look(look.key, look.style, 0)),
            sticker_button(_),
        ]
    )
    return InlineKeyboardMarkup(rows)


def caption(look: Look, styles: dict[str, Style], notes: Iterable[str] = (), _: Translator = ENGLISH) -> str:
    """``Shinkai, strength 75%`` (or ``Original``), then any notes from the engine."""
    title = styles[look.style].title if look.style in styles else look.style
    head = _("Original") if not look.strength else _("{style}, strength {percent}%", style=title, percent=look.strength)
    return "\n".join([head, *map(_.say, notes)])


def may_restyle(reply: Message, user_id: int) -> bool:
    """Anyone in a private chat; in groups only the person whose photo the bot's ``reply`` answers."""
    if reply.chat.type == ChatType.PRIVATE or reply.reply_to_message is None:
        return True
    owner = reply.reply_to_message.from_user
    return owner is None or owner.id == user_id


def with_status(caption_text: str, status: str) -> str:
    """The caption of a photo being re-styled: its own caption, then one status line."""
    return f"{settled_caption(caption_text)}\n{PENDING_MARK}{status}"


def settled_caption(caption_text: str) -> str:
    """A caption without any re-style status line."""
    return "\n".join(line for line in caption_text.split("\n") if not line.startswith(PENDING_MARK))


def marked_keyboard(markup: InlineKeyboardMarkup | None, pressed: str | None) -> InlineKeyboardMarkup | None:
    """``markup`` with the button whose callback data is ``pressed`` marked as running (no other button marked)."""
    if markup is None:
        return None
    rows = [
        [
            InlineKeyboardButton(
                (PENDING_MARK if pressed is not None and b.callback_data == pressed else "")
                + b.text.removeprefix(PENDING_MARK),
                callback_data=b.callback_data,
            )
            for b in row
        ]
        for row in markup.inline_keyboard
    ]
    return InlineKeyboardMarkup(rows)


async def restyle_in_place(
    reply: Message, handle: JobHandle, look: Look, styles: dict[str, Style], pressed: str, _: Translator = ENGLISH
) -> None:
    """Follow a button's job on its message: a status line in the caption, then the new photo and keyboard.

    On failure the message is put back as it was and the person is told why. Cancelled (a newer press won):
    it stops where it is, and the newer press's edits take over.
    """
    settled = settled_caption(reply.caption or "")
    running_keyboard = marked_keyboard(reply.reply_markup, pressed)
    title = styles[look.style].title if look.style in styles else look.style

    async def show(status: str) -> None:
        await reply.edit_caption(with_status(settled, status), reply_markup=running_keyboard)

    first = restyle_status(title, look.strength, JobProgress(JobStage.QUEUED, position=handle.position), _)
    await best_effort(show(first))
    status = StatusLine(show, first)
    try:
        async for progress in handle.progress():
            if progress.stage not in (JobStage.DONE, JobStage.FAILED):
                status.show(restyle_status(title, look.strength, progress, _))
        result = await handle.result()
    except JobError as error:
        await status.close()
        await best_effort(reply.edit_caption(settled, reply_markup=marked_keyboard(reply.reply_markup, None)))
        await reply.reply_text(_.say(error.message))
        return
    finally:
        await status.close()
    text = caption(look, styles, result.notes, _)
    if reply.animation is not None:  # a clip's reply is re-drawn as the same kind
        media: InputMedia = InputMediaAnimation(result.image, caption=text, width=result.width, height=result.height)
    elif reply.video is not None:
        media = InputMediaVideo(result.image, caption=text, width=result.width, height=result.height,
                                supports_streaming=True)
    else:
        media = InputMediaPhoto(result.image, caption=text)
    await reply.edit_media(media, reply_markup=keyboard(look, styles.values(), _))
