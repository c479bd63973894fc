"""The numbers the alert rules of deploy/prometheus/ read, on real queues: the oldest waiting job's age (one box and
cluster) and the writes a real redis-server refuses, counted by reason (out of memory, read-only replica)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError

from bot.cluster.frontend import RedisQueue
from bot.cluster.refusals import REASONS, RedisRefusals, refusal_reason
from bot.jobs import QueueFull
from bot.metrics import refusal_metrics
from bot.pool import InferencePool, PoolConfig
from tests.support_cluster import cluster_settings
from tests.support_pool import eventually, scripted
from tests.support_redis import RedisServer, free_port
from tests.test_pool import scripted_settings

WAIT_SECONDS = 0.3


async def test_the_pool_reports_how_long_its_oldest_job_has_waited(tmp_path: Path) -> None:
    pool = InferencePool(PoolConfig.from_settings(scripted_settings(workers=1, queue_size=4, per_user_queued=4)))
    await pool.start()
    try:
        release = tmp_path / "release"
        running = await pool.submit(scripted("ahead", until=str(release)))
        assert pool.stats()["oldest_wait_seconds"] == 0.0  # it went straight to the idle worker
        waiting = await pool.submit(scripted("behind"))
        await asyncio.sleep(WAIT_SECONDS)
        assert pool.stats()["oldest_wait_seconds"] >= WAIT_SECONDS
        release.touch()
        await asyncio.gather(running.result(), waiting.result())
        assert pool.stats()["oldest_wait_seconds"] == 0.0
    finally:
        await pool.stop(grace=0)


async def test_a_front_end_reports_its_oldest_queued_job_and_the_refusals_of_a_real_redis(
    redis_server: RedisServer,
) -> None:
    queue = RedisQueue(cluster_settings(redis_server.url, workers=0))
    client = redis_server.client()
    await queue.start()
    try:
        await eventually(lambda: queue.connected)
        assert queue.stats()["oldest_wait_seconds"] == 0.0
        await queue.submit(scripted("mika"))  # no worker host: it waits
        await asyncio.sleep(WAIT_SECONDS)
        assert queue.stats()["oldest_wait_seconds"] >= WAIT_SECONDS

        client.config_set("maxmemory", "1")  # noeviction: every write that needs memory is refused (OOM)
        with pytest.raises(QueueFull):
            await queue.submit(scripted("mika"))
        client.config_set("maxmemory", "0")
        assert queue.stats()["redis_refusals_oom"] >= 1

        client.replicaof("127.0.0.1", free_port())  # a replica (of nobody): writes refused (READONLY)
        await eventually(lambda: queue.stats()["redis_refusals_readonly"] >= 2 and not queue.connected)
        client.replicaof("NO", "ONE")
        await eventually(lambda: queue.connected)
    finally:
        client.replicaof("NO", "ONE")
        await queue.stop(grace=0)
        client.close()
    stats = queue.stats()
    refused = {reason for reason in REASONS if stats[f"redis_refusals_{reason}"]}
    assert {"oom", "readonly"} <= refused <= {"oom", "readonly", "unblocked"}  # the follower's read is unblocked
    exported = {sample.labels["reason"]: sample.value for family in refusal_metrics(stats) for sample in family.samples}
    assert exported.keys() == set(REASONS)
    assert exported["oom"] >= 1 and exported["readonly"] >= 2 and exported["misconf"] == 0


def test_refusals_are_told_from_a_lost_connection() -> None:
    refusals = RedisRefusals()
    for error in (
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        ReadOnlyError("You can't write against a read only replica."),
        ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist"),
        ResponseError("NOGROUP No such key 'animebot:stream' or consumer group"),  # not a refusal: a lost group
        ConnectionError("Connection refused"),  # not a refusal: Redis is away (animebot_redis_connected says so)
    ):
        refusals.count(error)
    assert +refusals.by_reason == {"oom": 1, "readonly": 1, "misconf": 1}
    assert refusal_reason(ResponseError("BUSY Redis is busy running a script.")) == "busy"
