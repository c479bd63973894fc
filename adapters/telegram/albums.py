"""Telegram albums: answering a whole album at once, and the buttons that re-style every picture of it.

An album (gathered by ``collector.AlbumCollector``) gets one status message ("Drawing your album: 1 of 3 done…"),
one ``sendMediaGroup`` album of the pictures, and one message with buttons that re-style every picture at once.
Pictures go to the service with ``Service.submit_in_turn``: one by one as the person's own queue allows, so a
big album never crowds out other people nor gets refused wholesale. Album members that aren't images (a video, a
text file) are skipped with one plain sentence.

The album's buttons need every source photo and every message of the album, more than the 64 bytes of callback
data hold, so the list is itself kept in the source store (JSON, under its own key, owned by the person) and the
buttons carry ``album:<key>|<style>|<strength>``: it survives restarts and works on every front end, like a photo.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, Message, Update
from telegram.constants import ChatAction

from adapters.telegram.chats import chat_settings, group_owner, message_of, person_owner, query_of, translator_for
from adapters.telegram.collector import PendingAlbum
from adapters.telegram.context import BotContext
from adapters.telegram.looks import (
    NOOP_DATA,
    PHOTO_FORMAT,
    STICKER_DATA,
    Look,
    caption,
    keyboard,
    may_restyle,
    title_of,
)
from adapters.telegram.status import best_effort
from adapters.telegram.texts import ALBUM_EXPIRED, NOT_YOURS
from adapters.telegram.uploads import download_limit
from animegan.manifest import Style
from bot.i18n import Translator
from bot.jobs import JobError
from bot.orders import Accepted, Order
from bot.service import too_large_message
from bot.settings_store import FULL_STRENGTH

ALBUM_DATA_PREFIX = "album:"
ALBUM_DATA_PATTERN = r"^album:"
MIN_ALBUM = 2  # sendMediaGroup takes 2-10 items; one picture left is sent as a plain photo


@dataclass(frozen=True)
class AlbumRecord:
    """What an album's buttons need: its source photos and the messages showing them, in order."""

    sources: list[str]
    messages: list[int]

    def to_bytes(self) -> bytes:
        """The record as JSON, to keep in the source store."""
        return json.dumps({"sources": self.sources, "messages": self.messages}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> AlbumRecord | None:
        """The record kept as ``data``, or None when it is not one."""
        try:
            record = json.loads(data)
            return cls([str(k) for k in record["sources"]], [int(m) for m in record["messages"]])
        except (ValueError, KeyError, TypeError):
            return None


def album_keyboard(look: Look, styles: Sequence[Style], _: Translator) -> InlineKeyboardMarkup:
    """The photo keyboard, with every button re-styling the album (``look.key`` is the album record's key)."""
    single = keyboard(look, styles, _)
    rows = [
        [
            button
            if button.callback_data == NOOP_DATA
            else InlineKeyboardButton(button.text, callback_data=ALBUM_DATA_PREFIX + str(button.callback_data))
            for button in row
            if button.callback_data != STICKER_DATA  # a sticker is of one picture, not of an album
        ]
        for row in single.inline_keyboard
    ]
    return InlineKeyboardMarkup(rows)


def album_caption(look: Look, count: int, styles: Mapping[str, Style], _: Translator) -> str:
    """``Album of 3: Shinkai, strength 100%`` (or ``Album of 3: Original``)."""
    title = title_of(look.style, styles)
    what = _("Original") if not look.strength else _("{style}, strength {percent}%", style=title, percent=look.strength)
    return _.plural("Album of {count} picture: {look}", "Album of {count} pictures: {look}", count, look=what)


def failures(outcomes: Sequence[Accepted | JobError]) -> list[str]:
    """Each distinct reason a picture of an album was not drawn, once."""
    return list(
        dict.fromkeys(outcome.message for outcome in outcomes if isinstance(outcome, JobError) and outcome.message)
    )


async def answer_album(album: PendingAlbum, update: Update, context: BotContext) -> None:
    """Stylize every image of ``album`` and reply with one album plus one message of buttons."""
    service = context.service
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    messages = sorted(album.messages, key=lambda m: m.message_id)
    first = messages[0] if messages else message_of(update)
    if album.skipped:
        await first.reply_text(
            _.plural(
                "I skipped {count} item of the album that isn't a photo.",
                "I skipped {count} items of the album that aren't photos.",
                album.skipped,
            )
        )
    limit = download_limit(service.settings)
    sizes = [(m.document or m.photo[-1]).file_size for m in messages]
    for size in sorted({size for size in sizes if size is not None and size > limit}):  # never downloaded, as alone
        await first.reply_text(_.say(too_large_message(size, limit)))
    messages = [m for m, size in zip(messages, sizes, strict=True) if size is None or size <= limit]
    if not messages:
        return
    await first.reply_chat_action(ChatAction.UPLOAD_PHOTO)
    owner = person_owner(update)
    images = [bytes(await (await (m.document or m.photo[-1]).get_file()).download_as_bytearray()) for m in messages]
    orders = [
        Order(
            user=owner, image=image, output_format=PHOTO_FORMAT, chosen=settings, owner=owner, group=group_owner(update)
        )
        for image in images
    ]
    total = len(orders)
    status = await first.reply_text(_("Drawing your album: {done} of {total} done…", done=0, total=total))

    async def show_done(done: int) -> None:
        await best_effort(status.edit_text(_("Drawing your album: {done} of {total} done…", done=done, total=total)))

    outcomes = await service.submit_in_turn(orders, show_done)
    await best_effort(status.delete())
    drawn = [(Look.of(outcome), await outcome.handle.result()) for outcome in outcomes if isinstance(outcome, Accepted)]
    for reason in failures(outcomes):
        await first.reply_text(_.say(reason))
    if not drawn:
        return
    styles = service.styles_by_name()
    if len(drawn) < MIN_ALBUM:
        ((single, result),) = drawn
        await first.reply_photo(
            result.image,
            caption=caption(single, styles, result.notes, _),
            reply_markup=keyboard(single, styles.values(), _),
        )
        return
    sent = await first.reply_media_group([InputMediaPhoto(result.image) for _look, result in drawn])
    record = AlbumRecord([look.key for look, _result in drawn], [m.message_id for m in sent])
    look = drawn[0][0]
    album_look = Look(await service.keep_source(record.to_bytes(), owner=owner), look.style, look.strength)
    await first.reply_text(
        album_caption(album_look, len(drawn), styles, _),
        reply_markup=album_keyboard(album_look, list(styles.values()), _),
    )


async def on_album_button(update: Update, context: BotContext) -> None:
    """An album button: re-style every picture of the album in its message, then redraw the buttons."""
    query = query_of(update)
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    look = Look.from_callback_data((query.data or "").removeprefix(ALBUM_DATA_PREFIX))
    service = context.service
    kept = await service.find_source(look.key) if look is not None else None
    record = AlbumRecord.from_bytes(kept) if kept is not None else None
    buttons = query.message
    if look is None or record is None or not isinstance(buttons, Message):
        await query.answer(_(ALBUM_EXPIRED), show_alert=True)
        return
    if not may_restyle(buttons, query.from_user.id):
        await query.answer(_(NOT_YOURS))
        return
    # Read every picture first, so an album with one forgotten picture is refused as a whole, before any work.
    images = [await service.find_source(key) for key in record.sources]
    if any(image is None for image in images):
        await query.answer(_(ALBUM_EXPIRED), show_alert=True)
        return
    styles = service.styles_by_name()
    title = title_of(look.style, styles)
    await query.answer(
        _("Re-styling the album as {style}…", style=title) if look.strength else _("Back to the original…")
    )
    user = person_owner(update)
    orders = [
        Order(
            user=user,
            image=image,
            style=look.style,
            strength=look.strength / FULL_STRENGTH,
            output_format=PHOTO_FORMAT,
            chosen=settings,
            keep=False,  # each picture is kept already, under the key the album record names
            group=group_owner(update),
        )
        for image in images
        if image is not None
    ]
    settled = buttons.text or ""

    async def show_done(done: int) -> None:
        progress = _("Re-styling: {done} of {total} done…", done=done, total=len(orders))
        await best_effort(buttons.edit_text(settled + "\n⏳ " + progress, reply_markup=buttons.reply_markup))

    await show_done(0)
    outcomes = await service.submit_in_turn(orders, show_done)
    for message_id, outcome in zip(record.messages, outcomes, strict=True):
        if isinstance(outcome, Accepted):
            result = await outcome.handle.result()
            await context.bot.edit_message_media(
                InputMediaPhoto(result.image), chat_id=buttons.chat_id, message_id=message_id
            )
    for reason in failures(outcomes):
        await buttons.reply_text(_.say(reason))
    await best_effort(
        buttons.edit_text(
            album_caption(look, len(record.sources), styles, _),
            reply_markup=album_keyboard(look, list(styles.values()), _),
        )
    )
