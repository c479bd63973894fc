"""A style or strength button under a result: the kept photo (or clip) drawn again and swapped in place.

While a press's job runs, the photo's caption gets one status line ("⏳ Re-styling as Hayao… 40%") and the pressed
button a ⏳ mark; the other buttons stay live, and a newer press on the same message supersedes the running one
(``bot.restyle.LatestPress``). Both marks are derived from the message itself, so they are removed the same way
after a restart. A refusal (busy, rate limit, the photo forgotten...) is an alert to the presser only, and leaves
an earlier press running.
"""

from __future__ import annotations

from collections.abc import Mapping

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMedia,
    InputMediaAnimation,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
    Update,
)

from adapters.telegram.chats import chat_settings, group_owner, person_owner, query_of, translator_for
from adapters.telegram.context import BotContext
from adapters.telegram.looks import PHOTO_FORMAT, Look, caption, keyboard, may_restyle, title_of
from adapters.telegram.status import StatusLine, best_effort
from adapters.telegram.texts import NOT_YOURS, NOTHING_TO_CHANGE
from animegan.manifest import Style
from bot.eta import queued_progress
from bot.i18n import ENGLISH, Translator
from bot.jobs import JobError, JobHandle, JobProgress, JobStage
from bot.orders import SOURCE_EXPIRED, Order, SourceExpired
from bot.restyle import restyle_status
from bot.settings_store import FULL_STRENGTH

PENDING_MARK = "⏳ "


def with_status(caption_text: str, status: str) -> str:
    """The caption of a photo being re-styled: its own caption, then one status line."""
    return f"{settled_caption(caption_text)}\n{PENDING_MARK}{status}"


def settled_caption(caption_text: str) -> str:
    """A caption without any re-style status line."""
    return "\n".join(line for line in caption_text.split("\n") if not line.startswith(PENDING_MARK))


def marked_keyboard(markup: InlineKeyboardMarkup | None, pressed: str | None) -> InlineKeyboardMarkup | None:
    """``markup`` with the button whose callback data is ``pressed`` marked as running (no other button marked)."""
    if markup is None:
        return None
    rows = [
        [
            InlineKeyboardButton(
                (PENDING_MARK if pressed is not None and b.callback_data == pressed else "")
                + b.text.removeprefix(PENDING_MARK),
                callback_data=b.callback_data,
            )
            for b in row
        ]
        for row in markup.inline_keyboard
    ]
    return InlineKeyboardMarkup(rows)


async def on_button(update: Update, context: BotContext) -> None:
    """An inline button: re-render the kept source with the chosen look and swap the reply's image in place.

    An accepted press supersedes any earlier one still running on the same message.
    """
    query = query_of(update)
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    look = Look.from_callback_data(query.data or "")
    if look is None:
        await query.answer(_(NOTHING_TO_CHANGE))
        return
    reply = query.message
    if not isinstance(reply, Message):  # older than 48 h: out of the bot's reach
        await query.answer(_(SOURCE_EXPIRED), show_alert=True)
        return
    if not may_restyle(reply, query.from_user.id):
        await query.answer(_(NOT_YOURS))
        return
    service = context.service
    order = Order(
        user=person_owner(update),
        source=look.key,
        style=look.style,
        strength=look.strength / FULL_STRENGTH,
        output_format=PHOTO_FORMAT,
        chosen=settings,
        group=group_owner(update),
    )
    try:
        accepted = await service.submit(order)
    except SourceExpired:
        await query.answer(_(SOURCE_EXPIRED), show_alert=True)
        return
    except JobError as error:
        await query.answer(_.say(error.message), show_alert=True)
        return
    styles = service.styles_by_name()
    await query.answer(restyle_status(title_of(look.style, styles), look.strength, JobProgress(JobStage.QUEUED), _))
    await context.restyles.run(
        (reply.chat_id, reply.message_id),
        lambda: restyle_in_place(reply, accepted.handle, look, styles, query.data or "", _),
    )


async def restyle_in_place(
    reply: Message, handle: JobHandle, look: Look, styles: Mapping[str, Style], pressed: str, _: Translator = ENGLISH
) -> None:
    """Follow a button's job on its message: a status line in the caption, then the new photo and keyboard.

    On failure the message is put back as it was and the person is told why. Cancelled (a newer press won):
    it stops where it is, and the newer press's edits take over.
    """
    settled = settled_caption(reply.caption or "")
    running_keyboard = marked_keyboard(reply.reply_markup, pressed)
    title = title_of(look.style, styles)

    async def show(status: str) -> None:
        await reply.edit_caption(with_status(settled, status), reply_markup=running_keyboard)

    first = restyle_status(title, look.strength, queued_progress(handle), _)
    await best_effort(show(first))
    status = StatusLine(show, first)
    try:
        async for progress in handle.progress():
            if progress.stage not in (JobStage.DONE, JobStage.FAILED):
                status.show(restyle_status(title, look.strength, progress, _))
        result = await handle.result()
    except JobError as error:
        await status.close()
        await best_effort(reply.edit_caption(settled, reply_markup=marked_keyboard(reply.reply_markup, None)))
        await reply.reply_text(_.say(error.message))
        return
    finally:
        await status.close()
    text = caption(look, styles, result.notes, _)
    if reply.animation is not None:  # a clip's reply is re-drawn as the same kind
        media: InputMedia = InputMediaAnimation(result.image, caption=text, width=result.width, height=result.height)
    elif reply.video is not None:
        media = InputMediaVideo(
            result.image, caption=text, width=result.width, height=result.height, supports_streaming=True
        )
    else:
        media = InputMediaPhoto(result.image, caption=text)
    await reply.edit_media(media, reply_markup=keyboard(look, styles.values(), _))
