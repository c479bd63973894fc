"""The distributed queue against a real redis-server: one job end to end, admission, fairness, dead letters.

A front end (``RedisQueue``) and worker hosts (``WorkerHost``, each with its own process pool of the scripted
engine) run in the test's process here; tests/test_cluster_hosts.py kills and pauses real host processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis

from bot.cluster.connection import connect, ensure_group
from bot.cluster.frontend import RedisJob, RedisQueue
from bot.cluster.host import WorkerHost
from bot.cluster.keys import Keys
from bot.cluster.scripts import ClusterScripts
from bot.jobs import JobFailed, JobProgress, JobRejected, JobStage, QueueFull
from bot.pool import BUSY_MESSAGE, CRASH_MESSAGE, person_busy_message
from tests.support_cluster import assert_nothing_pending, cluster_settings, counters
from tests.support_pool import eventually, report_of, scripted
from tests.support_redis import RedisServer

KEYS = Keys()


@pytest.fixture
async def front_end(redis_server: RedisServer) -> AsyncIterator[RedisQueue]:
    queue = RedisQueue(cluster_settings(redis_server.url))
    await queue.start()
    yield queue
    await queue.stop(grace=0.5)  # some tests leave jobs no host ever runs


async def stages(job: RedisJob) -> list[JobProgress]:
    return [event async for event in job.progress()]


async def test_a_job_goes_through_redis_to_a_worker_host_and_back(
    redis_server: RedisServer, front_end: RedisQueue
) -> None:
    host = WorkerHost(cluster_settings(redis_server.url))
    await host.start()
    try:
        job = await front_end.submit(scripted("telegram:1", sleep=0.2))
        assert job.position == 1
        events = await stages(job)
        result = await job.result()
    finally:
        await host.stop()
    assert report_of(result.image)["style"] == "shinkai"
    assert result.notes == ("scripted",)
    seen = [event.stage for event in events]
    assert job.position == 0 and seen[-1] == JobStage.DONE
    assert [stage for stage in seen if stage != JobStage.DONE] == [
        JobStage.DECODING,
        JobStage.FINDING_FACES,
        JobStage.STYLIZING,
        JobStage.FINISHING,
    ]
    client = redis_server.client()
    assert_nothing_pending(client)
    assert counters(client)["done"] == 1 and host.answered == 1


async def test_a_rejected_photo_is_answered_with_its_message(redis_server: RedisServer, front_end: RedisQueue) -> None:
    host = WorkerHost(cluster_settings(redis_server.url))
    await host.start()
    try:
        job = await front_end.submit(scripted("web:1", reject="That file is not a photo."))
        with pytest.raises(JobRejected, match="not a photo"):
            await job.result()
    finally:
        await host.stop()
    assert_nothing_pending(redis_server.client())


async def test_two_front_ends_racing_past_the_bound_admit_exactly_the_bound(redis_server: RedisServer) -> None:
    settings = cluster_settings(redis_server.url, queue_size=10, per_user_queued=100)
    queues = [RedisQueue(settings), RedisQueue(settings)]
    for queue in queues:
        await queue.start()

    async def try_submit(queue: RedisQueue, n: int) -> bool:
        try:
            await queue.submit(scripted(f"web:{n}"))
            return True
        except QueueFull as refusal:
            assert refusal.message == BUSY_MESSAGE
            return False

    admitted = await asyncio.gather(*(try_submit(queues[n % 2], n) for n in range(40)))
    assert sum(admitted) == 10
    client = redis_server.client()
    assert counters(client)["waiting"] == 10 and counters(client)["refused"] == 30

    host = WorkerHost(cluster_settings(redis_server.url, workers=2))
    await host.start()
    try:
        await eventually(lambda: counters(client).get("done", 0) == 10)
        await eventually(lambda: all(not queue.stats()["following"] for queue in queues))  # each got its answers
    finally:
        await host.stop()
        for queue in queues:
            await queue.stop(grace=5)
    assert_nothing_pending(client)


async def test_one_person_is_capped_and_told_how_many_wait(front_end: RedisQueue) -> None:
    for _ in range(3):
        await front_end.submit(scripted("telegram:7"))
    with pytest.raises(QueueFull) as refusal:
        await front_end.submit(scripted("telegram:7"))
    assert refusal.value.message == person_busy_message(3)
    other = await front_end.submit(scripted("telegram:8"))  # somebody else still gets in, and goes second
    assert other.position == 2


async def test_people_are_served_round_robin(redis_server: RedisServer, front_end: RedisQueue) -> None:
    first = [await front_end.submit(scripted("telegram:1")) for _ in range(3)]
    second = await front_end.submit(scripted("telegram:2"))
    third = await front_end.submit(scripted("telegram:3"))
    assert [job.position for job in first] == [1, 2, 3]
    assert second.position == 2 and third.position == 3

    client = connect(redis_server.url)
    scripts = ClusterScripts(client, Keys())
    await ensure_group(client, Keys())
    order = []
    while (lease := await scripts.take("test-consumer")) is not None:
        order.append(lease.job_id)
    await client.aclose()
    assert order == [first[0].id, second.id, third.id, first[1].id, first[2].id]


async def test_a_poison_job_is_dead_lettered_with_one_failure_reply(
    redis_server: RedisServer, front_end: RedisQueue
) -> None:
    host = WorkerHost(cluster_settings(redis_server.url))
    await host.start()
    try:
        job = await front_end.submit(scripted("telegram:9", crash=True))  # kills its worker process every time
        with pytest.raises(JobFailed) as failure:
            await job.result()
        events = await stages(job)
    finally:
        await host.stop()
    assert failure.value.message == CRASH_MESSAGE
    assert [event.stage for event in events].count(JobStage.FAILED) == 1
    client = redis_server.client()
    dead = client.xrange(Keys().dead)
    assert len(dead) == 1
    assert dead[0][1][b"job"] == job.id.encode() and dead[0][1][b"attempts"] == b"2"
    assert counters(client)["failed"] == 1 and counters(client)["dead"] == 1
    stored = [fields[b"stage"] for _, fields in client.xrange(Keys().events(job.id))]
    assert stored.count(b"failed") == 1 and stored[-1] == b"failed"
    assert_nothing_pending(client)


def refusals(client: redis.Redis, code: str) -> int:
    """How many commands the server refused with ``code`` (``OOM``, ``READONLY``) so far."""
    stats = client.info("errorstats").get(f"errorstat_{code}", {})
    return int(stats.get("count", 0)) if isinstance(stats, dict) else 0


@pytest.mark.parametrize("refusal", ["oom", "readonly"])
async def test_a_worker_host_outlives_redis_refusing_writes(
    redis_server: RedisServer, front_end: RedisQueue, refusal: str
) -> None:
    """OOM under maxmemory + noeviction, or READONLY after a failover, is a pause: the host keeps serving after."""
    client = redis_server.client()
    host = WorkerHost(cluster_settings(redis_server.url))
    await host.start()
    try:
        if refusal == "oom":
            client.config_set("maxmemory", "1")
        else:
            client.config_set("replica-read-only", "yes")
            client.replicaof("127.0.0.1", "1")  # a primary that never answers: this server turns read-only
        # Every slot and the heartbeat meet the refusal (Redis counts each one) and must keep going.
        await eventually(lambda: refusals(client, refusal.upper()) > host.slots + 1, timeout=20)
        with pytest.raises(QueueFull) as refused:  # a photo sent meanwhile gets a sentence, not a crash
            await front_end.submit(scripted("telegram:2"))
        assert refused.value.message == BUSY_MESSAGE
        if refusal == "oom":
            client.config_set("maxmemory", "0")
        else:
            client.replicaof("NO", "ONE")
        # The heartbeat renews the host's lease again, and a slot takes the next job.
        alive_until = client.zscore(KEYS.hosts, host.consumer) or 0.0
        await eventually(lambda: (client.zscore(KEYS.hosts, host.consumer) or 0.0) > alive_until, timeout=20)
        job = await front_end.submit(scripted("telegram:1"))
        result = await asyncio.wait_for(job.result(), 30)
    finally:
        await host.stop(grace=1)
    assert report_of(result.image)["style"] == "shinkai"
