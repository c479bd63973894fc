"""What the admin page shows of the queue: depth, the wait a photo sent now would have, workers, throughput.

Built from what each queue already keeps (the in-process pool, or a cluster front end's view of Redis); no
person's photo or name is in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.eta import RecentJobs

MAX_ERROR_CHARS = 200


@dataclass(frozen=True)
class WorkerState:
    """A worker process (one box) or a worker host (the cluster), as operators see it.

    ``busy``: of its ``slots`` (worker processes), how many run a job; ``running_seconds``: how long the job of a
    busy worker process has run (None: idle, or a host); ``seen_seconds_ago``: a host's last heartbeat (None: a
    local process); ``last_error``: one line, with its time.
    """

    name: str
    alive: bool
    slots: int
    busy: int
    jobs_done: int
    last_error: str = ""
    running_seconds: float | None = None
    seen_seconds_ago: float | None = None


@dataclass(frozen=True)
class QueueOverview:
    """The queue now: ``wait_seconds`` is the estimated wait of a photo sent now (None: unknown, see bot/eta.py);
    ``per_minute`` the jobs finished in each of the last 60 minutes, oldest first."""

    mode: str  # "embedded" (one box) or "cluster" (Redis, worker hosts)
    queue_depth: int
    running: int
    workers_alive: int
    worker_hosts: int
    mean_seconds: float | None
    wait_seconds: float | None
    per_minute: list[int]
    workers: list[WorkerState] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


class QueueReadings(Protocol):
    """What a queue tells the wait estimates and the admin page (the pool, or a cluster front end's queue)."""

    recent: RecentJobs

    @property
    def last_error(self) -> str:
        """The latest failure of a worker, one line with its time ("" for none)."""
        ...

    def mean_seconds(self) -> float | None:
        """Mean service time of the latest jobs (None: none finished lately)."""
        ...

    def wait_estimates(self, count: int) -> list[float | None]:
        """Estimated seconds until each of the first ``count`` waiting jobs reaches a worker (None: unknown)."""
        ...

    def worker_states(self) -> list[WorkerState]:
        """Each worker process, or each worker host."""
        ...


COUNTED = ("jobs_accepted", "jobs_done", "jobs_failed", "jobs_timed_out", "jobs_rejected", "jobs_refused")


def last_line(text: str) -> str:
    """The last non-empty line of an error report (a traceback's exception line), cut to ``MAX_ERROR_CHARS``."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:MAX_ERROR_CHARS] if lines else ""


def queue_overview(queue: QueueReadings, stats: dict[str, int | float], clustered: bool) -> QueueOverview:
    """The queue as the admin page shows it, from ``queue`` and the service's ``stats`` (no I/O: the numbers each
    queue last read)."""
    depth = int(stats.get("queue_depth", 0))
    return QueueOverview(
        mode="cluster" if clustered else "embedded",
        queue_depth=depth,
        running=int(stats.get("running", 0)),
        workers_alive=int(stats.get("workers_alive", 0)),
        worker_hosts=int(stats.get("worker_hosts", 0)),
        mean_seconds=queue.mean_seconds(),
        wait_seconds=queue.wait_estimates(depth + 1)[-1],
        per_minute=queue.recent.per_minute(),
        workers=queue.worker_states(),
        counts={key.removeprefix("jobs_"): int(stats[key]) for key in COUNTED if key in stats},
        last_error=queue.last_error,
    )
