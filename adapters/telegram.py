"""The Telegram front end: photos in, anime pictures out, restyled in place from an inline keyboard.

Built on python-telegram-bot. ``build_application`` wires the handlers; ``running`` (or ``run_telegram``) starts
and stops them inside an asyncio loop someone else owns: long polling by default, a webhook served by aiohttp when
``settings.telegram_webhook_url`` is set. The service is reached through ``application.bot_data``, the chat's
chosen style lives in ``context.chat_data``. Nothing here decodes images: the service judges them.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from hmac import compare_digest
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot, Message, MessageEntity, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from adapters.telegram_clips import CLIP_MESSAGES, on_clip
from adapters.telegram_buttons import FULL_STRENGTH, Look, caption, keyboard, may_restyle, restyle_in_place
from adapters.telegram_albums import ALBUM_DATA_PATTERN, AlbumCollector, on_album_button
from adapters.telegram_settings import (
    SETTINGS_DATA_PATTERN,
    chat_owner,
    chat_settings,
    effective_style,
    on_forget,
    on_settings,
    on_settings_button,
    person_owner,
    privacy_note,
    translator,
    translator_for,
)
from adapters.telegram_status import StatusLine, best_effort, status_text
from adapters.telegram_stickers import (
    ADD_TO_PACK_DATA_PATTERN,
    STICKER_DATA_PATTERN,
    on_add_to_pack,
    on_sticker_button,
)
from animegan.manifest import Style
from bot.config import Settings
from bot.front_ends import FrontEnd
from bot.clips import looks_like_clip
from bot.i18n import ENGLISH, N_, Translator, pick_language
from bot.jobs import JobError, JobKind, JobProgress, JobRequest, JobResult, JobStage
from bot.redaction import redact_token_in_logs
from bot.restyle import LatestPress, restyle_status
from bot.service import Service, too_large_message

logger = logging.getLogger(__name__)

SERVICE_KEY = "service"
RESTYLES_KEY = "restyles"
ALBUMS_KEY = "albums"
USER_PREFIX = "telegram:"
OFFICIAL_API = "https://api.telegram.org/bot"
OFFICIAL_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files unless a local Bot API server is used
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
CONCURRENT_UPDATES = 256  # each photo's handler waits for its job; the service's queue bound says "busy" long before
POLL_TIMEOUT_SECONDS = 30
WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SEND_RETRIES = 3  # a reply refused with "retry after N s" (flood control) is sent again, this many times at most
PHOTO_FORMAT = "jpeg"  # Telegram re-encodes photos as JPEG anyway
FILE_FORMAT = "png"  # someone who sent a file wants every pixel back: lossless
PHOTO_MIMES = frozenset({"image/jpeg", "image/png", "image/webp"})  # what sendPhoto takes; others go as files
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".bmp", ".tif", ".tiff", ".gif"})
STYLE_WORD = re.compile(r"[a-z0-9_]+")

# English msgids, shown through the person's translator.
NOT_AN_IMAGE = N_("That file isn't an image. Send a photo, or a JPEG, PNG, WebP or HEIC file.")
NOT_A_PHOTO = N_("I turn photos and videos into anime; stickers and voice messages don't work. Send a photo or a video.")
SEND_A_PHOTO = N_("Send me a photo and I'll redraw it in anime style. /help shows how.")
EXPIRED = N_("That photo is no longer in my memory: send the photo again.")
NOTHING_TO_CHANGE = N_("That's the picture you're looking at.")
NOT_YOURS = N_("Only the person who sent the photo can restyle it.")
SOMETHING_WENT_WRONG = N_("Sorry, something went wrong with that. Please try again.")


# ---- pure helpers -------------------------------------------------------------------------------------------------


def style_named_in(text: str | None, styles: dict[str, Style]) -> str | None:
    """The first installed style whose name appears as a word of ``text`` (``jp-face`` counts as ``jp_face``)."""
    words = STYLE_WORD.findall((text or "").lower().replace("-", "_"))
    return next((word for word in words if word in styles), None)


def download_limit(settings: Settings) -> int:
    """Bytes we accept: the configured limit, capped by what the official Bot API lets a bot download."""
    if settings.telegram_base_url.startswith(OFFICIAL_API):
        return min(settings.max_upload_bytes, OFFICIAL_DOWNLOAD_LIMIT)
    return settings.max_upload_bytes


def looks_like_image(mime_type: str | None, file_name: str | None) -> bool:
    """Whether a document claims to be an image (by its MIME type or name; the engine checks the bytes)."""
    if mime_type and mime_type.startswith("image/"):
        return True
    return PurePosixPath(file_name or "").suffix.lower() in IMAGE_SUFFIXES


def result_file_name(file_name: str | None, style: str, mime: str) -> str:
    """``holiday_shinkai.png`` from the sent file's name, the style and the result's type."""
    stem = PurePosixPath(file_name or "photo").stem or "photo"
    return f"{stem}_{style}{mimetypes.guess_extension(mime) or ''}"


def is_addressed(message: Message, bot: Bot) -> bool:
    """Private chats always; in groups only replies to the bot or messages that mention it."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        return True
    handle = f"@{bot.username}".lower()
    kinds = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    found = {**message.parse_entities(kinds), **message.parse_caption_entities(kinds)}
    return any(
        text.lower() == handle or (entity.user is not None and entity.user.id == bot.id)
        for entity, text in found.items()
    )


# ---- handlers -----------------------------------------------------------------------------------------------------


def _service(context: ContextTypes.DEFAULT_TYPE) -> Service:
    return context.bot_data[SERVICE_KEY]


def _styles(service: Service) -> dict[str, Style]:
    return {style.name: style for style in service.styles()}


async def only_allowed_chats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Drop updates from chats outside ``settings.allowed_chats`` (when it is set) before any handler runs."""
    chat = update.effective_chat
    if chat is None or not _service(context).access.allows_chat(chat.id):
        raise ApplicationHandlerStop


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: what the bot does, an example, and what it keeps."""
    service = _service(context)
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    default = _styles(service).get(effective_style(settings, service))
    await update.effective_message.reply_text(
        (_("I redraw your photos as anime pictures (default look: {style}).", style=default.title) if default
         else _("I redraw your photos as anime pictures."))
        + "\n\n"
        + _("Send a photo, or an image as a file to keep full quality, or up to 10 photos at once as an album. "
            "Name a style in the caption to use it, e.g. a photo captioned “hayao”. Buttons under the result switch "
            "style or strength.")
        + "\n\n"
        + _("/styles lists the looks, /style NAME sets this chat's default, /settings changes style, strength, "
            "face pass and language. The styles' weights are for non-commercial use only.")
        + "\n\n"
        + privacy_note(_, service.settings.source_cache_ttl)
    )


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help: the commands and limits."""
    _ = await translator(update, context)
    limit = download_limit(_service(context).settings)
    await update.effective_message.reply_text(
        "\n".join(
            [
                _("Send a photo (or an image file: JPEG, PNG, WebP, HEIC) and I reply with its anime version."),
                _("• caption a photo with a style name to use that style"),
                _("• /styles – the installed styles"),
                _("• /style NAME – this chat's default style"),
                _("• /settings – style, strength, face pass and language"),
                _("• /forget – delete everything I keep about you"),
                _("• a video, GIF or video note comes back drawn the same way, with its sound (the first {seconds} s)",
                  seconds=f"{_service(context).settings.clip_max_seconds:g}"),
                _("• in groups, mention me in the photo's caption or reply to me"),
                _("Files up to {megabytes} MB.", megabytes=round(limit / 2**20)),
            ]
        )
    )


async def on_styles(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/styles: the installed styles, the chat's current one marked."""
    service = _service(context)
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    current = effective_style(settings, service)
    lines = [
        f"{'✓' if style.name == current else '•'} {style.name} – {style.title}: {_(style.description)}"
        for style in service.styles()
    ]
    await update.effective_message.reply_text("\n".join(lines) + "\n\n" + _("Non-commercial use only."))


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats: the pool's numbers, for the people listed in ANIMEBOT_ADMIN_IDS only."""
    service = _service(context)
    user = update.effective_user
    if user is None or f"{USER_PREFIX}{user.id}" not in service.settings.admin_ids:
        _ = await translator(update, context)
        await update.effective_message.reply_text(_("Sorry, /stats is for the bot's admins."))
        return
    lines = [f"{name.replace('_', ' ')}: {value:.2f}" if isinstance(value, float) else f"{name.replace('_', ' ')}: {value}"
             for name, value in service.stats().items()]
    await update.effective_message.reply_text("\n".join(lines))


async def on_style(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/style NAME: remember the chat's default style (kept across restarts, see ``/settings``)."""
    service = _service(context)
    styles = _styles(service)
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    wanted = (context.args or [""])[0].lower().replace("-", "_")
    if wanted not in styles:
        current = styles.get(effective_style(settings, service))
        await update.effective_message.reply_text(
            (_("I don't know the style “{style}”.", style=wanted) + " " if wanted else "")
            + (_("This chat uses {style}.", style=current.title) + " " if current else "")
            + _("Choose one of: {styles} (e.g. /style {example}).", styles=", ".join(styles),
                example=next(iter(styles), "shinkai"))
        )
        return
    await service.chat_settings.save(chat_owner(update), settings.with_changes(style=wanted))
    await update.effective_message.reply_text(
        _("From now on this chat's photos get the {style} look.", style=styles[wanted].title)
    )


async def on_unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, videos, voice...: a short reply (in groups only when addressed)."""
    message = update.effective_message
    if not is_addressed(message, context.bot) and not context.bot_data[ALBUMS_KEY].is_collecting(message):
        return
    if message.media_group_id is not None and context.bot_data[ALBUMS_KEY].collect(update, context, image=False):
        return  # a video in an album of photos: the album's answer says it was skipped
    _ = await translator(update, context)
    await message.reply_text(_(NOT_A_PHOTO))


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Plain text: point to what the bot does (in groups only when addressed)."""
    message = update.effective_message
    if is_addressed(message, context.bot):
        _ = await translator(update, context)
        await message.reply_text(_(SEND_A_PHOTO))


async def on_image(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or an image file: check its size, download it, run a job with a live status line, reply with it."""
    message = update.effective_message
    if not is_addressed(message, context.bot) and not context.bot_data[ALBUMS_KEY].is_collecting(message):
        return
    document = message.document
    is_image = document is None or looks_like_image(document.mime_type, document.file_name)
    if message.media_group_id is not None and context.bot_data[ALBUMS_KEY].collect(update, context, is_image):
        return  # one item of an album: answered with the whole album (adapters/telegram_albums.py)
    service = _service(context)
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    if not is_image:
        await message.reply_text(_(NOT_AN_IMAGE))
        return
    attachment = document or message.photo[-1]
    limit = download_limit(service.settings)
    if attachment.file_size is not None and attachment.file_size > limit:
        await message.reply_text(_.say(too_large_message(attachment.file_size, limit)))
        return
    await message.reply_chat_action(ChatAction.UPLOAD_PHOTO)
    telegram_file = await attachment.get_file()
    image = bytes(await telegram_file.download_as_bytearray())
    styles = _styles(service)
    look = Look(
        await service.keep_source(image, owner=person_owner(update)),
        style_named_in(message.caption, styles) or effective_style(settings, service),
        settings.strength,
    )
    request = JobRequest(
        user=f"{USER_PREFIX}{update.effective_user.id}",
        image=image,
        style=look.style,
        strength=look.strength / FULL_STRENGTH,
        faces=settings.faces,
        output_format=FILE_FORMAT if document else PHOTO_FORMAT,
    )
    result = await _run_with_status(message, service, request, _)
    if result is None:
        return
    await message.reply_chat_action(ChatAction.UPLOAD_PHOTO)
    text = caption(look, styles, result.notes, _)
    if result.mime in PHOTO_MIMES:
        await message.reply_photo(result.image, caption=text, reply_markup=keyboard(look, styles.values(), _))
    if document is not None:
        name = result_file_name(document.file_name, look.style, result.mime)
        await message.reply_document(result.image, filename=name, caption=text)


async def _run_with_status(
    message: Message, service: Service, request: JobRequest, _: Translator = ENGLISH
) -> JobResult | None:
    """Submit ``request``, keep a status reply up to date (edited only when its text changes), then remove it.

    Returns None when the job failed; the person has then been told why.
    """
    try:
        handle = await service.submit(request)
    except JobError as error:
        await message.reply_text(_.say(error.message))
        return None
    first = status_text(JobProgress(JobStage.QUEUED, position=handle.position), _)
    status_message = await message.reply_text(first)
    status = StatusLine(status_message.edit_text, first)
    try:
        async for progress in handle.progress():
            if progress.stage not in (JobStage.DONE, JobStage.FAILED):
                status.show(status_text(progress, _))
        result = await handle.result()
    except JobError as error:
        await status.close()
        if not await best_effort(status_message.edit_text(_.say(error.message))):
            await message.reply_text(_.say(error.message))
        return None
    finally:
        await status.close()
    await best_effort(status_message.delete())
    return result


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An inline button: re-render the kept source with the chosen look and swap the reply's image in place.

    A refusal (busy, rate limit...) is an alert to the presser only, and leaves an earlier press running; an
    accepted press supersedes any earlier one still running on the same message.
    """
    query = update.callback_query
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    look = Look.from_callback_data(query.data or "")
    if look is None:
        await query.answer(_(NOTHING_TO_CHANGE))
        return
    reply = query.message
    service = _service(context)
    source = await service.find_source(look.key)
    if source is None or not isinstance(reply, Message):  # not a Message: older than 48 h, out of the bot's reach
        await query.answer(_(EXPIRED), show_alert=True)
        return
    if not may_restyle(reply, query.from_user.id):
        await query.answer(_(NOT_YOURS))
        return
    styles = _styles(service)
    request = JobRequest(
        user=f"{USER_PREFIX}{query.from_user.id}",
        image=source,
        style=look.style,
        strength=look.strength / FULL_STRENGTH,
        faces=settings.faces,
        output_format=PHOTO_FORMAT,
        kind=JobKind.CLIP if looks_like_clip(source) else JobKind.PHOTO,  # the style buttons of a clip's reply
    )
    try:
        handle = await service.submit(request)
    except JobError as error:
        await query.answer(_.say(error.message), show_alert=True)
        return
    title = styles[look.style].title if look.style in styles else look.style
    await query.answer(restyle_status(title, look.strength, JobProgress(JobStage.QUEUED), _))
    restyles: LatestPress[tuple[int, int]] = context.bot_data[RESTYLES_KEY]
    await restyles.run(
        (reply.chat_id, reply.message_id), lambda: restyle_in_place(reply, handle, look, styles, query.data or "", _)
    )


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
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


# ---- wiring and lifecycle -----------------------------------------------------------------------------------------


def build_application(settings: Settings, service: Service) -> Application:
    """The bot's ``Application`` with every handler wired; not started (see ``running``)."""
    if settings.telegram_token is None:
        raise ValueError("settings.telegram_token is not set")
    token = settings.telegram_token.get_secret_value()
    redact_token_in_logs(token)
    application = (
        Application.builder()
        .token(token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .concurrent_updates(CONCURRENT_UPDATES)
        # Replies quote their photo: with several in flight, each answer shows which photo it belongs to.
        .defaults(Defaults(do_quote=True))
        # Keeps under Telegram's flood limits and waits out any "retry after" instead of losing a reply.
        .rate_limiter(AIORateLimiter(max_retries=SEND_RETRIES))
        .build()
    )
    application.bot_data[SERVICE_KEY] = service
    application.bot_data[RESTYLES_KEY] = LatestPress()
    application.bot_data[ALBUMS_KEY] = AlbumCollector()
    application.add_handler(TypeHandler(Update, only_allowed_chats), group=-1)
    application.add_handler(CommandHandler("start", on_start))
    application.add_handler(CommandHandler("help", on_help))
    application.add_handler(CommandHandler("styles", on_styles))
    application.add_handler(CommandHandler("style", on_style))
    application.add_handler(CommandHandler("stats", on_stats))
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


@asynccontextmanager
async def running(application: Application, settings: Settings) -> AsyncIterator[Application]:
    """Run ``application`` inside the current loop: polling, or the webhook when ``telegram_webhook_url`` is set.

    On exit it stops taking updates, lets the handlers in flight finish (their jobs too) and shuts down.
    """
    await application.initialize()
    webhook: web.AppRunner | None = None
    try:
        await application.start()
        if settings.telegram_webhook_url:
            webhook = await _start_webhook(application, settings)
        else:
            await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES, timeout=POLL_TIMEOUT_SECONDS)
        logger.info("Telegram bot @%s is %s", application.bot.username, "on a webhook" if webhook else "polling")
        yield application
    finally:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        await application.bot_data[ALBUMS_KEY].wait_idle()  # albums still being collected or drawn
        if webhook is not None:
            await webhook.cleanup()
        if application.running:
            await application.stop()
        await application.shutdown()


async def run_telegram(settings: Settings, service: Service, stop_event: asyncio.Event) -> None:
    """Serve Telegram until ``stop_event`` is set (for ``animebot serve``, which owns the loop and the service)."""
    async with running(build_application(settings, service), settings):
        await stop_event.wait()


async def _start_webhook(application: Application, settings: Settings) -> web.AppRunner:
    """Serve the webhook path on ``telegram_webhook_port`` and register the public URL with a random secret."""
    assert settings.telegram_webhook_url is not None
    secret = secrets.token_urlsafe(32)
    path = urlsplit(settings.telegram_webhook_url).path or "/"

    async def receive(request: web.Request) -> web.Response:
        if not compare_digest(request.headers.get(WEBHOOK_SECRET_HEADER, ""), secret):
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), application.bot)
        except ValueError:
            return web.Response(status=400)
        await application.update_queue.put(update)
        return web.Response()

    app = web.Application()
    app.router.add_post(path, receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.telegram_webhook_port).start()
    await application.bot.set_webhook(
        settings.telegram_webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
    )
    return runner


def serving(settings: Settings, service: Service) -> AbstractAsyncContextManager[None] | None:
    """Telegram while entered, when ``settings.telegram_token`` is set (for ``animebot serve``)."""
    if settings.telegram_token is None:
        return None
    return _running_quietly(build_application(settings, service), settings)


@asynccontextmanager
async def _running_quietly(application: Application, settings: Settings) -> AsyncIterator[None]:
    async with running(application, settings):
        yield


FRONT_END = FrontEnd("telegram", start_order=1, serving=serving)
