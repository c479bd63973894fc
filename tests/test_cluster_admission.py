"""Admission in cluster mode on a real redis-server, with front ends racing each other: the rate limit is checked,
the job admitted and the photo counted in one script, so concurrent submits from two front ends admit exactly the
limit (issue 20, point 8). Nobody runs the jobs here: the queue alone is under test."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from bot.jobs import JobError, JobRequest, RateLimited
from bot.service import Service
from tests.support_redis import RedisServer
from tests.support_web import SMALL_SIDE, jpeg_bytes
from tests.test_cluster_front_ends import front_end_settings

CONCURRENT_SUBMITS = 40


async def test_concurrent_submits_from_two_front_ends_admit_exactly_the_rate_limit(
    redis_server: RedisServer, weights_dir: Path
) -> None:
    settings = front_end_settings(
        redis_server, weights_dir, rate_limit_per_minute=2, queue_size=100, per_user_queued=100
    )
    photo = jpeg_bytes(np.zeros((SMALL_SIDE, SMALL_SIDE, 3), np.uint8))
    request = JobRequest(user="web:10.0.0.1", image=photo, style="shinkai")
    async with Service(settings) as one, Service(settings) as two:
        services = [one, two] * (CONCURRENT_SUBMITS // 2)
        outcomes = await asyncio.gather(*(service.enqueue(request) for service in services), return_exceptions=True)
        await one.queue.stop(grace=0)
        await two.queue.stop(grace=0)
    admitted = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, JobError)]
    assert len(admitted) + len(refused) == CONCURRENT_SUBMITS, outcomes
    assert all(isinstance(refusal, RateLimited) for refusal in refused), refused
    assert len(admitted) == 2, f"{len(admitted)} of {CONCURRENT_SUBMITS} concurrent photos admitted at 2 a minute"
    assert one.stats()["rate_limited"] + two.stats()["rate_limited"] == CONCURRENT_SUBMITS - 2
