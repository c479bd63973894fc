"""Re-styling a reply in place from its buttons: what its status says, and why only the last press counts.

A chat front end edits one message per photo. While a button's job runs, that message shows one status line
("Re-styling as Hayao… 40%"), never the stages of the first upload ("Reading the photo…": the photo is already
kept). When the person presses again before it is done, the newer press wins: the earlier one stops following
its job (its status edits and its result are dropped), so two jobs never write over each other on one message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from bot.i18n import ENGLISH, Translator
from bot.jobs import JobProgress, JobStage
from bot.settings_store import FULL_STRENGTH

MessageKey = TypeVar("MessageKey", bound=Hashable)

PERCENT_STEP = 10  # coarse steps: fewer status edits, and each one says something new
# Where each engine stage starts and ends in the whole job, as fractions (stylizing is most of the time).
STAGE_SPANS: dict[JobStage, tuple[float, float]] = {
    JobStage.DECODING: (0.0, 0.05),
    JobStage.FINDING_FACES: (0.05, 0.15),
    JobStage.STYLIZING: (0.15, 0.9),
    JobStage.FINISHING: (0.9, 1.0),
    JobStage.DONE: (1.0, 1.0),
}


def job_fraction(progress: JobProgress) -> float:
    """How much of the whole job is done, in [0, 1], from an event's stage and its fraction within the stage."""
    start, end = STAGE_SPANS.get(progress.stage, (0.0, 0.0))
    return start + (end - start) * min(max(progress.fraction, 0.0), 1.0)


def restyle_status(title: str, strength: int, progress: JobProgress, _: Translator = ENGLISH) -> str:
    """The status line of a re-style to ``title`` at ``strength`` percent (0: back to the photo as it was).

    ``Re-styling as Hayao… 40%``, ``Re-styling as Hayao at 75%… (2nd in the queue)``, ``Back to the original…``.
    """
    if not strength:
        action = _("Back to the original")
    elif strength == FULL_STRENGTH:
        action = _("Re-styling as {style}", style=title)
    else:
        action = _("Re-styling as {style} at {percent}%", style=title, percent=strength)
    if progress.stage is JobStage.QUEUED:
        if not progress.position:
            return f"{action}…"
        place = _ordinal(progress.position) if _.language == "en" else str(progress.position)
        return _("{action}… ({place} in the queue)", action=action, place=place)
    percent = int(job_fraction(progress) * 100) // PERCENT_STEP * PERCENT_STEP
    return f"{action}… {percent}%" if percent else f"{action}…"


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


class LatestPress(Generic[MessageKey]):
    """At most one re-style followed per message: a newer press cancels the work of the earlier ones first.

    The work is whatever follows a submitted job and edits the message (status, then the result); it is cancelled,
    and awaited, before the newer work starts, so their edits never interleave. The earlier job itself still runs
    to its end in the queue; only its result is dropped.
    """

    def __init__(self) -> None:
        self._running: dict[MessageKey, list[asyncio.Task[None]]] = {}

    async def run(self, message: MessageKey, work: Callable[[], Awaitable[None]]) -> bool:
        """Run ``work`` for ``message`` once the earlier presses' work has stopped; False if a later press won."""
        earlier = list(self._running.get(message, []))
        task = asyncio.create_task(self._after(earlier, work))
        self._running.setdefault(message, []).append(task)
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:  # the caller itself is stopping (the front end shuts down)
            task.cancel()
            raise
        finally:
            tasks = self._running[message]
            tasks.remove(task)
            if not tasks:
                del self._running[message]
        if task.cancelled():
            return False
        task.result()  # the work's own error, if any
        return True

    def running(self, message: MessageKey) -> int:
        """Presses on ``message`` still being followed (for tests and stats)."""
        return len(self._running.get(message, []))

    @staticmethod
    async def _after(earlier: list[asyncio.Task[None]], work: Callable[[], Awaitable[None]]) -> None:
        for task in earlier:
            task.cancel()
        if earlier:
            await asyncio.wait(earlier)
        await work()
