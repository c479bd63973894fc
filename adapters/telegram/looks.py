"""What a result looks like and the inline keyboard under it: each button carries the look it asks for.

Buttons carry everything they need in their callback data (``key|style|strength``), so they work after a restart
for as long as the source photo is kept (``Accepted.source`` is its key).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.constants import ChatType, InlineKeyboardButtonLimit

from adapters.telegram.texts import STICKER_BUTTON
from animegan.manifest import Style
from bot.i18n import ENGLISH, Translator
from bot.orders import Accepted
from bot.settings_store import FULL_STRENGTH

PHOTO_FORMAT = "jpeg"  # Telegram re-encodes photos as JPEG anyway
STRENGTH_STEP = 25
STYLE_BUTTONS_PER_ROW = 3
NOOP_DATA = "-"
STICKER_DATA = "stk"
CURRENT_MARK = "✓ "


@dataclass(frozen=True)
class Look:
    """What an inline button asks for: the cached source photo, a style and a strength in percent (0 = original)."""

    key: str
    style: str
    strength: int

    @classmethod
    def of(cls, accepted: Accepted) -> Look:
        """The look of an accepted order: its kept photo, its style and strength."""
        return cls(accepted.source, accepted.style, accepted.percent)

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


def title_of(style: str, styles: Mapping[str, Style]) -> str:
    """A style's title (``Shinkai``), or its name when it is not installed here."""
    return styles[style].title if style in styles else style


def sticker_button(_: Translator) -> InlineKeyboardButton:
    """The "Sticker" button of a result's keyboard (``stickers.on_sticker_button``)."""
    return InlineKeyboardButton(_(STICKER_BUTTON), callback_data=STICKER_DATA)


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


def caption(look: Look, styles: Mapping[str, Style], notes: Iterable[str] = (), _: Translator = ENGLISH) -> str:
    """``Shinkai, strength 75%`` (or ``Original``), then any notes from the engine."""
    title = title_of(look.style, styles)
    head = _("Original") if not look.strength else _("{style}, strength {percent}%", style=title, percent=look.strength)
    return "\n".join([head, *map(_.say, notes)])


def may_restyle(reply: Message, user_id: int) -> bool:
    """Anyone in a private chat; in groups only the person whose photo the bot's ``reply`` answers."""
    if reply.chat.type == ChatType.PRIVATE or reply.reply_to_message is None:
        return True
    owner = reply.reply_to_message.from_user
    return owner is None or owner.id == user_id
