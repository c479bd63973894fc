"""``animebot worker``: a worker host, the in-process pool fed from Redis.

Each of the pool's worker processes is one slot. An idle slot first takes over jobs whose host died (their lease
expired), then takes the next job in round-robin order over people. While a job runs, a heartbeat renews its
lease; its progress goes to the job's event stream; its outcome is written by one script that checks the lease
and the completion fence, so a job is answered exactly once even when a paused host wakes up late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.cluster.connection import REDIS_DOWN, Backoff, connect, ensure_group, is_missing_group, must_wait
from bot.cluster.hosts import HostReport, publish_report
from bot.cluster.keys import GROUP, Keys
from bot.cluster.records import FAILED, Fields, outcome_fields, progress_fields, request_from_fields
from bot.cluster.scripts import ClusterScripts, Lease
from bot.config import Settings
from bot.jobs import JobError, JobResult, QueueFull
from bot.pool import CRASH_MESSAGE, ENGINE_STAGES, MAX_ATTEMPTS, InferencePool, PoolConfig, PoolJob
from bot.supervision import Supervisor

logger = logging.getLogger(__name__)
T = TypeVar("T")

HEARTBEATS_PER_LEASE = 4
MAX_IDLE_WAIT_SECONDS = 1.0
EVENTS_MAX_LENGTH = 200  # progress entries kept per job; a reader only needs the latest few
DEAD_REASON = "it failed on every attempt"


def consumer_name() -> str:
    """This host's name in the consumer group: machine, process and a random tag (a restarted pid is new)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class WorkerHost:
    """Runs jobs from Redis on a local ``InferencePool`` until ``stop``.

    Args:
        settings: ``redis_url``, ``lease_seconds``, ``result_ttl``, ``job_timeout`` and the pool's settings.
        client: a Redis client (default: one for ``settings.redis_url``); closed by ``stop``.
        keys: key names (default prefix ``animebot``).
        pool_config: the local pool (default: from ``settings``).
        supervisor: restarts the slot loops and the heartbeat if they fail (default: one of its own).
    """

    def __init__(
        self,
        settings: Settings,
        client: Redis | None = None,
        keys: Keys | None = None,
        pool_config: PoolConfig | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        if client is None:
            if settings.redis_url is None:
                raise ValueError("WorkerHost needs settings.redis_url")
            client = connect(settings.redis_url.get_secret_value())
        config = pool_config or PoolConfig.from_settings(settings)
        # One job per worker process: the local pool never queues (beyond a respawn) and never refuses.
        config = replace(config, queue_size=config.workers, per_user_queued=config.workers)
        self.settings = settings
        self.keys = keys or Keys()
        self.supervisor = supervisor or Supervisor.from_settings(settings)
        self.consumer = consumer_name()
        self.slots = config.workers
        self.answered = 0
        self.fenced = 0
        self._client = client
        self._scripts = ClusterScripts(client, self.keys)
        self._pool = InferencePool(config, on_attempt=self._on_attempt)
        self._running: dict[str, Lease] = {}  # stream entry -> lease, renewed by the heartbeat
        self._by_pool_job: dict[str, Lease] = {}
        self._lost: set[str] = set()
        self._draining = False
        self._left = False  # the heartbeat ends (a cancel alone may be swallowed by a connect timeout)
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_tasks: list[asyncio.Task[None]] = []
        self._heartbeat_task: asyncio.Task[None] | None = None

    @property
    def lease_seconds(self) -> float:
        """Seconds a job stays leased to this host after its last heartbeat."""
        return self.settings.lease_seconds

    async def start(self) -> None:
        """Start the pool (each worker builds its engine), join the group (waiting for Redis), start the slots."""
        await self._pool.start()
        backoff = Backoff()
        while True:
            try:
                await ensure_group(self._client, self.keys)
                await self._renew()
                break
            except Exception as error:
                if not must_wait(error):
                    raise
                logger.warning("waiting for Redis: %s", error)
                await backoff.wait()
        self._heartbeat_task = self.supervisor.start("worker-heartbeat", self._heartbeat)
        self._slot_tasks = [self.supervisor.start(f"worker-slot-{n}", self._serve_slot) for n in range(self.slots)]
        logger.info("worker host %s serving %d slots", self.consumer, self.slots)

    async def stop(self, grace: float | None = None) -> None:
        """Drain: take no new jobs, finish and answer the running ones within ``grace`` seconds (default: the job
        timeout plus one lease), then leave. Jobs still running after that are taken over by other hosts."""
        self._draining = True
        wait = self.settings.job_timeout + self.lease_seconds if grace is None else grace
        if self._slot_tasks:
            _, late = await asyncio.wait(self._slot_tasks, timeout=wait)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._slot_tasks, return_exceptions=True)
        self._left = True
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        with contextlib.suppress(*REDIS_DOWN):
            await self._client.zrem(self.keys.hosts, self.consumer)
            await self._client.hdel(self.keys.host_slots, self.consumer)
        await self._pool.stop(grace=0)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()
        logger.info("worker host %s stopped: %d answered, %d fenced", self.consumer, self.answered, self.fenced)

    def worker_pids(self) -> list[int]:
        """Process ids of the local worker processes."""
        return self._pool.worker_pids()

    # --- one slot ---

    async def _serve_slot(self) -> None:
        backoff = Backoff()
        idle_wait = min(MAX_IDLE_WAIT_SECONDS, self.lease_seconds / HEARTBEATS_PER_LEASE)
        while not self._draining:
            try:
                lease = await self._next_lease()
                if lease is None:
                    await self._client.blpop([self.keys.wake], timeout=idle_wait)
                    continue
            except ResponseError as error:
                if is_missing_group(error):
                    await ensure_group(self._client, self.keys)  # the server lost its data: start afresh
                    continue
                if not must_wait(error):
                    raise
                logger.warning("Redis refuses (%s); retrying", error)
                await backoff.wait()
                continue
            except REDIS_DOWN as error:
                logger.warning("lost Redis or Redis refuses (%s); retrying", error)
                await backoff.wait()
                continue
            backoff.reset()
            await self._run(lease)

    async def _next_lease(self) -> Lease | None:
        """A job whose host died comes first, like a local retry; then the next job in fair order."""
        claimed = await self._scripts.claim(
            self.consumer, self.lease_seconds, 1, MAX_ATTEMPTS, self.settings.result_ttl, CRASH_MESSAGE
        )
        if claimed:
            logger.warning(
                "took over job %s (attempt %d) from a host that stopped", claimed[0].job_id, claimed[0].attempts
            )
            return claimed[0]
        return await self._scripts.take(self.consumer)

    async def _run(self, lease: Lease) -> None:
        self._running[lease.entry] = lease
        try:
            fields = await self._with_retry(lambda: self._client.hgetall(self.keys.job(lease.job_id)))
            if not fields:  # answered while it waited for this slot
                await self._with_retry(lambda: self._client.xack(self.keys.stream, GROUP, lease.entry))
                await self._with_retry(lambda: self._client.xdel(self.keys.stream, lease.entry))
                return
            try:
                pool_job = await self._pool.submit(
                    request_from_fields(cast(Fields, fields)), attempts_made=lease.attempts - 1
                )
            except QueueFull:  # the pool is stopping: the lease expires and another host runs the job
                return
            self._by_pool_job[pool_job.id] = lease
            relay = asyncio.create_task(self._relay(lease, pool_job))
            outcome: JobResult | JobError
            try:
                outcome = await pool_job.result()
            except JobError as error:
                outcome = error
            try:
                await relay
            except Exception as error:  # progress is best effort: the outcome is still written
                self.supervisor.failed_once("worker-relay", error)
            await self._complete(lease, outcome)
        finally:
            self._running.pop(lease.entry, None)
            self._lost.discard(lease.entry)

    async def _relay(self, lease: Lease, job: PoolJob) -> None:
        """The engine's stages go to the job's event stream (best effort: progress is not worth a retry)."""
        async for progress in job.progress():
            if progress.stage not in ENGINE_STAGES or lease.entry in self._lost:
                continue
            try:
                if not await self._scripts.progress(self.consumer, lease, EVENTS_MAX_LENGTH, progress_fields(progress)):
                    self._lost.add(lease.entry)
            except Exception as error:
                if not must_wait(error):
                    raise

    async def _complete(self, lease: Lease, outcome: JobResult | JobError) -> None:
        name, fields = outcome_fields(outcome)
        dead = DEAD_REASON if name == FAILED else ""
        answered = await self._with_retry(
            lambda: self._scripts.complete(self.consumer, lease, self.settings.result_ttl, name, fields, dead)
        )
        if answered:
            self.answered += 1
        else:
            self.fenced += 1
            logger.warning("job %s was answered by another host while this one was away; dropping", lease.job_id)

    async def _with_retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()``, called again with backoff while Redis is unreachable."""
        backoff = Backoff()
        while True:
            try:
                return await call()
            except Exception as error:
                if not must_wait(error):
                    raise
                logger.warning("lost Redis or Redis refuses (%s); retrying", error)
                await backoff.wait()

    # --- shared attempt count and heartbeat ---

    def _on_attempt(self, job: PoolJob) -> None:
        """A local retry (a worker process died) counts in Redis too, so a host dying next can't add one more."""
        lease = self._by_pool_job.get(job.id)
        if lease is not None and job.attempts > lease.attempts:
            task = asyncio.create_task(self._record_attempt(lease, job.attempts))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _record_attempt(self, lease: Lease, attempts: int) -> None:
        try:
            await self._client.hset(self.keys.job(lease.job_id), "attempts", attempts)
        except Exception as error:
            if not must_wait(error):
                raise
            logger.warning("could not record attempt %d of job %s (%s)", attempts, lease.job_id, error)

    async def _heartbeat(self) -> None:
        backoff = Backoff()
        while not self._left:
            try:
                await self._renew()
                backoff.reset()
            except Exception as error:
                if not must_wait(error):
                    raise
                logger.warning("heartbeat: lost Redis or Redis refuses (%s); retrying", error)
                await backoff.wait()
                continue
            await asyncio.sleep(self.lease_seconds / HEARTBEATS_PER_LEASE)

    async def _renew(self) -> None:
        lost = await self._scripts.renew(self.consumer, self.lease_seconds, self.slots, list(self._running))
        for entry in lost - self._lost:
            logger.warning("lost the lease of stream entry %s: another host may take its job over", entry)
        self._lost |= lost
        await publish_report(self._client, self.keys, self.consumer, self.report())

    def report(self) -> HostReport:
        """This host's numbers for the admin page and the front ends' wait estimates (``bot/cluster/hosts.py``)."""
        pool = self._pool
        return HostReport(
            self.slots, len(self._running), self.answered, pool.last_error, pool.mean_seconds(), time.time()
        )
