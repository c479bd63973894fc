"""Photos and image files in, their anime version out: a photo with the style buttons, and for a file also the
lossless picture as a file."""

from __future__ import annotations

from pathlib import PurePosixPath

from telegram import Update
from telegram.constants import ChatAction

from adapters.telegram.chats import answered_elsewhere, chat_settings, message_of, translator_for
from adapters.telegram.context import BotContext
from adapters.telegram.looks import PHOTO_FORMAT, caption, keyboard
from adapters.telegram.texts import NOT_AN_IMAGE
from adapters.telegram.uploads import draw_upload, result_file_name
from bot.service import too_large_message

FILE_FORMAT = "png"  # someone who sent a file wants every pixel back: lossless
PHOTO_MIMES = frozenset({"image/jpeg", "image/png", "image/webp"})  # what sendPhoto takes; others go as files
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".bmp", ".tif", ".tiff", ".gif"})


def looks_like_image(mime_type: str | None, file_name: str | None) -> bool:
    """Whether a document claims to be an image (by its MIME type or name; the engine checks the bytes)."""
    if mime_type and mime_type.startswith("image/"):
        return True
    return PurePosixPath(file_name or "").suffix.lower() in IMAGE_SUFFIXES


async def on_image(update: Update, context: BotContext) -> None:
    """A photo or an image file: check its size, download it, run a job with a live status line, reply with it."""
    message = message_of(update)
    document = message.document
    is_image = document is None or looks_like_image(document.mime_type, document.file_name)
    if answered_elsewhere(update, context, is_image):
        return
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    if not is_image:
        await message.reply_text(_(NOT_AN_IMAGE))
        return
    drawn = await draw_upload(
        update,
        context,
        settings,
        _,
        document or message.photo[-1],
        output_format=FILE_FORMAT if document else PHOTO_FORMAT,
        action=ChatAction.UPLOAD_PHOTO,
        too_large=lambda size, limit: _.say(too_large_message(size, limit)),
    )
    if drawn is None:
        return
    look, result = drawn
    await message.reply_chat_action(ChatAction.UPLOAD_PHOTO)
    styles = context.service.styles_by_name()
    text = caption(look, styles, result.notes, _)
    if result.mime in PHOTO_MIMES:
        await message.reply_photo(result.image, caption=text, reply_markup=keyboard(look, styles.values(), _))
    if document is not None:
        name = result_file_name(document.file_name, look.style, result.mime)
        await message.reply_document(result.image, filename=name, caption=text)
