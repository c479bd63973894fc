"""Gathering a Telegram album: 2–10 photos sent together arrive as separate messages sharing a ``media_group_id``.

``AlbumCollector`` keeps them per chat and album until none has arrived for ``ALBUM_QUIET_SECONDS``, then hands
the whole album to the function it was made with (``albums.answer_album``), once, in its own task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from telegram import Message, Update

logger = logging.getLogger(__name__)

ALBUM_QUIET_SECONDS = 1.0  # Telegram delivers an album's messages within a fraction of a second of each other

ContextT = TypeVar("ContextT")


@dataclass
class PendingAlbum:
    """The messages of one album received so far."""

    messages: list[Message] = field(default_factory=list)
    skipped: int = 0  # members that are not images
    timer: asyncio.TimerHandle | None = None


AnswerAlbum = Callable[[PendingAlbum, Update, ContextT], Awaitable[None]]


class AlbumCollector(Generic[ContextT]):
    """Gathers the messages of each album (per chat and ``media_group_id``), then answers each album once.

    Args:
        answer: answers a whole album, given the last update of it and that update's context.
        quiet_seconds: how long after its last message an album counts as complete.
    """

    def __init__(self, answer: AnswerAlbum[ContextT], quiet_seconds: float = ALBUM_QUIET_SECONDS) -> None:
        self.answer = answer
        self.quiet_seconds = quiet_seconds
        self._pending: dict[tuple[int, str], PendingAlbum] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def is_collecting(self, message: Message) -> bool:
        """Whether ``message`` belongs to an album being collected (in groups only the album's first item carries
        the caption that mentions the bot; the others belong to it all the same)."""
        return message.media_group_id is not None and (message.chat_id, message.media_group_id) in self._pending

    def collect(self, update: Update, context: ContextT, image: bool = True) -> bool:
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

    def _start(self, key: tuple[int, str], update: Update, context: ContextT) -> None:
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

    async def _answer_logged(self, album: PendingAlbum, update: Update, context: ContextT) -> None:
        try:
            await self.answer(album, update, context)
        except Exception:
            chat = update.effective_chat
            logger.exception("Answering an album in chat %s failed", chat.id if chat else "-")
