"""Who an update is from, whether it is the bot's to answer, and in which language.

Settings belong to the chat (a private chat has the person's id, so there they are the person's); they live in
the service's ``SettingsStore`` (SQLite in the data dir, or Redis shared by every front end), read on each
update, so two front ends behind one webhook always agree. python-telegram-bot's ``BasePersistence`` does not
fit that: it loads ``chat_data`` once at start and writes it back on a timer, so front ends would overwrite each
other's changes.
"""

from __future__ import annotations

from typing import TypeVar

from telegram import Bot, CallbackQuery, Chat, Message, MessageEntity, Update, User
from telegram.constants import ChatType

from adapters.telegram.context import BotContext
from bot.i18n import Translator, pick_language
from bot.settings_store import ChatSettings

USER_PREFIX = "telegram:"

Part = TypeVar("Part")


def _present(part: Part | None, update: Update, what: str) -> Part:
    if part is None:  # a handler wired to the wrong kind of update: a bug, reported by the error handler
        raise ValueError(f"Telegram update {update.update_id} carries no {what}")
    return part


def message_of(update: Update) -> Message:
    """The message an update carries (a message handler's filters, or a button's query, make sure there is one)."""
    return _present(update.effective_message, update, "message")


def query_of(update: Update) -> CallbackQuery:
    """The button press an update carries (for the ``CallbackQueryHandler``s)."""
    return _present(update.callback_query, update, "button press")


def chat_of(update: Update) -> Chat:
    """The chat of an update (``gate.only_allowed_chats`` drops updates without one before any handler)."""
    return _present(update.effective_chat, update, "chat")


def person_of(update: Update) -> User:
    """The person who sent a message or pressed a button (the bot subscribes to no other updates)."""
    return _present(update.effective_user, update, "person")


def chat_owner(update: Update) -> str:
    """Whose settings an update reads: its chat's (in a private chat, the person's)."""
    return f"{USER_PREFIX}{chat_of(update).id}"


def person_owner(update: Update) -> str:
    """The person behind an update: whose source photos and sticker pack, and whose rate limit and queue."""
    return f"{USER_PREFIX}{person_of(update).id}"


def group_owner(update: Update) -> str | None:
    """The group chat an update was sent in, whose shared daily budget it is charged to (None: a private chat)."""
    chat = chat_of(update)
    return None if chat.type == ChatType.PRIVATE else f"{USER_PREFIX}{chat.id}"


async def chat_settings(update: Update, context: BotContext) -> ChatSettings:
    """The settings of the update's chat (the defaults when nothing was chosen)."""
    return await context.service.chat_settings.load(chat_owner(update))


def translator_for(settings: ChatSettings, update: Update) -> Translator:
    """The chat's chosen language, else the person's Telegram app language, else English."""
    user = update.effective_user
    return Translator(pick_language(settings.language, user.language_code if user else None))


async def translator(update: Update, context: BotContext) -> Translator:
    """The language to answer ``update`` in."""
    return translator_for(await chat_settings(update, context), update)


def is_addressed(message: Message, bot: Bot) -> bool:
    """Private chats always; in groups only replies to the bot or messages that mention it."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        return True
    handle = f"@{bot.username}".lower()
    kinds: list[str | None] = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]  # the type PTB's parsers take
    found = {**message.parse_entities(kinds), **message.parse_caption_entities(kinds)}
    return any(
        text.lower() == handle or (entity.user is not None and entity.user.id == bot.id)
        for entity, text in found.items()
    )


def answered_elsewhere(update: Update, context: BotContext, image: bool) -> bool:
    """Whether a message is not for its handler to answer: in a group and not addressed to the bot, or one item
    of an album (``image``: a picture to draw, else one to skip), which is answered with the whole album."""
    message = message_of(update)
    albums = context.albums
    if not is_addressed(message, context.bot) and not albums.is_collecting(message):
        return True
    return message.media_group_id is not None and albums.collect(update, context, image)
