"""The front end's side of the distributed queue: ``RedisQueue``, a ``ManagedQueue`` the service submits to.

Admission is one Lua script (bounds, per-person cap, fair queue), so front ends racing each other admit exactly
the bound. Each accepted job's progress is read back from its own event stream by one follower per front end,
which also fetches the outcome once the terminal event arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import KeyT, StreamIdT

from bot.budgets import BudgetExhausted, Overdrawn, next_reset
from bot.cluster.connection import REDIS_DOWN, Backoff, connect, ensure_group, must_wait
from bot.cluster.hosts import HostReport, host_states, mean_seconds, read_reports
from bot.cluster.keys import Keys
from bot.cluster.records import Fields, StreamReplies, outcome_from_fields, progress_from_fields, request_fields
from bot.cluster.refusals import RedisRefusals
from bot.cluster.scripts import ClusterScripts
from bot.config import Settings
from bot.eta import RecentJobs, estimate_waits
from bot.i18n import N_
from bot.joblog import TERMINAL_STAGES, JobLog
from bot.jobs import JobError, JobFailed, JobKind, JobProgress, JobRequest, JobResult, JobStage, QueueFull, RateLimited
from bot.limits import RATE_WINDOW_SECONDS, retry_message
from bot.overview import WorkerState
from bot.pool import BUSY_MESSAGE, SHUTDOWN_MESSAGE, person_busy_message
from bot.supervision import Supervisor

logger = logging.getLogger(__name__)

JOB_ID_BYTES = 12
FOLLOW_BLOCK_MS = 250  # how soon a newly submitted job joins the follower's blocking read
STATS_EVERY_SECONDS = 1.0
MIN_PLACE_TTL_SECONDS = 600.0
PLACE_TTL_JOB_TIMEOUTS = 4  # a clip's step may wait for a worker, then run up to the job timeout
UNREACHABLE_MESSAGE = N_("The bot cannot reach its job queue right now. Please try again in a minute.")
LOST_MESSAGE = N_("Your picture's result expired before it could be sent. Please try again.")
NEW_JOB_KINDS = (JobKind.PHOTO, JobKind.CLIP, JobKind.CLIP_PLAN)  # what a person sends; the rate limit counts these


class RedisJob(JobLog):
    """A job accepted into Redis, as its front end sees it; a ``JobHandle``. ``_`` methods belong to the queue."""

    def __init__(self, job_id: str, position: int) -> None:
        super().__init__(position)
        self.id = job_id
        self.submitted = time.monotonic()

    def _running(self, event: JobProgress) -> None:
        self._position = 0
        self._report(event)


class RedisQueue:
    """Jobs go to worker hosts through Redis; a ``ManagedQueue`` (``bot.service``).

    Args:
        settings: ``redis_url``, the bounds (``queue_size``, ``per_user_queued``), ``job_timeout``, ``result_ttl``.
        client: a Redis client (default: one for ``settings.redis_url``); closed by ``stop``.
        keys: key names (default prefix ``animebot``).
        supervisor: restarts the background loops if they fail (default: one of its own).
        rate_limit: a person's new jobs (photos, clips) per minute, checked and counted in the same script that
            admits them, so front ends racing each other admit exactly the limit (0: no limit; the steps of an
            accepted clip never count).
    """

    def __init__(
        self,
        settings: Settings,
        client: Redis | None = None,
        keys: Keys | None = None,
        supervisor: Supervisor | None = None,
        rate_limit: int = 0,
    ) -> None:
        if client is None:
            if settings.redis_url is None:
                raise ValueError("RedisQueue needs settings.redis_url")
            client = connect(settings.redis_url.get_secret_value())
        self.settings = settings
        self.keys = keys or Keys()
        self.supervisor = supervisor or Supervisor.from_settings(settings)
        self.rate_limit = rate_limit
        self._client = client
        self._scripts = ClusterScripts(client, self.keys)
        self._following: dict[str, tuple[RedisJob, str]] = {}  # job id -> (job, last event id read)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._closed = False  # the background loops end (a cancel alone may be swallowed by a connect timeout)
        self._connected = False
        self.refusals = RedisRefusals()  # writes Redis refused, by reason (a metric)
        self._stats: dict[str, int | float] = {"workers": 0, "workers_alive": 0, "worker_hosts": 0}
        self._hosts: dict[str, tuple[HostReport, bool]] = {}  # host -> (its report, alive), read with the stats
        self._done_seen: int | None = None
        self.recent = RecentJobs()  # jobs the whole cluster finished per minute, since this front end started

    @property
    def connected(self) -> bool:
        """True while the last call to Redis succeeded."""
        return self._connected

    async def start(self) -> None:
        """Start following jobs and polling the numbers; does not wait for Redis (``/readyz`` says when it is up)."""
        self._tasks = [
            self.supervisor.start("redis-follow-jobs", self._follow),
            self.supervisor.start("redis-poll-stats", self._poll_stats),
        ]

    async def submit(self, request: JobRequest) -> RedisJob:
        """Admit the job in Redis, or raise ``RateLimited``, ``BudgetExhausted`` (a photo's or a clip's first step
        charged to ``request.charge``) or ``QueueFull`` (bounds reached, stopping, or Redis unreachable)."""
        if self._closing:
            raise QueueFull(SHUTDOWN_MESSAGE)
        job_id = secrets.token_urlsafe(JOB_ID_BYTES)
        fields = request_fields(request)
        settings = self.settings
        new_job = request.kind in NEW_JOB_KINDS
        rate_limit = self.rate_limit if new_job else 0
        charge = request.charge if new_job else None
        try:
            verdict, number, budget = await self._scripts.admit(
                request.user,
                settings.queue_size,
                settings.per_user_queued,
                job_id,
                fields,
                rate_limit,
                RATE_WINDOW_SECONDS,
                request.place,
                self.place_ttl,
                charge,
            )
        except Exception as error:
            if not must_wait(error):
                raise
            refusing = isinstance(error, ResponseError)  # there, but refusing writes (out of memory, read-only...)
            self.refusals.count(error)
            self._connected = refusing
            logger.warning("Redis could not admit a job: %s", error)
            raise QueueFull(BUSY_MESSAGE if refusing else UNREACHABLE_MESSAGE) from error
        if verdict == "rate":
            wait = number / 1000
            raise RateLimited(retry_message(rate_limit, wait), retry_after=wait)
        if verdict == "budget" and charge is not None:
            overdrawn = Overdrawn(charge.lines[budget], number)
            raise BudgetExhausted(charge.cost, overdrawn, next_reset(time.time()), charge.zone)
        if verdict == "busy":
            raise QueueFull(BUSY_MESSAGE)
        if verdict == "person":
            raise QueueFull(person_busy_message(number))
        job = RedisJob(job_id, number)
        self._following[job_id] = (job, "0")
        return job

    @property
    def place_ttl(self) -> float:
        """Seconds a clip's place is kept after its latest step, should its front end die before giving it back."""
        return max(MIN_PLACE_TTL_SECONDS, PLACE_TTL_JOB_TIMEOUTS * self.settings.job_timeout)

    async def release(self, user: str, place: str) -> None:
        """Give back the place ``user``'s clip held (see ``JobQueue.release``); if Redis is away, it expires."""
        try:
            await self._scripts.release(user, place)
        except Exception as error:
            if not must_wait(error):
                raise
            self.refusals.count(error)
            logger.warning("could not give back a clip's place (it expires): %s", error)

    async def stop(self, grace: float | None = None) -> None:
        """Take no new jobs; wait up to ``grace`` seconds (default: the job timeout plus one lease) for the
        outcomes of the jobs this front end accepted, so they can still be sent; then close the connection."""
        self._closing = True
        wait = self.settings.job_timeout + self.settings.lease_seconds if grace is None else grace
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                # Answers arrive through _follow, which has no event to wait on.
                while self._following:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for job, _ in self._following.values():
            job._finish(JobFailed(SHUTDOWN_MESSAGE))
        self._following.clear()
        await self._client.aclose()

    def stats(self) -> dict[str, int | float]:
        """The latest numbers read from Redis (refreshed every second), and whether Redis is reachable; the oldest
        wait and the refusals are this front end's own (its jobs still queued, the writes it was refused)."""
        return {
            **self._stats,
            "redis_connected": int(self._connected),
            "following": len(self._following),
            "oldest_wait_seconds": self._oldest_wait(),
            **self.refusals.stats(),
        }

    def _oldest_wait(self) -> float:
        """Seconds the longest-waiting of this front end's queued jobs has waited (0 when none waits)."""
        now = time.monotonic()
        return max((now - job.submitted for job, _ in self._following.values() if job.position > 0), default=0.0)

    @property
    def last_error(self) -> str:
        """The latest error any worker host reported (one line, with its time)."""
        errors = [report.last_error for report, _ in self._hosts.values() if report.last_error]
        return max(errors, default="")

    def mean_seconds(self) -> float | None:
        """The live hosts' recent mean service time (``bot/cluster/hosts.py``; None: no host knows one yet)."""
        return mean_seconds(self._hosts)

    def wait_estimates(self, count: int) -> list[float | None]:
        """Estimated seconds until each of the first ``count`` waiting jobs reaches a worker slot (``bot/eta.py``:
        the running jobs' elapsed times are not known here, so each is taken as half done)."""
        mean, alive = self.mean_seconds(), int(self._stats.get("workers_alive", 0))
        if mean is None or alive < 1:
            return [None] * count
        running = [None] * min(alive, int(self._stats.get("running", 0)))
        return list(estimate_waits(count, alive, running, mean))

    def worker_states(self) -> list[WorkerState]:
        """Every worker host that reported lately, live ones first."""
        return host_states(self._hosts)

    # --- background work ---

    async def _follow(self) -> None:
        """One blocking read over the event streams of every unfinished job of this front end."""
        backoff = Backoff()
        while not self._closed:
            if not self._following:
                await asyncio.sleep(FOLLOW_BLOCK_MS / 1000)
                continue
            streams: dict[KeyT, StreamIdT] = {
                self.keys.events(job_id): last for job_id, (_, last) in self._following.items()
            }
            try:
                replies = cast(StreamReplies | None, await self._client.xread(streams, block=FOLLOW_BLOCK_MS))
                for stream, entries in replies or []:
                    await self._deliver(stream.decode().rsplit(":", 1)[1], entries)
            except Exception as error:
                if not must_wait(error):
                    raise
                self._connected = False
                self.refusals.count(error)
                logger.warning("lost Redis while following jobs (%s); retrying", error)
                await backoff.wait()
                continue
            backoff.reset()

    async def _deliver(self, job_id: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        followed = self._following.get(job_id)
        if followed is None:
            return
        job = followed[0]
        for entry_id, fields in entries:
            progress = progress_from_fields(fields)
            if progress is not None and progress.stage in TERMINAL_STAGES:
                job._finish(await self._outcome(job_id))
                del self._following[job_id]
                return
            if progress is not None and progress.stage == JobStage.QUEUED:
                position = progress.position or 0
                job._queued_at(position, self.wait_estimates(position)[-1] if position else None)
            elif progress is not None:
                job._running(progress)
            self._following[job_id] = (job, entry_id.decode())  # only once handled: a lost read is read again

    async def _read_hosts(self, done: int) -> None:
        """The hosts' reports, and the jobs finished since the last poll (for the throughput chart)."""
        self._hosts = await read_reports(self._client, self.keys)
        if self._done_seen is not None:
            self.recent.count(done - self._done_seen)
        self._done_seen = done

    async def _outcome(self, job_id: str) -> JobResult | JobError:
        fields = cast(Fields, await self._client.hgetall(self.keys.result(job_id)))
        return outcome_from_fields(fields) if fields else JobFailed(LOST_MESSAGE)

    async def _poll_stats(self) -> None:
        backoff = Backoff()
        while not self._closed:
            try:
                await ensure_group(self._client, self.keys)
                alive, hosts, running, counters = await self._scripts.stats()
                await self._read_hosts(counters.get("done", 0))
            except (ResponseError, *REDIS_DOWN) as error:
                self.refusals.count(error)
                if self._connected:
                    logger.warning("Redis is unreachable: %s", error)
                self._connected = False
                await backoff.wait()
                continue
            if not self._connected:
                logger.info("connected to Redis")
            self._connected = True
            backoff.reset()
            self._stats = {
                "queue_depth": counters.get("waiting", 0),
                "running": running,
                "workers": alive,
                "workers_alive": alive,
                "worker_hosts": hosts,
                "jobs_accepted": counters.get("accepted", 0),
                "jobs_refused": counters.get("refused", 0),
                "jobs_done": counters.get("done", 0),
                "jobs_rejected": counters.get("rejected", 0),
                "jobs_failed": counters.get("failed", 0),
                "jobs_timed_out": counters.get("timed_out", 0),
                "jobs_dead": counters.get("dead", 0),
            }
            await asyncio.sleep(STATS_EVERY_SECONDS)
