"""Redis itself going away: a SIGKILLed redis-server restarted from its AOF loses no accepted job, front ends and
worker hosts reconnect with backoff, and /readyz is red while Redis is unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bot.cluster.frontend import RedisQueue
from bot.cluster.host import WorkerHost
from bot.jobs import JobStage
from bot.service import Service
from tests.support_cluster import assert_nothing_pending, cluster_settings, counters
from tests.support_pool import eventually, report_of, scripted
from tests.support_redis import RedisServer
from tests.support_web import live_server


async def test_a_redis_restart_with_aof_loses_no_accepted_job(redis_server: RedisServer) -> None:
    settings = cluster_settings(redis_server.url)
    queue, host = RedisQueue(settings), WorkerHost(settings)
    await queue.start()
    await host.start()
    try:
        jobs = [await queue.submit(scripted(f"telegram:{n}", sleep=0.8)) for n in range(3)]
        async for event in jobs[0].progress():  # the first job is running when Redis dies
            if event.stage == JobStage.STYLIZING:
                break
        redis_server.kill()
        await eventually(lambda: queue.stats()["redis_connected"] == 0, timeout=10)
        await asyncio.sleep(0.5)
        redis_server.start()  # same port and folder: the AOF is read back
        results = await asyncio.wait_for(asyncio.gather(*(job.result() for job in jobs)), 60)
        await eventually(lambda: queue.stats()["redis_connected"] == 1, timeout=10)
    finally:
        await host.stop(grace=10)
        await queue.stop(grace=1)
    assert [report_of(result.image)["style"] for result in results] == ["shinkai"] * 3
    client = redis_server.client()
    assert counters(client)["done"] == 3 and counters(client)["accepted"] == 3
    assert host.answered == 3 and host.fenced == 0
    assert_nothing_pending(client)


async def readyz(base: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/readyz") as response:
        return response.status, await response.json()


async def wait_for_readyz(base: str, check: Callable[[int, dict[str, object]], bool]) -> dict[str, object]:
    for _ in range(100):
        status, body = await readyz(base)
        if check(status, body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz never changed: {status} {body}")


async def test_readyz_is_red_while_redis_is_unreachable(redis_server: RedisServer, weights_dir: Path) -> None:
    settings = cluster_settings(redis_server.url, weights_dir=weights_dir, workers=0)  # a pure front end
    host = WorkerHost(cluster_settings(redis_server.url))
    await host.start()
    try:
        async with Service(settings) as service, live_server(settings, service) as base:
            body = await wait_for_readyz(base, lambda status, _: status == 200)
            assert body["workers_alive"] == 1
            redis_server.kill()
            body = await wait_for_readyz(base, lambda status, _: status == 503)
            assert "Redis is unreachable" in str(body["reason"])
            redis_server.start()
            await wait_for_readyz(base, lambda status, _: status == 200)
    finally:
        await host.stop(grace=5)
