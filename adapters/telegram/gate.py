"""Around every Telegram update: the allowed-chats gate before any handler, and what a failed update does."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from adapters.telegram.context import BotContext
from adapters.telegram.texts import SOMETHING_WENT_WRONG
from bot.i18n import Translator, pick_language

logger = logging.getLogger(__name__)


async def only_allowed_chats(update: Update, context: BotContext) -> None:
    """Drop updates from chats outside ``settings.allowed_chats`` (when it is set) before any handler runs."""
    chat = update.effective_chat
    if chat is None or not context.service.access.allows_chat(chat.id):
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
