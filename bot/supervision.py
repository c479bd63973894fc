"""Supervision of the long-lived tasks of a process: the chat front ends, the Redis loops, a worker host's loops.

The policy, the same for every task:

- A task is run as attempts. An attempt that returns has ended on purpose (its owner is stopping): the task ends.
- An attempt that raises has failed unexpectedly: the error is logged at once with its traceback, the task is
  marked down (``/readyz`` names it, ``animebot_task_up{task=...}`` is 0), the restart is counted
  (``animebot_task_restarts_total{task=...}``), and a new attempt starts after a backoff that doubles from
  ``first_backoff`` up to ``MAX_BACKOFF_SECONDS``.
- An attempt is up once it says so (``ready``; a loop is up as soon as it starts). A task that has failed
  ``max_failures`` times in a row without a success (an attempt up for ``STABLE_SECONDS``) cannot recover here: the
  supervisor gives up (``gave_up`` is set), and ``animebot serve`` or ``animebot worker`` stops in order and exits
  non-zero, so the container is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.config import Settings

logger = logging.getLogger(__name__)

MAX_FAILURES_IN_A_ROW = 5
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
STABLE_SECONDS = 60.0  # an attempt up this long was a success: the failures before it no longer count

Attempt = Callable[[], Awaitable[None]]


class GaveUp(Exception):
    """A supervised task failed ``max_failures`` times in a row: the process should exit non-zero."""

    def __init__(self, task: str) -> None:
        super().__init__(f"the {task} task failed too many times in a row; exiting so the process is restarted")
        self.task = task


@dataclass
class TaskState:
    """What the supervisor knows of one task: whether it is up, restarts so far, failures in a row."""

    up: bool = True
    restarts: int = 0
    failures_in_a_row: int = 0
    up_since: float | None = None


class Supervisor:
    """Runs tasks as attempts, restarting failed ones with backoff (see the module's policy).

    Args:
        max_failures: failures in a row without a success after which the supervisor gives up.
        first_backoff: seconds before the first restart; doubled at each failure in a row.
    """

    def __init__(self, max_failures: int = MAX_FAILURES_IN_A_ROW, first_backoff: float = FIRST_BACKOFF_SECONDS) -> None:
        self.max_failures = max(1, max_failures)
        self.first_backoff = first_backoff
        self.tasks: dict[str, TaskState] = {}
        self.gave_up = asyncio.Event()
        self.given_up: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Supervisor:
        """A supervisor with ``task_failures`` and ``task_backoff``."""
        return cls(settings.task_failures, settings.task_backoff)

    def start(
        self, name: str, attempt: Attempt, *, up_at_start: bool = True, stop: asyncio.Event | None = None
    ) -> asyncio.Task[None]:
        """Run ``attempt()`` as the task ``name`` until an attempt returns (or the task is cancelled).

        With ``up_at_start`` false, an attempt counts as up only once it calls ``ready(name)`` (a front end, once
        it reached its platform); until the first failure the task is not reported down either. Once ``stop`` is
        set, a task waiting to restart ends instead.
        """
        self.tasks[name] = TaskState()
        return asyncio.create_task(self._supervise(name, attempt, up_at_start, stop or asyncio.Event()), name=name)

    def ready(self, name: str) -> None:
        """The current attempt of ``name`` is up."""
        state = self.tasks.setdefault(name, TaskState())
        state.up = True
        state.up_since = time.monotonic()

    def down(self) -> list[str]:
        """Names of the tasks down now (failed, and not up again yet), sorted."""
        return sorted(name for name, state in self.tasks.items() if not state.up)

    def failed_once(self, name: str, error: BaseException) -> None:
        """A short-lived helper task (not restarted, e.g. a job's progress relay) failed: log and count it."""
        logger.error("%s failed unexpectedly", name, exc_info=error)
        self.tasks.setdefault(name, TaskState()).restarts += 1

    async def _supervise(self, name: str, attempt: Attempt, up_at_start: bool, stop: asyncio.Event) -> None:
        state = self.tasks[name]
        while True:
            if up_at_start:
                self.ready(name)
            try:
                await attempt()
                return
            except Exception as error:
                logger.error("%s failed unexpectedly; restarting it", name, exc_info=error)
                error_at = time.monotonic()
            stable = state.up_since is not None and error_at - state.up_since >= STABLE_SECONDS
            state.failures_in_a_row = 1 if stable else state.failures_in_a_row + 1
            state.up, state.up_since = False, None
            state.restarts += 1
            if state.failures_in_a_row >= self.max_failures:
                logger.critical("%s failed %d times in a row; giving up", name, state.failures_in_a_row)
                self.given_up = self.given_up or name
                self.gave_up.set()
                return
            backoff = min(MAX_BACKOFF_SECONDS, self.first_backoff * 2 ** (state.failures_in_a_row - 1))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            if stop.is_set():
                return

    def check(self) -> None:
        """Raise ``GaveUp`` when a task could not recover."""
        if self.given_up is not None:
            raise GaveUp(self.given_up)


async def until_stopped_or_given_up(stop: asyncio.Event, supervisor: Supervisor) -> None:
    """Wait until ``stop`` is set or ``supervisor`` gave up on a task (then ``stop`` is set too, for the others)."""
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(supervisor.gave_up.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waits, return_exceptions=True)
    stop.set()
