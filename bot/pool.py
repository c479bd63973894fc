"""The inference pool: worker processes that each load the engine once, fed fairly from one bounded queue.

Jobs come in from asyncio (``submit``) and wait in a queue that is served round-robin over people; whenever a
worker is idle the next job goes to it. Each worker is a spawned process talking over a pipe: a job goes in,
progress stages and then exactly one outcome come back. A worker that dies is replaced and its job tried once
more; a job that runs too long has its worker killed and replaced. A job that comes while every worker is idle is
lent all their cores until another job comes (see ``PoolConfig``). ``InferencePool`` is a ``JobQueue``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.eta import RecentJobs, estimate_waits
from bot.fairness import FairQueue
from bot.i18n import N_, Text
from bot.joblog import JobLog
from bot.jobs import (
    JobError,
    JobFailed,
    JobKind,
    JobProgress,
    JobRejected,
    JobRequest,
    JobResult,
    JobStage,
    JobTimedOut,
    PersonQueueFull,
    QueueFull,
)
from bot.overview import WorkerState, last_line
from bot.worker import DONE, ERROR, FATAL, READY, REJECTED, run_worker
from bot.worker_environment import start_without_secrets
from bot.worker_process import TIMED_OUT, WorkerProcess

if TYPE_CHECKING:
    from bot.config import Settings

logger = logging.getLogger(__name__)

DEFAULT_ENGINE_FACTORY = "animegan:Engine"
MAX_ATTEMPTS = 2  # a job whose worker dies is tried once more on a fresh worker
WORKER_START_TIMEOUT = 180.0  # importing torch and building the engine on a busy 2-core box can be slow
RESPAWN_FIRST_DELAY = 1.0
RESPAWN_MAX_DELAY = 60.0
ENGINE_STAGES = frozenset({JobStage.DECODING, JobStage.FINDING_FACES, JobStage.STYLIZING, JobStage.FINISHING})
# Jobs short enough to hold every core alone: those that wait behind one wait a second or so at most.
LENDABLE_KINDS = frozenset({JobKind.PHOTO, JobKind.CLIP_PLAN, JobKind.CLIP_JOIN})

BUSY_MESSAGE = N_("The bot is busy right now. Please try again in a minute.")
CRASH_MESSAGE = N_("Sorry, something went wrong while drawing your picture. Please try again.")
TIMEOUT_MESSAGE = N_("Your picture took too long to draw, so it was stopped. Please try again with a smaller photo.")
SHUTDOWN_MESSAGE = N_("The bot is restarting. Please send your photo again in a minute.")


def person_busy_message(waiting: int) -> str:
    """The plain sentence for a person who already has ``waiting`` photos in the queue."""
    return Text.plural(
        "You already have {count} photo waiting. Please wait for it to finish, then send more.",
        "You already have {count} photos waiting. Please wait for them to finish, then send more.",
        waiting,
    )


def available_cores() -> int:
    """CPU cores this process may run on (respects affinity masks and container cpusets)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def core_ids() -> tuple[int, ...]:
    """The ids of the CPU cores this process may run on (empty where the system can't pin processes)."""
    return tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else ()


@dataclass(frozen=True)
class PoolConfig:
    """How many workers, how long the queue, and how each worker builds its engine.

    ``engine_factory`` is an import path ("module:callable") called once per worker with ``engine_options``;
    the object it returns must have ``stylize_bytes`` (see ``animegan.Engine``), and if it has ``warm_up()`` (else
    ``load()``) that is called once at start, before the worker reports ready. ``cores``: CPU core ids the workers
    are pinned to, ``threads`` each, every worker alone on its own (empty: not pinned). ``lend_idle_cores``: with
    two pinned workers or more, a photo (or a clip's plan or join) that comes while every worker is idle runs alone
    on all of ``cores``, in the worker holding the first block; when another job comes, that worker goes back to
    its own block at the job's next stage, and the others start once it has.
    """

    workers: int = 1
    queue_size: int = 32
    per_user_queued: int = 3
    job_timeout: float = 120.0
    threads: int = 1
    engine_factory: str = DEFAULT_ENGINE_FACTORY
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    cores: tuple[int, ...] = ()
    lend_idle_cores: bool = False

    def core_blocks(self) -> list[tuple[int, ...]]:
        """The cores of each worker slot (``threads`` each), or none when ``cores`` can't give every worker its own."""
        if not self.cores or self.workers * self.threads > len(self.cores):
            return []
        return [self.cores[slot * self.threads : (slot + 1) * self.threads] for slot in range(self.workers)]

    def lent_cores(self, block: tuple[int, ...]) -> tuple[int, ...]:
        """The cores the worker pinned to ``block`` runs a lone job on: all of them for the first block when cores
        are lent, else none."""
        blocks = self.core_blocks()
        return self.cores if self.lend_idle_cores and len(blocks) > 1 and block == blocks[0] else ()

    @classmethod
    def from_settings(cls, settings: Settings, cores: int | None = None) -> PoolConfig:
        """The pool of ``settings``: each worker owns ``cores // workers`` threads (at least one), pinned to as many
        cores of its own when they go round (two unpinned workers slow each other down: docs/scaling.md; with
        ``cores`` given, a count for a test or bench, nothing is pinned)."""
        threads = max(1, (cores or available_cores()) // settings.workers)
        options = {
            "weights_dir": settings.weights_dir,
            "precision": settings.precision,
            "working_size": settings.working_size,
            "scene_side": settings.scene_side,
            "threads": threads,
            "max_pixels": settings.max_pixels,
        }
        return cls(
            workers=settings.workers,
            queue_size=settings.queue_size,
            per_user_queued=settings.per_user_queued,
            job_timeout=settings.job_timeout,
            threads=threads,
            engine_factory=settings.engine_factory,
            engine_options=options,
            cores=() if cores is not None else core_ids(),
            lend_idle_cores=settings.lend_idle_cores,
        )


class WorkerStartError(RuntimeError):
    """A worker process could not build its engine (bad factory path, broken install...)."""


# --- one job, as the front ends see it ------------------------------------------------------------------------


class PoolJob(JobLog):
    """A job accepted by the pool; a ``JobHandle``. Methods starting with ``_`` belong to the pool."""

    def __init__(self, request: JobRequest, attempts: int = 0) -> None:
        super().__init__()
        self.id = secrets.token_hex(6)
        self.request = request
        self.attempts = attempts  # attempts started, including those made elsewhere before (worker hosts)
        self.first_attempt = attempts
        self.submitted = time.monotonic()

    def _started(self) -> None:
        self.attempts += 1
        self._position = 0

    def _stage(self, name: str, fraction: float) -> None:
        try:
            stage = JobStage(name)
        except ValueError:
            return
        if stage in ENGINE_STAGES and not self.done:
            self._report(JobProgress(stage, fraction=fraction))


# --- the pool -------------------------------------------------------------------------------------------------


class InferencePool:
    """Worker processes running the engine, fed round-robin over people from a bounded queue; a ``JobQueue``.

    Guarantees: never more jobs running than workers; a person's waiting jobs are capped
    (``per_user_queued``) and so is the whole queue (``queue_size``), beyond which ``submit`` raises
    ``QueueFull``; every accepted job ends in exactly one outcome. Call ``start`` before use and ``stop`` after.
    """

    def __init__(self, config: PoolConfig, on_attempt: Callable[[PoolJob], None] | None = None) -> None:
        if config.workers < 1:
            raise ValueError(f"a pool needs at least one worker, got {config.workers}")
        self.config = config
        self._on_attempt = on_attempt  # told of every attempt as it starts, retries included
        self._context = multiprocessing.get_context("spawn")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: FairQueue[PoolJob] = FairQueue()
        self._places: dict[str, str] = {}  # clips in flight: place -> person (see JobQueue.release)
        self._workers: set[WorkerProcess] = set()  # started and not retired, busy or idle
        self._idle: deque[WorkerProcess] = deque()
        self._lent: list[WorkerProcess] | None = None  # while a lone job runs on every core: the idle workers it holds
        self._borrower: WorkerProcess | None = None  # ...and the worker running it
        self._free_cores: deque[tuple[int, ...]] = deque(config.core_blocks())  # blocks no live worker holds
        self._tasks: set[asyncio.Task[None]] = set()  # job runs and worker replacements
        self._settled = asyncio.Event()  # nothing waiting and nothing running
        self._settled.set()
        self._running = 0
        self._spawned = 0
        self._restarts = 0
        self._counts: Counter[str] = Counter()
        self._run_seconds = 0.0
        self._wait_seconds = 0.0
        self.recent = RecentJobs()  # service times of the latest jobs (wait estimates) and throughput
        self._began: dict[WorkerProcess, float] = {}  # busy worker -> when its job started (monotonic)
        self._done_by_pid: Counter[int] = Counter()
        self._errors_by_pid: dict[int, str] = {}  # the latest failure each live worker had, one line
        self.last_error = ""  # the latest failure of any worker, one line (for operators)
        self._closing = False  # no new jobs
        self._stopped = False  # nothing dispatched, nothing respawned
        self._shutdown: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Start every worker and wait until each has built its engine; ``WorkerStartError`` if one can't."""
        self._loop = asyncio.get_running_loop()
        started = await asyncio.gather(*(self._spawn() for _ in range(self.config.workers)), return_exceptions=True)
        workers = [worker for worker in started if isinstance(worker, WorkerProcess)]
        failures = [error for error in started if isinstance(error, BaseException)]
        if failures:
            await asyncio.gather(*(worker.kill() for worker in workers))
            raise failures[0]
        for worker in workers:
            self._add_idle(worker)

    async def submit(self, request: JobRequest, attempts_made: int = 0) -> PoolJob:
        """Accept a job, or raise ``QueueFull`` (the queue is full, or stopping) or ``PersonQueueFull`` (this
        person's share of it is).

        ``attempts_made``: attempts this job already had elsewhere (a worker host taking over a job from a host
        that died); they count towards ``MAX_ATTEMPTS`` like the local retries.
        """
        if self._loop is None:
            raise RuntimeError("InferencePool.start() must be awaited before submit()")
        if self._closing:
            raise self._refuse(SHUTDOWN_MESSAGE)
        if request.place not in self._places:  # a step of a clip holding its place is never refused
            waiting, mine = self._occupied(request.user)
            runs_now = bool(self._idle) and not request.place  # a clip keeps its place beyond its first step
            if waiting >= self.config.queue_size and not runs_now:
                raise self._refuse(BUSY_MESSAGE)
            if mine >= self.config.per_user_queued and not runs_now:
                raise self._refuse(person_busy_message(mine), PersonQueueFull)
            if request.place:
                self._places[request.place] = request.user
        job = PoolJob(request, attempts_made)
        self._counts["accepted"] += 1
        self._waiting.push(request.user, job)
        self._dispatch()
        return job

    async def release(self, user: str, place: str) -> None:
        """Give back the place ``user``'s clip held (see ``JobQueue.release``)."""
        self._places.pop(place, None)

    def _occupied(self, user: str) -> tuple[int, int]:
        """Places taken in the queue, in all and by ``user``: each waiting photo, and each clip in flight once
        (its steps ride on the clip's place)."""
        photos = [job.request.user for job in self._waiting.order() if not job.request.place]
        clips = list(self._places.values())
        return len(photos) + len(clips), photos.count(user) + clips.count(user)

    async def stop(self, grace: float | None = None) -> None:
        """Take no new jobs; let waiting and running ones finish for up to ``grace`` seconds (default: the job
        timeout); answer any left with ``JobFailed``; end the workers. Later calls wait for the first one."""
        if self._shutdown is None:
            self._shutdown = asyncio.ensure_future(self._shut_down(grace))
        await asyncio.shield(self._shutdown)

    async def _shut_down(self, grace: float | None) -> None:
        self._closing = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.job_timeout if grace is None else grace):
                await self._settled.wait()
        self._stopped = True
        for job in self._waiting.clear():
            self._fail(job, JobFailed(SHUTDOWN_MESSAGE), "failed")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        workers, self._workers = list(self._workers), set()
        self._idle.clear()
        self._lent = self._borrower = None
        await asyncio.gather(*(worker.kill() if worker.busy else worker.stop() for worker in workers))

    def stats(self) -> dict[str, int | float]:
        """Queue depth, jobs running, workers alive, restarts, jobs by outcome, mean run and wait seconds, and the
        seconds the oldest waiting job has waited."""
        done = self._counts["done"]
        started = self._counts["started"]
        return {
            "queue_depth": len(self._waiting),
            "running": self._running,
            "workers": self.config.workers,
            "workers_alive": len(self._workers),
            "restarts": self._restarts,
            "jobs_accepted": self._counts["accepted"],
            "jobs_refused": self._counts["refused"],
            "jobs_done": done,
            "jobs_rejected": self._counts["rejected"],
            "jobs_failed": self._counts["failed"],
            "jobs_timed_out": self._counts["timed_out"],
            "mean_seconds": self._run_seconds / done if done else 0.0,
            "mean_wait_seconds": self._wait_seconds / started if started else 0.0,
            "oldest_wait_seconds": max(
                (time.monotonic() - job.submitted for job in self._waiting.order()), default=0.0
            ),
        }

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for operators and tests)."""
        return sorted(worker.pid for worker in self._workers if worker.pid is not None)

    def worker_details(self) -> dict[str, dict[str, str]]:
        """What each live worker said of itself when it became ready (its cores, its models' precision paths), by
        process id: plain strings for ``/readyz``."""
        return {str(worker.pid): worker.details for worker in self._workers if worker.pid is not None}

    def mean_seconds(self) -> float | None:
        """Mean service time of the latest jobs (``bot/eta.py``; None: none finished lately)."""
        return self.recent.mean_seconds()

    def wait_estimates(self, count: int) -> list[float | None]:
        """Estimated seconds until each of the first ``count`` waiting jobs reaches a worker (``bot/eta.py``);
        ``None`` each while no job finished lately or no worker is alive."""
        mean = self.recent.mean_seconds()
        if mean is None or not self._workers:
            return [None] * count
        now = time.monotonic()  # a worker just handed a job whose run has not begun yet has run it 0 s
        running = [now - self._began.get(worker, now) for worker in self._workers if worker not in self._idle]
        return list(estimate_waits(count, len(self._workers), running, mean))

    def worker_states(self) -> list[WorkerState]:
        """Each live worker: busy or idle, for how long, jobs done, its latest failure (for the admin page)."""
        now = time.monotonic()
        states = []
        for worker in sorted(self._workers, key=lambda worker: worker.pid or 0):
            pid = worker.pid or 0
            began = self._began.get(worker)
            states.append(
                WorkerState(
                    name=f"worker {pid}",
                    alive=not worker.exited,
                    slots=1,
                    busy=int(worker.busy),
                    jobs_done=self._done_by_pid[pid],
                    running_seconds=None if began is None else round(now - began, 1),
                    last_error=self._errors_by_pid.get(pid, ""),
                )
            )
        return states

    # --- dispatching ---

    def _dispatch(self) -> None:
        """Hand waiting jobs to idle workers, round-robin over people, then tell the rest where they stand.

        Runs synchronously after every change (a job queued, a worker freed or started), so a job never waits
        while a worker is idle and the queue bound counts exactly the jobs that must wait.
        """
        while self._idle and self._waiting and not self._stopped:
            if (lead := self._lead_for_lone_job()) is not None:
                self._idle.remove(lead)
                if lead.give_back is not None:
                    lead.give_back.clear()  # a request left from its last lone job
                self._lent, self._borrower = list(self._idle), lead
                self._idle.clear()
                self._track(self._run(lead, self._waiting.pop(), lead.lent_cores))
                break
            worker = self._idle.popleft()
            self._track(self._run(worker, self._waiting.pop()))
        if self._waiting and self._borrower is not None and self._borrower.give_back is not None:
            self._borrower.give_back.set()  # it goes back to its own cores at its job's next stage
        waiting = self._waiting.order()
        for position, (job, wait) in enumerate(zip(waiting, self.wait_estimates(len(waiting)), strict=True), start=1):
            job._queued_at(position, wait)
        if self._waiting or self._running:
            self._settled.clear()
        else:
            self._settled.set()

    def _lead_for_lone_job(self) -> WorkerProcess | None:
        """The worker to run the only waiting job on every core, when it may: nothing runs, every worker is idle and
        the job is short (``LENDABLE_KINDS``); else ``None``."""
        if self._running or len(self._waiting) != 1 or len(self._idle) != len(self._workers):
            return None
        if self._waiting.order()[0].request.kind not in LENDABLE_KINDS:
            return None
        return next((worker for worker in self._idle if worker.lent_cores), None)

    def _end_lending(self) -> None:
        """The lone job ended or gave its lent cores back: the workers it held are idle again."""
        lent, self._lent, self._borrower = self._lent or [], None, None
        self._idle.extend(worker for worker in lent if not worker.retired and not worker.exited)

    def _given_back(self) -> None:
        self._end_lending()
        self._dispatch()

    async def _run(self, worker: WorkerProcess, job: PoolJob, cores: tuple[int, ...] = ()) -> None:
        worker.busy = True
        self._running += 1
        if job.attempts == job.first_attempt:
            self._counts["started"] += 1
            self._wait_seconds += time.monotonic() - job.submitted
        job._started()
        if self._on_attempt is not None:
            self._on_attempt(job)
        began = self._began[worker] = time.monotonic()
        try:
            outcome = await worker.run(
                job.id, job.request, job._stage, self.config.job_timeout, cores, self._given_back if cores else None
            )
        except asyncio.CancelledError:
            self._fail(job, JobFailed(SHUTDOWN_MESSAGE), "failed")
            raise
        finally:
            self._running -= 1
            self._began.pop(worker, None)
            if cores:
                self._end_lending()
        kind = outcome[0]
        self._note(worker, kind, outcome)
        if kind == DONE:
            self._succeed(job, outcome[2], time.monotonic() - began)
        elif kind == REJECTED:
            self._fail(job, JobRejected(outcome[2]), "rejected")
        elif kind == ERROR:
            logger.error("job %s failed in worker %s:\n%s", job.id, worker.pid, outcome[2])
            self._fail(job, JobFailed(CRASH_MESSAGE), "failed")
        elif kind == TIMED_OUT:
            logger.warning("job %s ran past %.0f s; replacing worker %s", job.id, self.config.job_timeout, worker.pid)
            self._fail(job, JobTimedOut(TIMEOUT_MESSAGE), "timed_out")
        elif job.attempts < MAX_ATTEMPTS:
            logger.warning("worker %s died running job %s; retrying on a fresh worker", worker.pid, job.id)
            self._waiting.push_urgent(job)
        else:
            logger.error("worker %s died running job %s again; giving up", worker.pid, job.id)
            self._fail(job, JobFailed(CRASH_MESSAGE), "failed")
        if kind in (DONE, REJECTED, ERROR) and not worker.exited:
            worker.busy = False
            self._idle.append(worker)
        else:
            self._replace(worker)
        self._dispatch()

    def _note(self, worker: WorkerProcess, kind: object, outcome: tuple[Any, ...]) -> None:
        """Count the worker's job, or keep one line of its failure for the admin page."""
        pid = worker.pid or 0
        if kind == DONE:
            self._done_by_pid[pid] += 1
            return
        if kind == ERROR:
            error = last_line(str(outcome[2]))
        elif kind == TIMED_OUT:
            error = f"a job ran past {self.config.job_timeout:.0f} s"
        elif kind == REJECTED:
            return  # the photo's fault, not the worker's
        else:
            error = f"the process died (exit code {worker.exitcode})"
        self._errors_by_pid[pid] = self.last_error = f"{time.strftime('%H:%M:%S')} {error}"

    def _succeed(self, job: PoolJob, payload: tuple[bytes, str, int, int, tuple[str, ...]], seconds: float) -> None:
        data, mime, width, height, notes = payload
        request = job.request
        result = JobResult(data, mime, width, height, request.style, request.strength, seconds, notes)
        if job._finish(result):
            self._counts["done"] += 1
            self._run_seconds += seconds
            self.recent.record(seconds)

    def _fail(self, job: PoolJob, error: JobError, outcome: str) -> None:
        if job._finish(error):
            self._counts[outcome] += 1

    def _refuse(self, message: str, kind: type[QueueFull] = QueueFull) -> QueueFull:
        self._counts["refused"] += 1
        return kind(message)

    # --- workers ---

    async def _spawn(self) -> WorkerProcess:
        assert self._loop is not None
        self._spawned += 1
        cores = self._free_cores.popleft() if self._free_cores else ()
        try:
            return await self._start_worker(cores)
        except BaseException:
            if cores:
                self._free_cores.append(cores)
            raise

    async def _start_worker(self, cores: tuple[int, ...]) -> WorkerProcess:
        assert self._loop is not None
        here, there = self._context.Pipe()
        config = self.config
        lent_cores = config.lent_cores(cores)
        give_back = self._context.Event() if lent_cores else None
        process = self._context.Process(
            target=run_worker,
            args=(
                config.engine_factory,
                dict(config.engine_options),
                config.threads,
                there,
                cores,
                lent_cores,
                give_back,
            ),
            name=f"animegan-worker-{self._spawned}",
            daemon=True,
        )
        try:
            await asyncio.to_thread(start_without_secrets, process)
        finally:
            there.close()  # the child holds its own copy; ours would keep the pipe open after the child dies
        worker = WorkerProcess(process, here, self._loop, self._on_exit, cores, lent_cores, give_back)
        try:
            async with asyncio.timeout(WORKER_START_TIMEOUT):
                first = await worker.inbox.get()
        except TimeoutError:
            first = (FATAL, f"no answer within {WORKER_START_TIMEOUT:.0f} s")
        except asyncio.CancelledError:
            await worker.kill()
            raise
        if first[0] != READY:
            await worker.kill()
            detail = first[1] if len(first) > 1 else f"exit code {worker.exitcode}"
            raise WorkerStartError(f"worker could not start the engine {self.config.engine_factory!r}:\n{detail}")
        worker.details = dict(first[2]) if len(first) > 2 else {}
        return worker

    def _add_idle(self, worker: WorkerProcess) -> None:
        self._workers.add(worker)
        if self._lent is not None:  # a lone job holds every core: the newcomer waits with the others
            self._lent.append(worker)
            return
        self._idle.append(worker)
        self._dispatch()

    def _on_exit(self, worker: WorkerProcess) -> None:
        """A worker's pipe closed. Busy workers are handled by their job's run; idle ones are replaced here."""
        lent = self._lent or []
        if worker in self._idle or worker in lent:
            (self._idle if worker in self._idle else lent).remove(worker)
            logger.warning("idle worker %s exited (code %s); replacing it", worker.pid, worker.exitcode)
            self._replace(worker)

    def _replace(self, worker: WorkerProcess) -> None:
        worker.retired = True
        if worker.cores:  # its replacement takes them
            self._free_cores.appendleft(worker.cores)
        self._done_by_pid.pop(worker.pid or 0, None)
        self._errors_by_pid.pop(worker.pid or 0, None)
        self._workers.discard(worker)
        if not self._stopped:
            self._restarts += 1
            self._track(self._respawn(worker))

    async def _respawn(self, old: WorkerProcess) -> None:
        await old.kill()
        delay = RESPAWN_FIRST_DELAY
        while not self._stopped:
            try:
                worker = await self._spawn()
            except WorkerStartError:
                logger.exception("could not replace a worker; trying again in %.0f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESPAWN_MAX_DELAY)
                continue
            self._add_idle(worker)
            return

    def _track(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
