"""How long a queued job will wait for a worker, forecast from the service times of the jobs that finished lately.

The estimate (README, "Queue wait estimate"): every job is taken to last ``mean`` seconds, the mean service time
of the latest ``RECENT_JOBS`` finished jobs (those of the last ``RECENT_SECONDS``). Each worker slot is free at
``mean - elapsed`` from now for a job running ``elapsed`` seconds (``mean / 2`` when the elapsed time is not known,
as on a cluster front end, which sees only how many jobs run), and at 0 when idle. The jobs ahead are handed out
in queue order, each to the slot free first; the job at ``position`` waits until a slot is free after them. With
every job lasting ``mean`` this is the exact wait; it is ``position x mean / workers`` on average, and closer than
that for the first places in the queue. No job finished lately: no estimate (``None``).
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Sequence

from bot.i18n import Text
from bot.joblog import JobLog
from bot.jobs import JobHandle, JobProgress, JobStage

RECENT_JOBS = 20  # the mean of the latest service times: enough to smooth one odd photo, few enough to follow load
RECENT_SECONDS = 900.0  # service times older than this say little about now
THROUGHPUT_MINUTES = 60  # the admin page's chart: jobs finished per minute over the last hour
UNKNOWN_ELAPSED_SHARE = 0.5  # a running job whose start is unknown has, on average, half its time left
SECONDS_STEP = 5  # waits under a minute are shown in steps of 5 s: the estimate is no finer than that
MINUTE = 60.0


def estimate_waits(count: int, workers: int, running: Sequence[float | None], mean: float) -> list[float]:
    """Seconds until each of the first ``count`` waiting jobs reaches a worker (position 1 first).

    Args:
        count: jobs waiting, in queue order.
        workers: worker slots alive (busy or idle).
        running: seconds each running job has run so far (``None``: unknown); at most ``workers`` are used.
        mean: seconds a job is taken to last.
    Returns:
        ``count`` non-decreasing estimates (all 0 when no worker is alive: no estimate can be made; callers ask
        ``workers`` first).
    """
    if workers < 1 or count < 1:
        return [0.0] * max(count, 0)
    free = [
        max(0.0, mean - elapsed) if elapsed is not None else mean * UNKNOWN_ELAPSED_SHARE
        for elapsed in list(running)[:workers]
    ]
    free += [0.0] * (workers - len(free))
    heapq.heapify(free)
    waits = []
    for _ in range(count):
        starts_at = heapq.heappop(free)
        waits.append(starts_at)
        heapq.heappush(free, starts_at + mean)
    return waits


def estimate_wait(position: int, workers: int, running: Sequence[float | None], mean: float) -> float:
    """Seconds until the job at 1-based ``position`` in the queue reaches a worker (see ``estimate_waits``)."""
    waits = estimate_waits(position, workers, running, mean)
    return waits[-1] if waits else 0.0


class RecentJobs:
    """The jobs that finished lately: their service times (for the estimate) and how many finished each minute.

    Args:
        clock: wall-clock seconds (injectable for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._times: deque[tuple[float, float]] = deque(maxlen=RECENT_JOBS)  # (finished at, seconds)
        self._per_minute: dict[int, int] = {}  # minute number (epoch // 60) -> jobs finished

    def record(self, seconds: float) -> None:
        """A job finished after ``seconds`` in a worker."""
        self._times.append((self._clock(), seconds))
        self.count(1)

    def count(self, finished: int) -> None:
        """``finished`` jobs finished now whose service times are not known here (a cluster's counters)."""
        if finished <= 0:
            return
        minute = int(self._clock() // MINUTE)
        self._per_minute[minute] = self._per_minute.get(minute, 0) + finished
        oldest = minute - THROUGHPUT_MINUTES
        for old in [key for key in self._per_minute if key <= oldest]:
            del self._per_minute[old]

    def mean_seconds(self) -> float | None:
        """Mean service time of the latest ``RECENT_JOBS`` jobs of the last ``RECENT_SECONDS`` (None: none)."""
        since = self._clock() - RECENT_SECONDS
        recent = [seconds for finished, seconds in self._times if finished >= since]
        return sum(recent) / len(recent) if recent else None

    def per_minute(self) -> list[int]:
        """Jobs finished in each of the last ``THROUGHPUT_MINUTES`` minutes, oldest first (the current one last)."""
        now = int(self._clock() // MINUTE)
        return [self._per_minute.get(minute, 0) for minute in range(now - THROUGHPUT_MINUTES + 1, now + 1)]


def wait_phrase(seconds: float) -> Text:
    """A wait as people read it: "15 s" (rounded up to 5 s, at least 5 s) or "3 min" (rounded up)."""
    if seconds < MINUTE:
        return Text("{seconds} s", seconds=max(SECONDS_STEP, math.ceil(seconds / SECONDS_STEP) * SECONDS_STEP))
    return Text("{minutes} min", minutes=math.ceil(seconds / MINUTE))


def queued_progress(handle: JobHandle) -> JobProgress:
    """The queued event of a job just submitted: its position and, when the queue could tell, its estimated wait."""
    wait = handle.wait_seconds if isinstance(handle, JobLog) else None
    return JobProgress(JobStage.QUEUED, position=handle.position, wait_seconds=wait)
