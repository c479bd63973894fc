"""Telegram clips: animations (GIFs, which Telegram delivers as MP4), videos, round video notes and video files in,
the same kind back (sendAnimation, sendVideo with its sound, sendVideoNote, sendDocument), with frame progress.

Nothing here decodes video: the service tells a clip by its bytes, and plans, draws and joins it in its workers.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePosixPath

from telegram import Document, Message, Update
from telegram.constants import ChatAction
from telegram.ext import filters

from adapters.telegram.chats import answered_elsewhere, chat_settings, message_of, translator_for
from adapters.telegram.context import BotContext
from adapters.telegram.looks import caption, keyboard
from adapters.telegram.texts import NOT_A_VIDEO_FILE, TOO_BIG_TO_FETCH, TOO_BIG_TO_SEND
from adapters.telegram.uploads import Attachment, draw_upload, result_file_name

CLIP_UPLOAD_LIMIT = 50 * 1024 * 1024  # the most a bot may upload through the official Bot API
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".gif"})
CLIP_FORMAT = "mp4"
BYTES_PER_MB = 2**20


class ClipKind(StrEnum):
    """How a clip arrived, which is how it goes back."""

    ANIMATION = "animation"
    VIDEO = "video"
    VIDEO_NOTE = "video_note"
    DOCUMENT = "document"


def looks_like_video(mime_type: str | None, file_name: str | None) -> bool:
    """Whether a document claims to be a video (by MIME type or name; the workers check the bytes)."""
    if mime_type and (mime_type.startswith("video/") or mime_type == "image/gif"):
        return True
    return PurePosixPath(file_name or "").suffix.lower() in VIDEO_SUFFIXES


VIDEO_DOCUMENTS = filters.Document.VIDEO | filters.Document.GIF | filters.Document.FileExtension("webm")
CLIP_MESSAGES = filters.VIDEO | filters.ANIMATION | filters.VIDEO_NOTE | VIDEO_DOCUMENTS


def clip_of(message: Message) -> tuple[ClipKind, Attachment] | None:
    """What kind of clip ``message`` carries, and the clip (an animation first: its message also has a document)."""
    if message.animation is not None:
        return ClipKind.ANIMATION, message.animation
    if message.video is not None:
        return ClipKind.VIDEO, message.video
    if message.video_note is not None:
        return ClipKind.VIDEO_NOTE, message.video_note
    document = message.document
    if document is not None and looks_like_video(document.mime_type, document.file_name):
        return ClipKind.DOCUMENT, document
    return None


async def on_clip(update: Update, context: BotContext) -> None:
    """A clip: check its size, download it, run it with a status line counting frames, reply with the same kind."""
    if answered_elsewhere(update, context, image=False):
        return  # a video in an album of photos: the album's answer says it was skipped
    message = message_of(update)
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    clip = clip_of(message)
    if clip is None:
        await message.reply_text(_(NOT_A_VIDEO_FILE))
        return
    kind, attachment = clip
    drawn = await draw_upload(
        update,
        context,
        settings,
        _,
        attachment,
        output_format=CLIP_FORMAT,
        action=ChatAction.RECORD_VIDEO,
        too_large=lambda size, limit: _(TOO_BIG_TO_FETCH, size=size / BYTES_PER_MB, limit=limit / BYTES_PER_MB),
    )
    if drawn is None:
        return
    look, result = drawn
    if len(result.image) > CLIP_UPLOAD_LIMIT:
        await message.reply_text(_(TOO_BIG_TO_SEND))
        return
    await message.reply_chat_action(ChatAction.UPLOAD_VIDEO)
    styles = context.service.styles_by_name()
    text = caption(look, styles, result.notes, _)
    buttons = keyboard(look, styles.values(), _)  # re-style from the kept clip, in place (buttons.on_button)
    if kind is ClipKind.ANIMATION:
        await message.reply_animation(
            result.image, caption=text, width=result.width, height=result.height, reply_markup=buttons
        )
    elif kind is ClipKind.VIDEO:
        await message.reply_video(
            result.image,
            caption=text,
            width=result.width,
            height=result.height,
            supports_streaming=True,
            reply_markup=buttons,
        )
    elif kind is ClipKind.VIDEO_NOTE:
        await message.reply_video_note(result.image, length=result.width)
        if result.notes:  # a video note has no caption
            await message.reply_text("\n".join(_.say(note) for note in result.notes))
    else:
        file_name = attachment.file_name if isinstance(attachment, Document) else None
        await message.reply_document(
            result.image, filename=result_file_name(file_name, look.style, result.mime), caption=text
        )
