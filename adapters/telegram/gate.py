"""Around every Telegram update: the allowed-chats gate and the ban gate before any handler, and what a failed
update does."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from adapters.telegram.chats import USER_PREFIX
from adapters.telegram.context import BotContext
from adapters.telegram.texts import SOMETHING_WENT_WRONG
from bot.bans import BANNED_MESSAGE
from bot.i18n import Translator, pick_language

logger = logging.getLogger(__name__)


async def only_allowed_chats(update: Update, context: BotContext) -> None:
    """Drop updates from chats outside ``settings.allowed_chats`` (when it is set) before any handler runs."""
    chat = update.effective_chat
    if chat is None or not context.service.access.allows_chat(chat.id):
        raise ApplicationHandlerStop


async def drop_banned(update: Update, context: BotContext) -> None:
    """Drop a banned person's updates before any handler (so before any download); the first one of each day gets
    one short answer."""
    user = update.effective_user
    if user is None:
        return
    person = f"{USER_PREFIX}{user.id}"
    bans = context.service.bans
    if not await bans.is_banned(person):
        return
    if await bans.should_tell(person):
        _ = Translator(pick_language(user.language_code))
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(_(BANNED_MESSAGE), show_alert=True)
            elif update.effective_message is not None:
                await update.effective_message.reply_text(_(BANNED_MESSAGE))
        except TelegramError:
            logger.warning("Could not tell a banned person so")
    raise ApplicationHandlerStop


async def on_error(update: object, context: BotContext) -> None:
    """Log a failed update with its chat and user (never the token), and tell the person something went wrong."""
    chat = update.effective_chat if isinstance(update, Update) else None
    user = update.effective_user if isinstance(update, Update) else None
    logger.error(
        "Telegram update %s failed (chat %s, user %s)",
        update.update_id if isinstance(update, Update) else "-",
        chat.id if chat else "-",
        user.id if user else "-",
        exc_info=context.error,
    )
    message = update.effective_message if isinstance(update, Update) else None
    if message is not None:
        try:
            _ = Translator(pick_language(user.language_code if user else None))
            await message.reply_text(_(SOMETHING_WENT_WRONG))
        except TelegramError:
            logger.warning("Could not tell chat %s about the failure", message.chat_id)
