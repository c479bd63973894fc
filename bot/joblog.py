"""What every queue's job handle shares: its progress events and its one outcome, for any number of readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bot.jobs import JobError, JobProgress, JobResult, JobStage

TERMINAL_STAGES = frozenset({JobStage.DONE, JobStage.FAILED})


class JobLog:
    """A ``JobHandle`` without an id: events in order, then exactly one outcome. ``_`` methods belong to the queue."""

    def __init__(self, position: int = 0) -> None:
        self._position = position
        self._wait_seconds: float | None = None
        self._events: list[JobProgress] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._outcome: JobResult | JobError | None = None
        self._finished = asyncio.Event()

    @property
    def position(self) -> int:
        """1-based place in the queue now (0 once running or finished)."""
        return self._position

    @property
    def done(self) -> bool:
        """True once the job has its outcome."""
        return self._outcome is not None

    @property
    def events(self) -> tuple[JobProgress, ...]:
        """Every progress event so far, oldest first."""
        return tuple(self._events)

    async def progress(self) -> AsyncIterator[JobProgress]:
        """Progress events from the first one, ending after ``DONE`` or ``FAILED``; any number of readers."""
        seen = 0
        while True:
            while seen < len(self._events):
                event = self._events[seen]
                seen += 1
                yield event
                if event.stage in TERMINAL_STAGES:
                    return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    async def result(self) -> JobResult:
        """The stylized image; raises the job's ``JobError`` on failure."""
        await self._finished.wait()
        if isinstance(self._outcome, JobError):
            raise self._outcome
        assert self._outcome is not None
        return self._outcome

    def _report(self, event: JobProgress) -> None:
        self._events.append(event)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def wait_seconds(self) -> float | None:
        """The estimated wait reported with the latest place in the queue (None: unknown, or not queued)."""
        return self._wait_seconds if self._position else None

    def _queued_at(self, position: int, wait_seconds: float | None = None) -> None:
        """A new place in the queue, with its estimated wait (reported only when the place changed)."""
        if position != self._position:
            self._position = position
            self._wait_seconds = wait_seconds
            self._report(JobProgress(JobStage.QUEUED, position=position, wait_seconds=wait_seconds))

    def _finish(self, outcome: JobResult | JobError) -> bool:
        """Record the outcome; False (and nothing changes) if the job already had one."""
        if self._outcome is not None:
            return False
        self._outcome = outcome
        self._position = 0
        failed = isinstance(outcome, JobError)
        self._report(JobProgress(JobStage.FAILED if failed else JobStage.DONE, fraction=0.0 if failed else 1.0))
        self._finished.set()
        return True
