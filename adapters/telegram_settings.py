"""Telegram ``/settings`` and ``/forget``: a chat's style, strength, face pass and language, kept across restarts.

Settings belong to the chat (a private chat has the person's id, so there they are the person's); they live in
the service's ``SettingsStore`` (SQLite in the data dir, or Redis shared by every front end), read on each
update, so two front ends behind one webhook always agree. python-telegram-bot's ``BasePersistence`` does not
fit that: it loads ``chat_data`` once at start and writes it back on a timer, so front ends would overwrite each
other's changes.

The settings message's buttons carry ``cfg:<field>:<value>``; each press saves and redraws the message.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from animegan.manifest import Style
from bot.i18n import LANGUAGES, Translator, pick_language
from bot.service import Service
from bot.settings_store import FULL_STRENGTH, ChatSettings

SERVICE_KEY = "service"
USER_PREFIX = "telegram:"
SETTINGS_DATA_PREFIX = "cfg:"
SETTINGS_DATA_PATTERN = r"^cfg:"
STRENGTH_STEP = 25
STYLE_BUTTONS_PER_ROW = 3
CURRENT_MARK = "✓ "

SECONDS_PER_MINUTE = 60


def privacy_note(_: Translator, source_ttl: float) -> str:
    """What the bot keeps about a person, with how long photos stay (``source_ttl`` seconds)."""
    return _.plural(
        "What I keep: your settings (style, strength, face pass, language) until you send /forget; your photos for "
        "{count} minute, so the buttons under a picture can redraw it; and the name of your sticker pack. Nothing "
        "else. /forget deletes all of it at once.",
        "What I keep: your settings (style, strength, face pass, language) until you send /forget; your photos for "
        "{count} minutes, so the buttons under a picture can redraw it; and the name of your sticker pack. Nothing "
        "else. /forget deletes all of it at once.",
        max(1, round(source_ttl / SECONDS_PER_MINUTE)),
    )


def chat_owner(update: Update) -> str:
    """Whose settings an update reads: its chat's (in a private chat, the person's)."""
    return f"{USER_PREFIX}{update.effective_chat.id}"


def person_owner(update: Update) -> str:
    """The person behind an update (their source photos and sticker pack)."""
    return f"{USER_PREFIX}{update.effective_user.id}"


def _service(context: ContextTypes.DEFAULT_TYPE) -> Service:
    return context.bot_data[SERVICE_KEY]


async def chat_settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> ChatSettings:
    """The settings of the update's chat (the defaults when nothing was chosen)."""
    return await _service(context).chat_settings.load(chat_owner(update))


def translator_for(settings: ChatSettings, update: Update) -> Translator:
    """The chat's chosen language, else the person's Telegram app language, else English."""
    user = update.effective_user
    return Translator(pick_language(settings.language, user.language_code if user else None))


async def translator(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Translator:
    """The language to answer ``update`` in."""
    return translator_for(await chat_settings(update, context), update)


def effective_style(settings: ChatSettings, service: Service) -> str:
    """The chat's style when it is installed, else the server's default."""
    installed = {style.name for style in service.styles()}
    return settings.style if settings.style in installed else service.settings.default_style


def settings_text(
    settings: ChatSettings, styles: dict[str, Style], style: str, _: Translator, source_ttl: float
) -> str:
    """The settings message: each setting on a line, then what is kept."""
    title = styles[style].title if style in styles else style
    language = LANGUAGES[_.language]
    return "\n".join(
        [
            _("Settings for this chat:"),
            _("Style: {style}", style=title),
            _("Strength: {percent}%", percent=settings.strength),
            _("Face pass: on") if settings.faces else _("Face pass: off"),
            _("Language: {language}", language=language),
            "",
            privacy_note(_, source_ttl),
        ]
    )


def settings_keyboard(settings: ChatSettings, styles: list[Style], style: str, _: Translator) -> InlineKeyboardMarkup:
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


async def on_settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/settings: the chat's settings with buttons to change them."""
    service = _service(context)
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    styles = service.styles()
    style = effective_style(settings, service)
    await update.effective_message.reply_text(
        settings_text(settings, {s.name: s for s in styles}, style, _, service.settings.source_cache_ttl),
        reply_markup=settings_keyboard(settings, styles, style, _),
    )


async def on_settings_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A settings button: save the change and redraw the settings message in the (maybe new) language."""
    query = update.callback_query
    service = _service(context)
    styles = service.styles()
    settings = await chat_settings(update, context)
    new = changed(settings, query.data or "", {s.name for s in styles})
    if new is None or new == settings:
        await query.answer()
        return
    await service.chat_settings.save(chat_owner(update), new)
    _ = translator_for(new, update)
    style = effective_style(new, service)
    await query.answer(_("Saved."))
    await query.edit_message_text(
        settings_text(new, {s.name: s for s in styles}, style, _, service.settings.source_cache_ttl),
        reply_markup=settings_keyboard(new, styles, style, _),
    )


async def on_forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/forget: delete the person's settings, photos and sticker pack record (and a private chat's settings)."""
    service = _service(context)
    _ = await translator(update, context)  # before forgetting: the answer is still in their language
    owners = {person_owner(update)}
    if update.effective_chat.id == update.effective_user.id:
        owners.add(chat_owner(update))
    photos = await service.forget(*sorted(owners))
    await update.effective_message.reply_text(
        _.plural(
            "Done: I deleted your settings and {count} kept photo. I keep nothing else about you.",
            "Done: I deleted your settings and {count} kept photos. I keep nothing else about you.",
            photos,
        )
    )
