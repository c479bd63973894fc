"""Telegram clips: animations (GIFs, which Telegram delivers as MP4), videos, round video notes and video files in,
the same kind back (sendAnimation, sendVideo with its sound, sendVideoNote, sendDocument), with frame progress.

Nothing here decodes video: the service plans, draws and joins the clip in its workers.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePosixPath

from telegram import Message, Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes, filters

from adapters.telegram_buttons import FULL_STRENGTH, Look, caption, keyboard
from bot.jobs import JobKind, JobRequest

CLIP_UPLOAD_LIMIT = 50 * 1024 * 1024  # the most a bot may upload through the official Bot API
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".gif"})
CLIP_FORMAT = "mp4"

TOO_BIG_TO_SEND = "The anime version came out larger than Telegram lets a bot send (50 MB). Please send a shorter clip."
NOT_A_VIDEO_FILE = "That file isn't a video. Send a video, a GIF or a photo."


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


def clip_kind(message: Message) -> ClipKind | None:
    """What kind of clip ``message`` carries (an animation first: its message also has a document)."""
    if message.animation is not None:
        return ClipKind.ANIMATION
    if message.video is not None:
        return ClipKind.VIDEO
    if message.video_note is not None:
        return ClipKind.VIDEO_NOTE
    document = message.document
    if document is not None and looks_like_video(document.mime_type, document.file_name):
        return ClipKind.DOCUMENT
    return None


async def on_clip(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A clip: check its size, download it, run it with a status line counting frames, reply with the same kind."""
    from adapters.telegram import (
        USER_PREFIX,
        _chat_style,
        _run_with_status,
        _service,
        _styles,
        download_limit,
        is_addressed,
        result_file_name,
        style_named_in,
    )
    from bot.service import too_large_message

    message = update.effective_message
    if not is_addressed(message, context.bot):
        return
    kind = clip_kind(message)
    if kind is None:
        await message.reply_text(NOT_A_VIDEO_FILE)
        return
    service = _service(context)
    attachment = {
        ClipKind.ANIMATION: message.animation,
        ClipKind.VIDEO: message.video,
        ClipKind.VIDEO_NOTE: message.video_note,
        ClipKind.DOCUMENT: message.document,
    }[kind]
    limit = download_limit(service.settings)
    if attachment.file_size is not None and attachment.file_size > limit:
        await message.reply_text(too_large_message(attachment.file_size, limit).replace("photo", "clip"))
        return
    await message.reply_chat_action(ChatAction.RECORD_VIDEO)
    clip = bytes(await (await attachment.get_file()).download_as_bytearray())
    styles = _styles(service)
    look = Look(
        await service.keep_source(clip),
        style_named_in(message.caption, styles) or _chat_style(context, service),
        FULL_STRENGTH,
    )
    request = JobRequest(
        user=f"{USER_PREFIX}{update.effective_user.id}", image=clip, style=look.style, kind=JobKind.CLIP,
        output_format=CLIP_FORMAT,
    )
    result = await _run_with_status(message, service, request)
    if result is None:
        return
    if len(result.image) > CLIP_UPLOAD_LIMIT:
        await message.reply_text(TOO_BIG_TO_SEND)
        return
    await message.reply_chat_action(ChatAction.UPLOAD_VIDEO)
    text = caption(look, styles, result.notes)
    buttons = keyboard(look, styles.values())  # re-style from the kept clip, in place (telegram_buttons)
    if kind is ClipKind.ANIMATION:
        await message.reply_animation(
            result.image, caption=text, width=result.width, height=result.height, reply_markup=buttons
        )
    elif kind is ClipKind.VIDEO:
        await message.reply_video(
            result.image, caption=text, width=result.width, height=result.height, supports_streaming=True,
            reply_markup=buttons,
        )
    elif kind is ClipKind.VIDEO_NOTE:
        await message.reply_video_note(result.image, length=result.width)
        if result.notes:  # a video note has no caption
            await message.reply_text("\n".join(result.notes))
    else:
        name = result_file_name(message.document.file_name, look.style, result.mime)
        await message.reply_document(result.image, filename=name, caption=text)
