"""The web front end's memory of submitted jobs: a bounded store whose finished jobs expire.

The pool forgets a job once it has answered; the HTTP API must still answer ``GET /jobs/{id}`` and stream
progress to a page that connects a moment later. Each stored job has one follower task reading the pool's
progress events and keeping only the latest one per stage, so a slow reader never holds a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator

from bot.eta import queued_progress
from bot.jobs import JobError, JobFailed, JobHandle, JobProgress, JobRequest, JobResult, JobStage, QueueFull
from bot.pool import BUSY_MESSAGE, SHUTDOWN_MESSAGE

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
StageTimer = Callable[[JobStage, float], None]

JOB_ID_BYTES = 12  # 96 random bits: ids are the only thing guarding a job's result
UNEXPECTED_FAILURE = "Something went wrong on the server while making your picture. Please try again."
TERMINAL_STAGES = frozenset({JobStage.DONE, JobStage.FAILED})
DRAIN_POLL_SECONDS = 0.05


class WebJob:
    """One submitted job as the API shows it: the request's choices, the latest progress, then one outcome.

    ``seq`` grows by one on every change, so a reader can tell whether it has seen the current state.
    """

    def __init__(self, job_id: str, handle: JobHandle, request: JobRequest, source: str) -> None:
        self.id = job_id
        self.handle = handle
        self.source = source
        self.style = request.style
        self.strength = request.strength
        self.faces = request.faces
        self.progress = JobProgress(
            JobStage.QUEUED, position=handle.position or None, wait_seconds=queued_progress(handle).wait_seconds
        )
        self.seq = 0
        self._latest_per_stage: dict[JobStage, tuple[int, JobProgress]] = {JobStage.QUEUED: (0, self.progress)}
        self.result: JobResult | None = None
        self.error: JobError | None = None
        self.finished_at: float | None = None
        self._changed = asyncio.Event()
        self._done = asyncio.Event()
        self._collected = asyncio.Event()

    @property
    def state(self) -> str:
        """``queued``, ``running``, ``done`` or ``failed``."""
        if self.result is not None:
            return "done"
        if self.error is not None:
            return "failed"
        return "queued" if self.progress.stage == JobStage.QUEUED else "running"

    @property
    def finished(self) -> bool:
        """True once the job has its result or error."""
        return self._done.is_set()

    async def wait(self) -> None:
        """Return once the job has finished."""
        await self._done.wait()

    def collect(self) -> None:
        """The client has been given the job's outcome (its result, or its error): a stopping server may forget it."""
        if self.finished:
            self._collected.set()

    async def changes(self, seen: int = -1) -> AsyncIterator[int]:
        """Yield the current ``seq`` each time it moves past ``seen``; ends once the job finished.

        Intermediate states a slow reader missed are skipped: it always sees the latest one (and, through
        ``progress_since``, the last event of every stage it missed).
        """
        while True:
            if self.seq > seen:
                seen = self.seq
                yield seen
            if self.finished and self.seq <= seen:
                return
            changed = self._changed
            await changed.wait()

    def progress_since(self, seen: int) -> list[tuple[int, JobProgress]]:
        """The latest ``(seq, progress)`` of each stage newer than ``seen``, in order: a slow reader may skip
        fractions within a stage, never a whole stage (a fast "finishing" would otherwise vanish behind "done")."""
        return sorted(
            ((seq, progress) for seq, progress in self._latest_per_stage.values() if seq > seen),
            key=lambda item: item[0],
        )

    def _touch(self) -> None:
        self.seq += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _update(self, progress: JobProgress) -> None:
        if self.finished or progress.stage in TERMINAL_STAGES:
            return  # the outcome itself is recorded by _finish, with the result or error
        self.progress = progress
        self._touch()
        self._latest_per_stage[progress.stage] = (self.seq, progress)

    def _finish(self, outcome: JobResult | JobError, now: float) -> None:
        if isinstance(outcome, JobError):
            self.error = outcome
            self.progress = JobProgress(JobStage.FAILED)
        else:
            self.result = outcome
            self.progress = JobProgress(JobStage.DONE, fraction=1.0)
        self.finished_at = now
        self._done.set()
        self._touch()


class JobStore:
    """About ``capacity`` jobs; a finished job is forgotten ``ttl`` seconds after it finished.

    When full, the oldest finished job makes room. An unfinished job is never dropped (someone is waiting for it:
    a /stylize call, an event stream): ``ensure_room`` refuses a new job with "busy" instead, before it is
    submitted. Jobs admitted while there was room are all kept, so the store may pass ``capacity`` by the few
    requests in flight at that moment.

    Args:
        capacity: most jobs held.
        ttl: seconds a finished job (and its result image) is kept.
        clock: monotonic seconds; injectable so tests can move time.
        on_stage_time: called with each stage a job left and the seconds it spent there (for metrics).
    """

    def __init__(
        self, capacity: int, ttl: float, clock: Clock = time.monotonic, on_stage_time: StageTimer | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock
        self._on_stage_time = on_stage_time
        self._jobs: OrderedDict[str, WebJob] = OrderedDict()
        self._followers: dict[str, asyncio.Task[None]] = {}
        self.closing = False
        self._admitting = 0  # requests between ensure_room and add: a drain waits for them too

    def ensure_room(self) -> None:
        """Raise ``QueueFull`` (busy) when the store is full of unfinished jobs, or the server is stopping; call it
        before submitting one."""
        if self.closing:
            raise QueueFull(SHUTDOWN_MESSAGE)
        self._expire()
        if len(self._jobs) >= self.capacity and all(not job.finished for job in self._jobs.values()):
            raise QueueFull(BUSY_MESSAGE)

    @contextlib.contextmanager
    def admitting(self) -> Iterator[None]:
        """Around submitting a job that will be ``add``ed: ``ensure_room`` first, and a drain that starts meanwhile
        waits for the job too."""
        self.ensure_room()
        self._admitting += 1
        try:
            yield
        finally:
            self._admitting -= 1

    def add(self, handle: JobHandle, request: JobRequest, source: str) -> WebJob:
        """Store a freshly submitted job under a new random id and start following its progress."""
        self._expire()
        while len(self._jobs) >= self.capacity and self._evict():
            pass
        job = WebJob(secrets.token_urlsafe(JOB_ID_BYTES), handle, request, source)
        self._jobs[job.id] = job
        self._followers[job.id] = asyncio.create_task(self._follow(job), name=f"follow-job-{job.id}")
        return job

    def get(self, job_id: str) -> WebJob | None:
        """The job with this id, or ``None`` if it never existed or expired."""
        self._expire()
        return self._jobs.get(job_id)

    def __len__(self) -> int:
        self._expire()
        return len(self._jobs)

    async def drain(self, finish: float, collect: float) -> None:
        """Take no new job; wait up to ``finish`` seconds for every job to finish, then up to ``collect`` seconds for
        their clients to collect the outcomes (the result read, or the error in a status, result or event stream):
        a stopping server keeps answering for the jobs it accepted until their people have their answers."""
        self.closing = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(finish):
                # Jobs being admitted have nothing to wait on yet; a short poll covers them and the rest alike.
                while self._admitting or not all(job.finished for job in self._jobs.values()):  # noqa: ASYNC110
                    await asyncio.sleep(DRAIN_POLL_SECONDS)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(collect):
                await asyncio.gather(*(job._collected.wait() for job in self._jobs.values() if job.finished))

    async def close(self) -> None:
        """Stop following every job (the pool still finishes them; nobody here will read the outcome)."""
        followers = list(self._followers.values())
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
        self._followers.clear()

    async def _follow(self, job: WebJob) -> None:
        stage, since = job.progress.stage, self._clock()
        try:
            async for progress in job.handle.progress():
                if progress.stage != stage:
                    self._time_stage(stage, self._clock() - since)
                    stage, since = progress.stage, self._clock()
                job._update(progress)
            outcome: JobResult | JobError = await job.handle.result()
        except JobError as error:
            outcome = error
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("following job %s failed", job.id)
            outcome = JobFailed(UNEXPECTED_FAILURE)
        if not job.finished:
            job._finish(outcome, self._clock())
        self._followers.pop(job.id, None)

    def _time_stage(self, stage: JobStage, seconds: float) -> None:
        if self._on_stage_time is not None and stage not in TERMINAL_STAGES:
            self._on_stage_time(stage, seconds)

    def _expire(self) -> None:
        horizon = self._clock() - self.ttl
        expired = [
            job_id for job_id, job in self._jobs.items() if job.finished_at is not None and job.finished_at <= horizon
        ]
        for job_id in expired:
            self._drop(job_id)

    def _evict(self) -> bool:
        """Drop the oldest finished job; False when every job is unfinished."""
        oldest_finished = next((job_id for job_id, job in self._jobs.items() if job.finished), None)
        if oldest_finished is None:
            return False
        self._drop(oldest_finished)
        return True

    def _drop(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)
        follower = self._followers.pop(job_id, None)
        if follower is not None:
            follower.cancel()
