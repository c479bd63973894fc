"""Telegram ``/settings`` and ``/forget``: a chat's style, strength, face pass and language, kept across restarts.

The settings message's buttons carry ``cfg:<field>:<value>``; each press saves and redraws the message. Where the
settings live, and whose they are, is told in ``chats``.
"""

from __future__ import annotations

from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from adapters.telegram.chats import (
    chat_of,
    chat_owner,
    chat_settings,
    message_of,
    person_of,
    person_owner,
    query_of,
    translator,
    translator_for,
)
from adapters.telegram.context import BotContext
from adapters.telegram.looks import CURRENT_MARK, STRENGTH_STEP, STYLE_BUTTONS_PER_ROW, title_of
from adapters.telegram.texts import privacy_note
from animegan.manifest import Style
from bot.i18n import LANGUAGES, Translator
from bot.settings_store import FULL_STRENGTH, ChatSettings

SETTINGS_DATA_PREFIX = "cfg:"
SETTINGS_DATA_PATTERN = r"^cfg:"


def settings_text(
    settings: ChatSettings, styles: dict[str, Style], style: str, _: Translator, source_ttl: float
) -> str:
    """The settings message: each setting on a line, then what is kept."""
    language = LANGUAGES[_.language]
    return "\n".join(
        [
            _("Settings for this chat:"),
            _("Style: {style}", style=title_of(style, styles)),
            _("Strength: {percent}%", percent=settings.strength),
            _("Face pass: on") if settings.faces else _("Face pass: off"),
            _("Language: {language}", language=language),
            "",
            privacy_note(_, source_ttl),
        ]
    )


def settings_keyboard(
    settings: ChatSettings, styles: Sequence[Style], style: str, _: Translator
) -> InlineKeyboardMarkup:
    """A button per style, strength −/+, the face pass switch and a button per language (current ones marked)."""

    def mark(current: bool, text: str) -> str:
        return (CURRENT_MARK if current else "") + text

    style_buttons = [
        InlineKeyboardButton(mark(s.name == style, s.title), callback_data=f"{SETTINGS_DATA_PREFIX}style:{s.name}")
        for s in styles
    ]
    rows = [style_buttons[i : i + STYLE_BUTTONS_PER_ROW] for i in range(0, len(style_buttons), STYLE_BUTTONS_PER_ROW)]
    weaker = max(STRENGTH_STEP, settings.strength - STRENGTH_STEP)
    stronger = min(FULL_STRENGTH, settings.strength + STRENGTH_STEP)
    rows.append(
        [
            InlineKeyboardButton(_("− strength"), callback_data=f"{SETTINGS_DATA_PREFIX}strength:{weaker}"),
            InlineKeyboardButton(_("+ strength"), callback_data=f"{SETTINGS_DATA_PREFIX}strength:{stronger}"),
        ]
    )
    faces_text = _("Face pass: on") if settings.faces else _("Face pass: off")
    rows.append(
        [InlineKeyboardButton(faces_text, callback_data=f"{SETTINGS_DATA_PREFIX}faces:{0 if settings.faces else 1}")]
    )
    rows.append(
        [
            InlineKeyboardButton(mark(code == _.language, name), callback_data=f"{SETTINGS_DATA_PREFIX}lang:{code}")
            for code, name in LANGUAGES.items()
        ]
    )
    return InlineKeyboardMarkup(rows)


def changed(settings: ChatSettings, data: str, installed: set[str]) -> ChatSettings | None:
    """The settings after a press carrying ``data``, or None for data that is stale or not understood."""
    field, _, value = data.removeprefix(SETTINGS_DATA_PREFIX).partition(":")
    if field == "style" and value in installed:
        return settings.with_changes(style=value)
    if field == "strength" and value.isdigit() and STRENGTH_STEP <= int(value) <= FULL_STRENGTH:
        return settings.with_changes(strength=int(value))
    if field == "faces" and value in ("0", "1"):
        return settings.with_changes(faces=value == "1")
    if field == "lang" and value in LANGUAGES:
        return settings.with_changes(language=value)
    return None


async def on_settings(update: Update, context: BotContext) -> None:
    """/settings: the chat's settings with buttons to change them."""
    service = context.service
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    styles = service.styles()
    style = service.style_for(settings)
    await message_of(update).reply_text(
        settings_text(settings, {s.name: s for s in styles}, style, _, service.settings.source_cache_ttl),
        reply_markup=settings_keyboard(settings, styles, style, _),
    )


async def on_settings_button(update: Update, context: BotContext) -> None:
    """A settings button: save the change and redraw the settings message in the (maybe new) language."""
    query = query_of(update)
    service = context.service
    styles = service.styles()
    settings = await chat_settings(update, context)
    new = changed(settings, query.data or "", {s.name for s in styles})
    if new is None or new == settings:
        await query.answer()
        return
    await service.chat_settings.save(chat_owner(update), new)
    _ = translator_for(new, update)
    style = service.style_for(new)
    await query.answer(_("Saved."))
    await query.edit_message_text(
        settings_text(new, {s.name: s for s in styles}, style, _, service.settings.source_cache_ttl),
        reply_markup=settings_keyboard(new, styles, style, _),
    )


async def on_forget(update: Update, context: BotContext) -> None:
    """/forget: delete the person's settings, photos and sticker pack record (and a private chat's settings)."""
    _ = await translator(update, context)  # before forgetting: the answer is still in their language
    owners = {person_owner(update)}
    if chat_of(update).id == person_of(update).id:
        owners.add(chat_owner(update))
    photos = await context.service.forget(*sorted(owners))
    await message_of(update).reply_text(
        _.plural(
            "Done: I deleted your settings and {count} kept photo. I keep nothing else about you.",
            "Done: I deleted your settings and {count} kept photos. I keep nothing else about you.",
            photos,
        )
    )
