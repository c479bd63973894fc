"""Clips on the web: the API's job and one-shot endpoints take a clip and give H.264 MP4 back with frame progress,
a kept clip re-styles from its `source` key, and the page (headless Chromium) uploads a clip, shows a frame
progress bar and plays the result with a before/after toggle.

The API tests run ``NegativeEngine`` workers (the real clip code, a negative for the network); the browser test
runs the real style, so its screenshot shows the real thing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from adapters.web import create_app
from bot.service import Service
from tests.support_clip_engine import FACE_MARKING_ENGINE, NEGATIVE_ENGINE, green_fraction, portrait_frames
from tests.support_clips import describe, example, frames_of, make_gif, make_mp4, pan_frames, zoom_frames
from tests.support_web import read_events, small_settings
from tests.test_web_browser import (  # the browser fixtures and helpers of the page's own tests
    ARTIFACTS,
    JOB_WAIT_MS,
    UI_WAIT_MS,
    browser,  # noqa: F401 - a fixture
    give_file,
    open_visit,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def clip_form(data: bytes, name: str = "clip.mp4", mime: str = "video/mp4", **fields: str) -> FormData:
    form = FormData()
    form.add_field("image", data, filename=name, content_type=mime)
    for key, value in {"faces": "false", **fields}.items():
        form.add_field(key, value)
    return form


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(weights_dir: Path) -> AsyncIterator[TestClient]:
    settings = small_settings(weights_dir, engine_factory=NEGATIVE_ENGINE, clip_chunk_frames=6)
    async with Service(settings) as service, TestClient(TestServer(create_app(settings, service))) as test_client:
        yield test_client


async def test_a_clip_with_a_face_has_its_face_drawn_by_the_face_pass(weights_dir: Path) -> None:
    """Faces on (the form's default): the clip's face is found, tracked and painted by the face pass."""
    settings = small_settings(weights_dir, engine_factory=FACE_MARKING_ENGINE, clip_chunk_frames=6)
    clip = make_mp4(portrait_frames(), 12, 12)
    async with Service(settings) as service, TestClient(TestServer(create_app(settings, service))) as face_client:
        form = FormData()
        form.add_field("image", clip, filename="portrait.mp4", content_type="video/mp4")
        response = await face_client.post("/api/v1/stylize", data=form)
        assert response.status == 200, await response.text()
        frames = list(frames_of(await response.read()))
    assert len(frames) == 12
    assert all(0.03 < green_fraction(frame) < 0.2 for frame in frames)  # the face, not the whole picture


async def test_one_shot_stylize_takes_a_clip_and_answers_mp4_with_sound(client: TestClient) -> None:
    clip = make_mp4(pan_frames(example(), (160, 120), 18), 18, 12, audio_seconds=1.5)
    response = await client.post("/api/v1/stylize", data=clip_form(clip))
    assert response.status == 200, await response.text()
    assert response.content_type == "video/mp4"
    assert 'filename="anime-shinkai.mp4"' in response.headers["Content-Disposition"]
    out = describe(await response.read())
    assert (out["frames"], out["has_audio"]) == (18, True)


async def test_a_clip_job_reports_frames_and_restyles_from_its_source(client: TestClient) -> None:
    gif = make_gif(zoom_frames(example("coffee.jpg"), (128, 96), 8), 8, 8)
    response = await client.post("/api/v1/jobs", data=clip_form(gif, "loop.gif", "image/gif"))
    assert response.status == 202 or response.status == 200, await response.text()
    job = await response.json()
    async with client.get(job["events_url"]) as stream:
        events = await read_events(stream)
    framed = [event.data for event in events if event.event == "progress" and event.data.get("frames")]
    assert framed and framed[-1]["frames"] == 8
    assert any(data["label"].startswith("Stylizing frame") for data in framed)
    done = next(event.data for event in events if event.event == "done")
    assert done["result"]["mime"] == "video/mp4"
    first = await (await client.get(done["result_url"])).read()
    # the same clip again, by its key, at another strength: no upload
    form = FormData()
    for key, value in {"source": job["source"], "strength": "0", "faces": "false"}.items():
        form.add_field(key, value)
    again = await client.post("/api/v1/stylize", data=form)
    assert again.status == 200 and again.content_type == "video/mp4"
    original = next(frames_of(await again.read())).astype(int)
    negative = next(frames_of(first)).astype(int)
    assert np.abs(original + negative - 255).mean() > 20 or np.abs(original - negative).mean() > 20


async def test_a_broken_clip_is_a_plain_422(client: TestClient) -> None:
    response = await client.post("/api/v1/stylize", data=clip_form(b"\x00\x00\x00\x18ftypmp42 and then nothing"))
    body = await response.json()
    assert response.status == 422 and body["error"] == "rejected"
    assert "damaged" in body["message"]


async def test_the_openapi_document_says_clips_are_taken(client: TestClient) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert "video/mp4" in document["paths"]["/api/v1/stylize"]["post"]["responses"]["200"]["content"]
    assert "MP4" in document["components"]["schemas"]["JobForm"]["properties"]["image"]["description"]
    assert "frames" in document["components"]["schemas"]["Progress"]["properties"]


# --- the page, with the real style ---


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def real_site(weights_dir: Path) -> AsyncIterator[str]:
    from tests.support_web import live_server

    # Eager fp32: the page asks for a thumbnail of every style, and INT8 would quantize each model first (minutes).
    settings = small_settings(weights_dir, clip_chunk_frames=4, precision="fp32")
    async with Service(settings) as service, live_server(settings, service) as url:
        yield url


async def test_the_page_uploads_a_clip_shows_frames_and_plays_the_result(browser: Any, real_site: str) -> None:  # noqa: F811
    clip = make_mp4(pan_frames(example("chelsea.jpg"), (256, 192), 12, step=4), 12, 12, audio_seconds=1.0)
    async for visit in open_visit(browser):
        page = visit.page
        await visit.open(real_site)
        await give_file(page, "drop", "cat.mp4", "video/mp4", clip)
        await page.wait_for_selector("#preview-video:not([hidden])", timeout=UI_WAIT_MS)
        await page.click("#go")
        await page.wait_for_function(
            "() => (document.getElementById('progress-label').textContent || '').includes('frame')", timeout=JOB_WAIT_MS
        )
        await visit.screenshot("10-clip-progress.png")
        await page.wait_for_selector("#clip-result:not([hidden])", timeout=JOB_WAIT_MS)
        assert await page.is_hidden("#compare")
        # it plays: time moves on in the result's player
        await page.wait_for_function(
            "() => { const v = document.getElementById('clip-player');"
            " return v.readyState >= 2 && v.currentTime > 0.2; }",
            timeout=UI_WAIT_MS,
        )
        size = await page.evaluate(
            "() => [document.getElementById('clip-player').videoWidth, "
            "document.getElementById('clip-player').videoHeight]"
        )
        assert size == [256, 192]
        await page.evaluate("() => document.getElementById('clip-player').pause()")
        await visit.screenshot("11-clip-result.png")
        await page.click("#show-before")
        assert await page.get_attribute("#show-before", "aria-pressed") == "true"
        source = await page.evaluate("() => document.getElementById('clip-player').src")
        await page.wait_for_function("() => document.getElementById('clip-player').readyState >= 2", timeout=UI_WAIT_MS)
        await visit.screenshot("12-clip-before.png")
        assert source.startswith("blob:")
        labels: list[str] = await page.evaluate("window.__labels")
        assert any("frame" in label for label in labels), labels
        assert not [error for error in visit.errors if "favicon" not in error], visit.errors
    assert (ARTIFACTS / "11-clip-result.png").exists()
