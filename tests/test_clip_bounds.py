"""A clip holds one place in the queue for its whole life, like a photo waiting, in both modes: while one clip is
being drawn and the bound is one job, another clip is refused 'busy' (its plan step alone used to be admitted, and
clips piled up beyond ANIMEBOT_QUEUE_SIZE); once the first clip ends, its place is given back (issue 20, point 8).
Workers build ``LoggingNegativeEngine`` (the real clip code, a negative for the network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.cluster.host import WorkerHost
from bot.jobs import JobHandle, JobKind, JobRequest, JobStage, QueueFull
from bot.service import Service
from tests.support_clip_engine import FRAME_DELAY_ENV
from tests.support_clips import example, make_mp4, pan_frames
from tests.support_redis import RedisServer
from tests.test_clip_service import CHUNK, clip_settings
from tests.test_cluster_clips import settings_for

BOUND = {"queue_size": 1, "clip_chunks_in_flight": 1}


def clip_of(user: str, frames: int) -> JobRequest:
    video = make_mp4(pan_frames(example(), (96, 72), frames), frames, 12)
    return JobRequest(user, video, "shinkai", faces=False, kind=JobKind.CLIP)


async def while_drawing(service: Service, first: JobHandle) -> None:
    """Once ``first`` is drawing its chunks: another clip is refused; when it has ended, one is accepted."""
    async for event in first.progress():
        if event.stage is JobStage.STYLIZING:
            break
    with pytest.raises(QueueFull):
        await service.enqueue(clip_of("web:2", 4))
    assert not first.done
    await first.result()
    second = await service.enqueue(clip_of("web:3", 4))
    assert (await second.result()).mime == "video/mp4"


async def test_a_clip_counts_against_the_queue_bound_for_its_whole_life(
    weights_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FRAME_DELAY_ENV, "0.1")
    async with Service(clip_settings(weights_dir, workers=1, **BOUND)) as service:
        first = await service.enqueue(clip_of("web:1", 6 * CHUNK))
        await while_drawing(service, first)


async def test_a_clip_counts_against_the_queue_bound_for_its_whole_life_through_redis(
    redis_server: RedisServer, weights_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FRAME_DELAY_ENV, "0.1")
    overrides: dict[str, Any] = {"clip_chunk_frames": CHUNK, **BOUND}
    host = WorkerHost(settings_for(redis_server, weights_dir, workers=1, **overrides))
    await host.start()
    try:
        async with Service(settings_for(redis_server, weights_dir, **overrides)) as service:
            first = await service.enqueue(clip_of("web:1", 6 * CHUNK))
            await while_drawing(service, first)
    finally:
        await host.stop(grace=10)
    client = redis_server.client()
    assert client.zcard("animebot:places") == 0, "every clip gave its place back"
