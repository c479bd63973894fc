"""Telegram albums: 2–10 photos sent together arrive as separate messages sharing a ``media_group_id``.

``AlbumCollector`` gathers them until none has arrived for ``ALBUM_QUIET_SECONDS``, then answers the whole album:
one status message ("Drawing your album: 1 of 3 done…"), one ``sendMediaGroup`` album of the pictures, and one
message with buttons that re-style every picture of the album at once.

Photos go to the service one by one as the person's own queue allows (``PersonQueueFull``: wait for one of
theirs to finish, then submit the next), so a big album never crowds out other people nor gets refused
wholesale. Album members that aren't images (a video, a text file) are skipped with one plain sentence.

The album's buttons need every source photo and every message of the album, more than the 64 bytes of callback
data hold, so the list is itself kept in the source store (JSON, under its own key, owned by the person) and the
buttons carry ``album:<key>|<style>|<strength>``: it survives restarts and works on every front end, like a photo.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, Message, Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from adapters.telegram_buttons import NOOP_DATA, Look, caption, keyboard, may_restyle
from adapters.telegram_settings import chat_settings, effective_style, person_owner, translator_for
from adapters.telegram_status import best_effort
from adapters.telegram_stickers import STICKER_DATA
from animegan.manifest import Style
from bot.i18n import Translator
from bot.jobs import JobError, JobHandle, JobResult, JobRequest, PersonQueueFull
from bot.restyle import FULL_STRENGTH
from bot.service import Service

logger = logging.getLogger(__name__)

ALBUM_QUIET_SECONDS = 1.0  # Telegram delivers an album's messages within a fraction of a second of each other
ALBUM_DATA_PREFIX = "album:"
ALBUM_DATA_PATTERN = r"^album:"
SERVICE_KEY = "service"
USER_PREFIX = "telegram:"
PHOTO_FORMAT = "jpeg"
MIN_ALBUM = 2  # sendMediaGroup takes 2-10 items; one picture left is sent as a plain photo


@dataclass
class PendingAlbum:
    """The messages of one album received so far."""

    messages: list[Message] = field(default_factory=list)
    skipped: int = 0  # members that are not images
    timer: asyncio.TimerHandle | None = None


@dataclass(frozen=True)
class AlbumRecord:
    """What an album's buttons need: its source photos and the messages showing them, in order."""

    sources: list[str]
    messages: list[int]

    def to_bytes(self) -> bytes:
        return json.dumps({"sources": self.sources, "messages": self.messages}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> AlbumRecord | None:
        try:
            record = json.loads(data)
            return cls([str(k) for k in record["sources"]], [int(m) for m in record["messages"]])
        except (ValueError, KeyError, TypeError):
            return None


def _service(context: ContextTypes.DEFAULT_TYPE) -> Service:
    return context.bot_data[SERVICE_KEY]


def album_keyboard(look: Look, styles: list[Style], _: Translator) -> InlineKeyboardMarkup:
    """The photo keyboard, with every button re-styling the album (``look.key`` is the album record's key)."""
    single = keyboard(look, styles, _)
    rows = [
        [
            button if button.callback_data == NOOP_DATA else InlineKeyboardButton(
                button.text, callback_data=ALBUM_DATA_PREFIX + str(button.callback_data)
            )
            for button in row
            if button.callback_data != STICKER_DATA  # a sticker is of one picture, not of an album
        ]
        for row in single.inline_keyboard
    ]
    return InlineKeyboardMarkup(rows)


def album_caption(look: Look, count: int, styles: dict[str, Style], _: Translator) -> str:
    """``Album of 3: Shinkai, strength 100%`` (or ``Album of 3: Original``)."""
    title = styles[look.style].title if look.style in styles else look.style
    what = _("Original") if not look.strength else _("{style}, strength {percent}%", style=title, percent=look.strength)
    return _.plural("Album of {count} picture: {look}", "Album of {count} pictures: {look}", count, look=what)


async def run_fairly(
    service: Service, requests: list[JobRequest], on_done: Callable[[int], Awaitable[None]]
) -> list[JobResult | JobError]:
    """Run every request, submitting the next only while the person's own queue has room.

    A ``PersonQueueFull`` refusal waits for one of the person's running jobs here, then tries again; any other
    refusal (rate limit, busy) is that picture's outcome. ``on_done(finished)`` is called as pictures finish.
    """
    outcomes: list[JobResult | JobError | None] = [None] * len(requests)
    running: dict[asyncio.Task[JobResult], int] = {}
    finished = 0

    async def collect(done: set[asyncio.Task[JobResult]]) -> None:
        nonlocal finished
        for task in done:
            index = running.pop(task)
            try:
                outcomes[index] = task.result()
            except JobError as error:
                outcomes[index] = error
            finished += 1
            await on_done(finished)

    for index, request in enumerate(requests):
        while True:
            try:
                handle: JobHandle = await service.submit(request)
            except PersonQueueFull as refusal:
                if not running:
                    outcomes[index] = refusal
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                await collect(done)
                continue
            except JobError as refusal:
                outcomes[index] = refusal
                break
            running[asyncio.ensure_future(handle.result())] = index
            break
    while running:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        await collect(done)
    return [outcome for outcome in outcomes if outcome is not None]


class AlbumCollector:
    """Gathers the messages of each album (per chat and ``media_group_id``), then answers each album once."""

    def __init__(self, quiet_seconds: float = ALBUM_QUIET_SECONDS) -> None:
        self.quiet_seconds = quiet_seconds
        self._pending: dict[tuple[int, str], PendingAlbum] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def is_collecting(self, message: Message) -> bool:
        """Whether ``message`` belongs to an album being collected (in groups only the album's first item carries
        the caption that mentions the bot; the others belong to it all the same)."""
        return message.media_group_id is not None and (message.chat_id, message.media_group_id) in self._pending

    def collect(self, update: Update, context: ContextTypes.DEFAULT_TYPE, image: bool = True) -> bool:
        """Take one album message (``image``: a photo or image file; else a member to skip: a video, a text
        file); True when taken."""
        message = update.effective_message
        if message is None or message.media_group_id is None:
            return False
        key = (message.chat_id, message.media_group_id)
        album = self._pending.setdefault(key, PendingAlbum())
        if image:
            album.messages.append(message)
        else:
            album.skipped += 1
        if album.timer is not None:
            album.timer.cancel()
        loop = asyncio.get_running_loop()
        album.timer = loop.call_later(self.quiet_seconds, self._start, key, update, context)
        return True

    def _start(self, key: tuple[int, str], update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        album = self._pending.pop(key)
        task = asyncio.create_task(self._answer_logged(album, update, context))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Wait for every album being answered (when the bot stops)."""
        while self._tasks or any(a.timer for a in self._pending.values()):
            if self._tasks:
                await asyncio.wait(list(self._tasks))
            else:
                await asyncio.sleep(self.quiet_seconds)

    async def _answer_logged(self, album: PendingAlbum, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await answer_album(album, update, context)
        except Exception:
            logger.exception("Answering an album in chat %s failed", update.effective_chat.id)


async def answer_album(album: PendingAlbum, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stylize every image of ``album`` and reply with one album plus one message of buttons."""
    service = _service(context)
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    messages = sorted(album.messages, key=lambda m: m.message_id)
    first = messages[0] if messages else update.effective_message
    usable = messages
    skipped = album.skipped
    if skipped:
        await first.reply_text(
            _.plural(
                "I skipped {count} item of the album that isn't a photo.",
                "I skipped {count} items of the album that aren't photos.",
                skipped,
            )
        )
    if not usable:
        return
    await first.reply_chat_action(ChatAction.UPLOAD_PHOTO)
    owner = person_owner(update)
    images = [bytes(await (await (m.document or m.photo[-1]).get_file()).download_as_bytearray()) for m in usable]
    sources = [await service.keep_source(image, owner=owner) for image in images]
    style = effective_style(settings, service)
    look = Look("", style, settings.strength)
    requests = [
        JobRequest(
            user=f"{USER_PREFIX}{update.effective_user.id}",
            image=image,
            style=style,
            strength=look.strength / FULL_STRENGTH,
            faces=settings.faces,
            output_format=PHOTO_FORMAT,
        )
        for image in images
    ]
    status = await first.reply_text(_("Drawing your album: {done} of {total} done…", done=0, total=len(requests)))

    async def show_done(done: int) -> None:
        await best_effort(status.edit_text(_("Drawing your album: {done} of {total} done…", done=done, total=len(requests))))

    outcomes = await run_fairly(service, requests, show_done)
    await best_effort(status.delete())
    drawn = [(source, outcome) for source, outcome in zip(sources, outcomes, strict=True) if isinstance(outcome, JobResult)]
    failures = [outcome.message for outcome in outcomes if isinstance(outcome, JobError) and outcome.message]
    for message in dict.fromkeys(failures):  # each distinct reason once
        await first.reply_text(_.say(message))
    if not drawn:
        return
    styles = {s.name: s for s in service.styles()}
    if len(drawn) < MIN_ALBUM:
        (source, result), = drawn
        single = Look(source, style, look.strength)
        await first.reply_photo(result.image, caption=caption(single, styles, result.notes, _),
                                reply_markup=keyboard(single, styles.values(), _))
        return
    sent = await first.reply_media_group([InputMediaPhoto(result.image) for _source, result in drawn])
    record = AlbumRecord([source for source, _result in drawn], [m.message_id for m in sent])
    album_look = Look(await service.keep_source(record.to_bytes(), owner=owner), style, look.strength)
    await first.reply_text(
        album_caption(album_look, len(drawn), styles, _), reply_markup=album_keyboard(album_look, list(styles.values()), _)
    )


async def on_album_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An album button: re-style every picture of the album in its message, then redraw the buttons."""
    query = update.callback_query
    settings = await chat_settings(update, context)
    _ = translator_for(settings, update)
    look = Look.from_callback_data((query.data or "").removeprefix(ALBUM_DATA_PREFIX))
    service = _service(context)
    kept = await service.find_source(look.key) if look is not None else None
    record = AlbumRecord.from_bytes(kept) if kept is not None else None
    buttons = query.message
    if look is None or record is None or not isinstance(buttons, Message):
        await query.answer(_("That album is no longer in my memory: send the photos again."), show_alert=True)
        return
    if not may_restyle(buttons, query.from_user.id):
        await query.answer(_("Only the person who sent the photo can restyle it."))
        return
    images = [await service.find_source(key) for key in record.sources]
    if any(image is None for image in images):
        await query.answer(_("That album is no longer in my memory: send the photos again."), show_alert=True)
        return
    styles = {s.name: s for s in service.styles()}
    title = styles[look.style].title if look.style in styles else look.style
    await query.answer(_("Re-styling the album as {style}…", style=title) if look.strength else _("Back to the original…"))
    requests = [
        JobRequest(
            user=f"{USER_PREFIX}{query.from_user.id}",
            image=image,
            style=look.style,
            strength=look.strength / FULL_STRENGTH,
            faces=settings.faces,
            output_format=PHOTO_FORMAT,
        )
        for image in images
        if image is not None
    ]
    settled = buttons.text or ""

    async def show_done(done: int) -> None:
        await best_effort(
            buttons.edit_text(
                settled + "\n⏳ " + _("Re-styling: {done} of {total} done…", done=done, total=len(requests)),
                reply_markup=buttons.reply_markup,
            )
        )

    await show_done(0)
    outcomes = await run_fairly(service, requests, show_done)
    for message_id, outcome in zip(record.messages, outcomes, strict=True):
        if isinstance(outcome, JobResult):
            await context.bot.edit_message_media(
                InputMediaPhoto(outcome.image), chat_id=buttons.chat_id, message_id=message_id
            )
    failures = [outcome.message for outcome in outcomes if isinstance(outcome, JobError) and outcome.message]
    for message in dict.fromkeys(failures):
        await buttons.reply_text(_.say(message))
    await best_effort(
        buttons.edit_text(
            album_caption(look, len(record.sources), styles, _),
            reply_markup=album_keyboard(look, list(styles.values()), _),
        )
    )

