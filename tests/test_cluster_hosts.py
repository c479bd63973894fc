"""Worker hosts as real processes (``animebot worker``) against a real redis-server: a host SIGKILLed mid-job,
a host paused past its lease and resumed (the zombie is fenced), and a host drained by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from bot.cluster.frontend import RedisJob, RedisQueue
from bot.cluster.keys import GROUP, Keys
from bot.jobs import JobStage
from tests.support_cluster import (
    HostProcess,
    assert_nothing_pending,
    cluster_settings,
    counters,
)
from tests.support_pool import eventually, report_of, scripted
from tests.support_redis import RedisServer

KEYS = Keys()


@pytest.fixture
async def front_end(redis_server: RedisServer) -> AsyncIterator[RedisQueue]:
    queue = RedisQueue(cluster_settings(redis_server.url))
    await queue.start()
    yield queue
    await queue.stop(grace=1)


@pytest.fixture
def hosts(redis_server: RedisServer, tmp_path: Path) -> Iterator[list[HostProcess]]:
    """Two worker host processes, both serving before the test starts."""
    started = [HostProcess(redis_server.url, tmp_path / f"host{n}.log") for n in range(2)]
    try:
        for host in started:
            host.wait_serving(redis_server.client())
        yield started
    finally:
        for host in started:
            host.close()


def running_on(client: redis.Redis) -> str | None:
    """The consumer (host) the only pending job is leased to, if any."""
    pending = client.xpending_range(KEYS.stream, GROUP, "-", "+", 10)
    return pending[0]["consumer"].decode() if len(pending) == 1 else None


def host_of(hosts: list[HostProcess], consumer: str) -> HostProcess:
    return next(host for host in hosts if consumer.split(":")[1] == str(host.pid))


async def running(job: RedisJob) -> None:
    """Return once the engine is working on ``job``."""
    async for event in job.progress():
        if event.stage == JobStage.STYLIZING:
            return


async def started_on_one_host(
    front_end: RedisQueue, client: redis.Redis, hosts: list[HostProcess], seconds: float
) -> tuple[RedisJob, HostProcess, HostProcess]:
    """Submit a job of ``seconds``; once its engine runs: the job, the host running it, the other host."""
    job = await front_end.submit(scripted("telegram:1", sleep=seconds))
    await asyncio.wait_for(running(job), 30)
    busy = host_of(hosts, running_on(client) or "")
    return job, busy, next(host for host in hosts if host is not busy)


async def test_sigkilled_host_its_job_is_answered_once_by_another_host(
    redis_server: RedisServer, front_end: RedisQueue, hosts: list[HostProcess]
) -> None:
    client = redis_server.client()
    job, victim, survivor = await started_on_one_host(front_end, client, hosts, seconds=2.0)
    victim.signal_all(signal.SIGKILL)

    # Taken over once the lease runs out (XAUTOCLAIM); the bound is generous, what matters is who and how often.
    await eventually(lambda: (running_on(client) or "").split(":")[1:2] == [str(survivor.pid)], timeout=30)
    (entry,) = client.xpending_range(KEYS.stream, GROUP, "-", "+", 10)
    assert entry["times_delivered"] == 2  # the victim's attempt, then the survivor's: no third
    result = await asyncio.wait_for(job.result(), 30)

    events = [event.stage async for event in job.progress()]
    assert events.count(JobStage.DONE) == 1 and JobStage.FAILED not in events
    assert ran_on(result.image, survivor)
    assert counters(client)["done"] == 1
    fence = client.get(KEYS.fence(job.id))
    assert fence is not None and fence.decode().split(":")[1] == str(survivor.pid)
    survivor.terminate()
    assert survivor.wait() == 0
    assert_nothing_pending(client)


def ran_on(image: bytes, host: HostProcess) -> bool:
    """True when the scripted result was made by one of ``host``'s worker processes (they share its group)."""
    return bool(os.getpgid(report_of(image)["pid"]) == host.pid)


async def test_a_paused_host_resumed_after_its_lease_is_fenced(
    redis_server: RedisServer, front_end: RedisQueue, hosts: list[HostProcess]
) -> None:
    client = redis_server.client()
    job, zombie, other = await started_on_one_host(front_end, client, hosts, seconds=2.5)
    zombie.signal_all(signal.SIGSTOP)
    try:
        result = await asyncio.wait_for(job.result(), 30)  # the other host took the job over and answered
    finally:
        zombie.signal_all(signal.SIGCONT)
    assert ran_on(result.image, other)

    # The zombie wakes up, finishes its copy of the job, and is refused: one answer only.
    await eventually(lambda: "answered by another host" in zombie.output(), timeout=30)
    stages = [fields[b"stage"] for _, fields in client.xrange(KEYS.events(job.id))]
    assert stages.count(b"done") == 1 and stages[-1] == b"done"
    assert counters(client)["done"] == 1
    for host in hosts:
        host.terminate()
        assert host.wait() == 0
    assert_nothing_pending(client)


async def test_sigterm_drains_a_host_and_leaves_waiting_jobs_to_the_others(
    redis_server: RedisServer, front_end: RedisQueue, tmp_path: Path
) -> None:
    client = redis_server.client()
    first_host = HostProcess(redis_server.url, tmp_path / "first.log")
    try:
        consumer = first_host.wait_serving(client)
        running_job = await front_end.submit(scripted("telegram:1", sleep=1.5))
        await asyncio.wait_for(running(running_job), 30)
        waiting_job = await front_end.submit(scripted("telegram:2"))
        first_host.terminate()
        assert await asyncio.to_thread(first_host.wait) == 0
        assert (await asyncio.wait_for(running_job.result(), 5)).mime == "application/json"
        assert not waiting_job.done and counters(client)["waiting"] == 1
        assert client.zscore(KEYS.hosts, consumer) is None  # it left the cluster
    finally:
        first_host.close()

    second_host = HostProcess(redis_server.url, tmp_path / "second.log")
    try:
        second_host.wait_serving(client)
        await asyncio.wait_for(waiting_job.result(), 30)
        second_host.terminate()
        assert await asyncio.to_thread(second_host.wait) == 0
    finally:
        second_host.close()
    assert counters(client)["done"] == 2
    assert_nothing_pending(client)
