"""A clip through Redis: a pure front end splits it, and the chunks run on two worker hosts (each a process of its
own engine: ``LoggingNegativeEngine``, the real clip code with a negative for the network), then it is joined with
its sound. Needs a real ``redis-server``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.cluster.host import WorkerHost
from bot.config import Settings
from bot.jobs import JobKind, JobRequest, JobStage
from bot.service import Service
from tests.support_clip_engine import CHUNK_LOG_ENV, LOGGING_NEGATIVE_ENGINE
from tests.support_clips import describe, example, make_mp4, pan_frames
from tests.support_cluster import cluster_settings
from tests.support_redis import RedisServer


def settings_for(redis_server: RedisServer, weights_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "weights_dir": weights_dir,
        "workers": 0,
        "engine_factory": LOGGING_NEGATIVE_ENGINE,
        "clip_chunk_frames": 4,
        "clip_chunks_in_flight": 3,
        "job_timeout": 120.0,
    }
    return cluster_settings(redis_server.url, **(values | overrides))


async def test_a_clips_chunks_run_on_every_worker_host(
    redis_server: RedisServer, weights_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "chunks.log"
    monkeypatch.setenv(CHUNK_LOG_ENV, str(log))
    monkeypatch.setenv("ANIMEBOT_TEST_FRAME_DELAY", "0.1")
    hosts = [WorkerHost(settings_for(redis_server, weights_dir, workers=1)) for _ in range(2)]
    for host in hosts:
        await host.start()
    try:
        clip = make_mp4(pan_frames(example(), (128, 96), 24), 24, 12, audio_seconds=2.0)
        async with Service(settings_for(redis_server, weights_dir)) as front_end:
            handle = await front_end.enqueue(JobRequest("web:1", clip, "shinkai", faces=False, kind=JobKind.CLIP))
            events = [event async for event in handle.progress()]
            result = await handle.result()
    finally:
        for host in hosts:
            await host.stop(grace=10)
    out = describe(result.image)
    assert (out["frames"], out["has_audio"]) == (24, True)
    pids = {line.split()[0] for line in log.read_text().splitlines()}
    assert len(pids) == 2, "both worker hosts drew chunks"
    assert max(event.frame or 0 for event in events if event.stage is JobStage.STYLIZING) == 24
