"""Telegram status lines: a message (or a caption) that follows a job, edited no faster than Telegram allows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram.error import TelegramError

from bot.eta import wait_phrase
from bot.i18n import ENGLISH, Translator
from bot.jobs import JobProgress, JobStage, progress_label

logger = logging.getLogger(__name__)

PROGRESS_STEP = 10  # percent; coarser steps mean fewer status edits
STATUS_EDIT_INTERVAL = 1.0  # seconds between edits of one status line (Telegram: about one message a second per chat)


def status_text(progress: JobProgress, _: Translator = ENGLISH) -> str:
    """The status line for a progress event: the queue position (and the estimated wait, when known) while queued,
    then the stage (with the frame for a clip) and a coarse percent."""
    if progress.stage is JobStage.QUEUED:
        if not progress.position:
            return _("Starting…")
        if progress.wait_seconds is None:
            return _("In the queue, position {position}…", position=progress.position)
        wait = _.say(wait_phrase(progress.wait_seconds))
        return _("In the queue, position {position}, about {wait} to wait…", position=progress.position, wait=wait)
    label = _.say(progress_label(progress))
    percent = int(progress.fraction * 100) // PROGRESS_STEP * PROGRESS_STEP
    return f"{label}… {percent}%" if percent > 0 else f"{label}…"


class StatusLine:
    """Something shown that follows a job's latest status text: ``edit`` is called only when the text changed, at
    most once per ``STATUS_EDIT_INTERVAL`` (Telegram throttles bursts of edits), from its own task so a slow or
    refused edit never holds up the job's result.

    Args:
        edit: shows a new text (edits a message's text, or a photo's caption).
        text: what is shown now.
    """

    def __init__(self, edit: Callable[[str], Awaitable[object]], text: str) -> None:
        self._edit = edit
        self._shown = self._wanted = text
        self._changed = asyncio.Event()
        self._writer = asyncio.create_task(self._write())

    def show(self, text: str) -> None:
        """Make ``text`` the status (shown within ``STATUS_EDIT_INTERVAL``; intermediate texts may be skipped)."""
        self._wanted = text
        self._changed.set()

    async def close(self) -> None:
        """Stop following; what was shown last stays."""
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)

    async def _write(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._wanted != self._shown:
                text = self._wanted
                if await best_effort(self._edit(text)):
                    self._shown = text
                await asyncio.sleep(STATUS_EDIT_INTERVAL)


async def best_effort(call: Awaitable[object]) -> bool:
    """Await a cosmetic Bot API call (status edits); a refusal or a flood wait must not lose the photo."""
    try:
        await call
    except TelegramError as error:
        logger.info("Telegram status update skipped: %s", error)
        return False
    return True
