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
from adapters.telegram_settings import chat_settings, effective_style, person_owner, translator_for
from bot.i18n import N_
from bot.jobs import JobKind, JobRequest

CLIP_UPLOAD_LIMIT = 50 * 1024 * 1024  # the most a bot may upload through the official Bot API
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".gif"})
CLIP_FORMAT = "mp4"

TOO_BIG_TO_SEND = N_(
    "The anime version came out larger than Telegram lets a bot send (50 MB). Please send a shorter clip."
)
NOT_A_VIDEO_FILE = N_("That file isn't a video. Send a video, a GIF or a photo.")
TOO_BIG_TO_FETCH = N_("That clip is {size:.1f} MB; the largest clip I can fetch from Telegram is {limit:.0f} MB.")


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
        ALBUMS_KEY,
        USER_PREFIX,
        _run_with_status,
        _service,
        _styles,
        download_limit,
        is_addressed,
        result_file_name,
        style_named_in,
    )
    message = update.effective_message
    albums = context.bot_data[ALBUMS_KEY]
    if not is_addressed(message, context.bot) and not albums.is_collecting(message):
        return
    if message.media_group_id is not None and albums.collect(update, context, image=False):
        return  # a video in an album of photos: the album's answer says it was skipped
    service = _service(context)
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    kind = clip_kind(message)
    if kind is None:
        await message.reply_text(_(NOT_A_VIDEO_FILE))
        return
    attachment = {
        ClipKind.ANIMATION: message.animation,
        ClipKind.VIDEO: message.video,
        ClipKind.VIDEO_NOTE: message.video_note,
        ClipKind.DOCUMENT: message.document,
    }[kind]
    limit = download_limit(service.settings)
    if attachment.file_size is not None and attachment.file_size > limit:
        await message.reply_text(_(TOO_BIG_TO_FETCH, size=attachment.file_size / 2**20, limit=limit / 2**20))
        return
    await message.reply_chat_action(ChatAction.RECORD_VIDEO)
    clip = bytes(await (await attachment.get_file()).download_as_bytearray())
    styles = _styles(service)
    look = Look(
        await service.keep_source(clip, owner=person_owner(update)),
        style_named_in(message.caption, styles) or effective_style(settings, service),
        settings.strength,
    )
    request = JobRequest(
        user=f"{USER_PREFIX}{update.effective_user.id}", image=clip, style=look.style,
        strength=look.strength / FULL_STRENGTH, faces=settings.faces, kind=JobKind.CLIP, output_format=CLIP_FORMAT,
    )
    result = await _run_with_status(message, service, request, _)
    if result is None:
        return
    if len(result.image) > CLIP_UPLOAD_LIMIT:
        await message.reply_text(_(TOO_BIG_TO_SEND))
        return
    await message.reply_chat_action(ChatAction.UPLOAD_VIDEO)
    text = caption(look, styles, result.notes, _)
    buttons = keyboard(look, styles.values(), _)  # re-style from the kept clip, in place (telegram_buttons)
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
            await message.reply_text("\n".join(_.say(note) for note in result.notes))
    else:
        name = result_file_name(message.document.file_name, look.style, result.mime)
        await message.reply_document(result.image, filename=name, caption=text)
