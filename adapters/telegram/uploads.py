"""One upload, from a message to its result: the one path photos, image files and clips share.

The attachment's size is checked against what the bot may download, the file is downloaded, and one ``Order`` goes
to ``Service.submit``, which tells a clip from a photo, applies the chat's settings, the rate limit and the queue's
admission, and only then keeps the upload for the buttons. A status reply follows the job and is removed at the end.
Nothing here decodes images or video: the service judges them.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable
from pathlib import PurePosixPath

from telegram import Animation, Document, Message, PhotoSize, Update, Video, VideoNote
from telegram.constants import ChatAction

from adapters.telegram.chats import group_owner, message_of, person_owner
from adapters.telegram.context import BotContext
from adapters.telegram.looks import Look
from adapters.telegram.status import StatusLine, best_effort, status_text
from animegan.manifest import Style
from bot.config import Settings
from bot.eta import queued_progress
from bot.i18n import Translator
from bot.jobs import JobError, JobResult, JobStage
from bot.orders import Accepted, Order
from bot.service import Service
from bot.settings_store import ChatSettings

OFFICIAL_API = "https://api.telegram.org/bot"
OFFICIAL_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files unless a local Bot API server is used
STYLE_WORD = re.compile(r"[a-z0-9_]+")

Attachment = PhotoSize | Document | Animation | Video | VideoNote
TooLarge = Callable[[int, int], str]  # (size, limit) in bytes -> the sentence that refuses the file


def style_named_in(text: str | None, styles: dict[str, Style]) -> str | None:
    """The first installed style whose name appears as a word of ``text`` (``jp-face`` counts as ``jp_face``)."""
    words = STYLE_WORD.findall((text or "").lower().replace("-", "_"))
    return next((word for word in words if word in styles), None)


def download_limit(settings: Settings) -> int:
    """Bytes we accept: the configured limit, capped by what the official Bot API lets a bot download."""
    if settings.telegram_base_url.startswith(OFFICIAL_API):
        return min(settings.max_upload_bytes, OFFICIAL_DOWNLOAD_LIMIT)
    return settings.max_upload_bytes


def result_file_name(file_name: str | None, style: str, mime: str) -> str:
    """``holiday_shinkai.png`` from the sent file's name, the style and the result's type."""
    stem = PurePosixPath(file_name or "photo").stem or "photo"
    return f"{stem}_{style}{mimetypes.guess_extension(mime) or ''}"


async def draw_upload(
    update: Update,
    context: BotContext,
    chosen: ChatSettings,
    _: Translator,
    attachment: Attachment,
    *,
    output_format: str,
    action: ChatAction,
    too_large: TooLarge,
) -> tuple[Look, JobResult] | None:
    """Check ``attachment``'s size, download it, submit it (in the style its caption names, else the chat's) with a
    live status line; its look and result, or None when it was refused or failed (the person has been told why)."""
    message = message_of(update)
    service = context.service
    limit = download_limit(service.settings)
    if attachment.file_size is not None and attachment.file_size > limit:
        await message.reply_text(too_large(attachment.file_size, limit))
        return None
    await message.reply_chat_action(action)
    image = bytes(await (await attachment.get_file()).download_as_bytearray())
    owner = person_owner(update)
    order = Order(
        user=owner,
        image=image,
        style=style_named_in(message.caption, service.styles_by_name()),
        output_format=output_format,
        chosen=chosen,
        owner=owner,
        group=group_owner(update),
    )
    done = await submit_with_status(message, service, order, _)
    if done is None:
        return None
    accepted, result = done
    return Look.of(accepted), result


async def submit_with_status(
    message: Message, service: Service, order: Order, _: Translator
) -> tuple[Accepted, JobResult] | None:
    """Submit ``order``, keep a status reply up to date (edited only when its text changes), then remove it.

    Returns None when the order was refused or its job failed; the person has then been told why.
    """
    try:
        accepted = await service.submit(order)
    except JobError as error:
        await message.reply_text(_.say(error.message))
        return None
    handle = accepted.handle
    first = status_text(queued_progress(handle), _)
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
    return accepted, result
