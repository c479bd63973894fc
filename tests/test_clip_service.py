"""Clips through the service and the real pool: split into chunks on every worker, frame progress, fairness.

Workers build ``LoggingNegativeEngine``: the real clip code (PyAV, plan, chunks, join) with a negative in place of
the network, so a clip takes seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.clips import chunk_ranges, looks_like_clip
from bot.config import Settings
from bot.jobs import JobKind, JobRejected, JobRequest, JobStage, progress_label
from bot.service import Service
from tests.support_clip_engine import CHUNK_LOG_ENV, FRAME_DELAY_ENV, LOGGING_NEGATIVE_ENGINE
from tests.support_clips import describe, example, make_audio_only, make_gif, make_mp4, pan_frames, still_frames
from tests.support_images import encode

CHUNK = 4


def clip_settings(weights_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "engine_factory": LOGGING_NEGATIVE_ENGINE,
        "workers": 2,
        "weights_dir": weights_dir,
        "clip_chunk_frames": CHUNK,
        "clip_chunks_in_flight": 2,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_clips_are_told_from_photos() -> None:
    assert looks_like_clip(make_mp4(still_frames(example(), (64, 48)), 2, 12))
    assert looks_like_clip(make_gif(pan_frames(example(), (64, 48), 3), 3, 10))
    from PIL import Image

    still_gif = encode(Image.fromarray(example()).resize((64, 48)), "GIF")
    assert not looks_like_clip(still_gif), "a GIF of one frame is a photo"
    assert not looks_like_clip(encode(Image.fromarray(example()), "JPEG"))


def test_chunk_ranges_cover_every_frame_once() -> None:
    assert chunk_ranges(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_ranges(3, 12) == [(0, 3)]


async def test_a_clip_runs_in_chunks_on_every_worker_with_frame_progress(
    weights_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "chunks.log"
    monkeypatch.setenv(CHUNK_LOG_ENV, str(log))
    monkeypatch.setenv(FRAME_DELAY_ENV, "0.05")
    clip = make_mp4(pan_frames(example(), (160, 120), 24), 24, 12, audio_seconds=2.0)
    async with Service(clip_settings(weights_dir)) as service:
        handle = await service.enqueue(JobRequest("web:1", clip, "shinkai", faces=False, kind=JobKind.CLIP))
        events = [event async for event in handle.progress()]
        result = await handle.result()
    out = describe(result.image)
    assert (result.mime, out["frames"], out["has_audio"]) == ("video/mp4", 24, True)
    chunks = [line.split() for line in log.read_text().splitlines()]
    assert sorted((int(first), int(stop)) for _, first, stop in chunks) == chunk_ranges(24, CHUNK)
    assert len({pid for pid, _, _ in chunks}) == 2, "both workers drew chunks"
    frames = [event.frame for event in events if event.stage is JobStage.STYLIZING]
    assert frames == sorted(frames) and frames[-1] == 24 and len(set(frames)) > 3
    assert all(event.frames == 24 for event in events if event.stage is JobStage.STYLIZING)
    labels = {progress_label(event) for event in events if event.stage is JobStage.STYLIZING}
    assert "Stylizing frame 24 of 24" in labels
    assert events[-1].stage is JobStage.DONE


async def test_a_photo_sent_during_a_clip_is_not_held_up_by_it(
    weights_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FRAME_DELAY_ENV, "0.15")
    clip = make_mp4(pan_frames(example(), (128, 96), 36), 36, 12)  # 9 chunks of 0.6 s or more on 1 worker
    photo = encode(__import__("PIL.Image").Image.fromarray(example()).resize((128, 96)), "JPEG")
    async with Service(clip_settings(weights_dir, workers=1)) as service:
        clip_job = await service.enqueue(JobRequest("telegram:1", clip, "shinkai", faces=False, kind=JobKind.CLIP))
        async for event in clip_job.progress():
            if event.stage is JobStage.STYLIZING and (event.frame or 0) >= CHUNK:
                break
        photo_job = await service.enqueue(JobRequest("telegram:2", photo, "shinkai", faces=False))
        await photo_job.result()
        frames_then = max(event.frame or 0 for event in clip_job.events)  # how far the clip had got by then
        await clip_job.result()
    # Served after at most the chunk running when it came and one more, not after the whole clip (36 frames).
    assert frames_then <= 3 * CHUNK < 36


async def test_an_unusable_clip_gets_its_plain_reply(weights_dir: Path) -> None:
    async with Service(clip_settings(weights_dir, workers=1)) as service:
        handle = await service.enqueue(JobRequest("web:1", make_audio_only(), "shinkai", kind=JobKind.CLIP))
        with pytest.raises(JobRejected, match="no picture"):
            await handle.result()
        # and the pool goes on: a good clip afterwards
        handle = await service.enqueue(
            JobRequest("web:1", make_mp4(still_frames(example(), (64, 48)), 3, 12), "shinkai", kind=JobKind.CLIP)
        )
        assert (await handle.result()).mime == "video/mp4"
