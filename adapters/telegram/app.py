"""The Telegram application: every handler wired to the updates it answers, in one table.

This is the only module that imports the handlers; each handler module imports only what lies below it
(``chats``, ``looks``, ``uploads``, ``context``, ``texts``...).
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from adapters.telegram.albums import ALBUM_DATA_PATTERN, answer_album, on_album_button
from adapters.telegram.buttons import on_button
from adapters.telegram.clips import CLIP_MESSAGES, on_clip
from adapters.telegram.collector import AlbumCollector
from adapters.telegram.commands import (
    on_ban,
    on_help,
    on_start,
    on_stats,
    on_style,
    on_styles,
    on_text,
    on_unban,
    on_unsupported,
    on_usage,
)
from adapters.telegram.context import CONTEXT_TYPES, BotContext, TelegramApplication, keep_in_bot_data
from adapters.telegram.gate import drop_banned, on_error, only_allowed_chats
from adapters.telegram.photos import on_image
from adapters.telegram.settings import SETTINGS_DATA_PATTERN, on_forget, on_settings, on_settings_button
from adapters.telegram.stickers import ADD_TO_PACK_DATA_PATTERN, STICKER_DATA_PATTERN, on_add_to_pack, on_sticker_button
from bot.config import Settings
from bot.redaction import redact_token_in_logs
from bot.service import Service

CONCURRENT_UPDATES = 256  # each photo's handler waits for its job; the service's queue bound says "busy" long before
SEND_RETRIES = 3  # a reply refused with "retry after N s" (flood control) is sent again, this many times at most


def build_application(settings: Settings, service: Service) -> TelegramApplication:
    """The bot's ``Application`` with every handler wired; not started (see ``lifecycle.running``)."""
    if settings.telegram_token is None:
        raise ValueError("settings.telegram_token is not set")
    token = settings.telegram_token.get_secret_value()
    redact_token_in_logs(token)
    application = (
        Application.builder()
        .token(token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .context_types(CONTEXT_TYPES)
        .concurrent_updates(CONCURRENT_UPDATES)
        # Replies quote their photo: with several in flight, each answer shows which photo it belongs to.
        .defaults(Defaults(do_quote=True))
        # Keeps under Telegram's flood limits and waits out any "retry after" instead of losing a reply.
        .rate_limiter(AIORateLimiter(max_retries=SEND_RETRIES))
        .build()
    )
    keep_in_bot_data(application.bot_data, service, AlbumCollector[BotContext](answer_album))
    # Before every handler, in turn (one handler runs per group): the allowed chats, then the bans.
    application.add_handler(TypeHandler(Update, only_allowed_chats), group=-2)
    application.add_handler(TypeHandler(Update, drop_banned), group=-1)
    application.add_handler(CommandHandler("start", on_start))
    application.add_handler(CommandHandler("help", on_help))
    application.add_handler(CommandHandler("styles", on_styles))
    application.add_handler(CommandHandler("style", on_style))
    application.add_handler(CommandHandler("stats", on_stats))
    application.add_handler(CommandHandler("ban", on_ban))
    application.add_handler(CommandHandler("unban", on_unban))
    application.add_handler(CommandHandler("usage", on_usage))
    application.add_handler(CommandHandler("settings", on_settings))
    application.add_handler(CommandHandler("forget", on_forget))
    # Before the image handler: an animation (GIF) message also carries a document.
    application.add_handler(MessageHandler(CLIP_MESSAGES, on_clip))
    application.add_handler(MessageHandler(filters.Sticker.ALL | filters.VOICE | filters.AUDIO, on_unsupported))
    application.add_handler(MessageHandler(filters.PHOTO | filters.Document.ALL, on_image))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    application.add_handler(CallbackQueryHandler(on_settings_button, pattern=SETTINGS_DATA_PATTERN))
    application.add_handler(CallbackQueryHandler(on_album_button, pattern=ALBUM_DATA_PATTERN))
    application.add_handler(CallbackQueryHandler(on_sticker_button, pattern=STICKER_DATA_PATTERN))
    application.add_handler(CallbackQueryHandler(on_add_to_pack, pattern=ADD_TO_PACK_DATA_PATTERN))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_error_handler(on_error)
    return application
