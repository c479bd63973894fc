"""The HTTP API and the page's server side, through aiohttp's test client, against the real service and engine.

One real service (one worker process, real weights, 256 px working size) is shared by the module; apps with other
settings (an API key, small limits) are built on it where only the web layer's settings matter.

Over 400 lines on purpose: every route's scenarios share the module's one real service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from adapters.web import create_app
from animegan.manifest import installed_styles
from bot.config import Settings
from bot.jobs import JobRequest, JobStage
from bot.service import Service
from tests.support_web import (
    EXAMPLES,
    JOB_WAIT_SECONDS,
    heic_bytes,
    image_size,
    jpeg_bytes,
    read_events,
    small_settings,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

API_KEY = "correct-horse-battery-staple"
STAGE_ORDER = [JobStage.QUEUED, JobStage.DECODING, JobStage.FINDING_FACES, JobStage.STYLIZING, JobStage.FINISHING]
QUEUE_SIZE = 3
TEXT_FILE = b"Dear diary, today I tried to send a text file as a photo.\n"


@pytest.fixture(scope="module")
def settings(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One worker; one waiting photo per person (the third photo of one client is too many), three waiting in all."""
    examples = tmp_path_factory.mktemp("examples")
    for name in ("astronaut.jpg", "coffee.jpg", "SOURCES.md"):
        (examples / name).write_bytes((EXAMPLES / name).read_bytes())
    (examples / "notes.txt").write_text("not a photo")
    return small_settings(weights_dir, per_user_queued=1, queue_size=QUEUE_SIZE, examples_dir=examples)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(settings: Settings) -> AsyncIterator[Service]:
    async with Service(settings) as running:
        yield running


@asynccontextmanager
async def serving(settings: Settings, service: Service) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings, service))) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(settings: Settings, service: Service) -> AsyncIterator[TestClient]:
    async with serving(settings, service) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def photo(coffee: np.ndarray) -> bytes:
    """A 128x85 JPEG of a cup of coffee (no face: the face pass stays cheap)."""
    return jpeg_bytes(coffee)


@pytest.fixture(scope="module")
def portrait(astronaut: np.ndarray) -> bytes:
    """A 128x128 JPEG of a face."""
    return jpeg_bytes(astronaut)


def job_form(image: bytes | None = None, **fields: str) -> FormData:
    """A multipart form like the page and ``curl -F`` send."""
    form = FormData()
    if image is not None:
        form.add_field("image", image, filename="photo.jpg", content_type="image/jpeg")
    for name, value in {"faces": "false", **fields}.items():
        form.add_field(name, value)
    return form


async def error_of(response: Any, status: int) -> dict[str, str]:
    """The JSON error body, after checking the status and that the message is a sentence."""
    body = await response.json()
    assert response.status == status, body
    assert set(body) == {"error", "message"}
    assert body["message"].endswith(".") and len(body["message"].split()) >= 4
    return body


async def settled(service: Service) -> None:
    """Wait until the pool runs nothing and nothing waits (jobs of earlier tests may still be finishing)."""
    async with asyncio.timeout(JOB_WAIT_SECONDS):
        while (stats := service.stats())["running"] or stats["queue_depth"]:
            await asyncio.sleep(0.2)


async def run_job(client: TestClient, form: FormData) -> tuple[dict[str, Any], list[Any]]:
    """Submit a job and follow its events to the end; returns (the submit answer, the events)."""
    response = await client.post("/api/v1/jobs", data=form)
    job = await response.json()
    assert response.status == 202, job
    async with asyncio.timeout(JOB_WAIT_SECONDS):
        events = await read_events(await client.get(job["events_url"]))
    return job, events


# --- health, readiness, metrics --------------------------------------------------------------------------------


async def test_healthz_says_alive(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json())["status"] == "alive"


async def test_readyz_is_ready_once_the_worker_is_up(client: TestClient, service: Service) -> None:
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 200, body
    assert body["ready"] is True
    assert body["workers_alive"] == service.stats()["workers_alive"] >= 1


async def test_readyz_is_not_ready_before_the_service_starts(settings: Settings) -> None:
    idle = Service(settings)  # never started: no worker
    async with serving(settings, idle) as client:
        response = await client.get("/readyz")
        body = await response.json()
    assert response.status == 503
    assert body["ready"] is False
    assert "worker" in body["reason"]


# --- styles and the page ---------------------------------------------------------------------------------------


async def test_styles_lists_every_installed_style_default_first(client: TestClient, settings: Settings) -> None:
    response = await client.get("/api/v1/styles")
    body = await response.json()
    names = [style["name"] for style in body["styles"]]
    assert sorted(names) == sorted(style.name for style in installed_styles(settings.weights_dir))
    assert names[0] == body["default"] == settings.default_style
    assert [style["default"] for style in body["styles"]] == [True] + [False] * (len(names) - 1)
    assert all(style["licence"] and style["thumbnail"].endswith(style["name"]) for style in body["styles"])


async def test_page_and_its_assets_are_served(client: TestClient) -> None:
    page = await client.get("/")
    html = await page.text()
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("/static/app.css", "/static/app.js", "/static/sakura.svg"):
        assert asset in html
        response = await client.get(asset)
        assert response.status == 200, asset
        assert len(await response.read()) > 100


async def test_page_config_tells_the_limits(client: TestClient, settings: Settings) -> None:
    config = await (await client.get("/ui/config")).json()
    assert config["api_key_required"] is False
    assert config["max_upload_bytes"] == settings.max_upload_bytes
    assert config["job_timeout"] == settings.job_timeout


async def test_examples_lists_the_photos_of_the_folder(client: TestClient, settings: Settings) -> None:
    body = await (await client.get("/ui/examples")).json()
    assert [example["name"] for example in body["examples"]] == ["astronaut.jpg", "coffee.jpg"]  # not notes.txt
    first = body["examples"][0]
    photo = await client.get(first["url"])
    assert await photo.read() == (settings.examples_dir / "astronaut.jpg").read_bytes()
    preview = await (await client.get(first["preview"])).read()
    assert max(image_size(preview)) <= 480
    credits = await client.get(body["credits"])
    assert "licence" in (await credits.text()).lower()


@pytest.mark.parametrize("name", ["notes.txt", "nope.jpg", "..%2Fconftest.py", "SOURCES.md"])
async def test_examples_serves_nothing_outside_the_gallery(client: TestClient, name: str) -> None:
    assert (await client.get(f"/ui/examples/{name}")).status == 404


async def test_thumbnails_start_as_placeholders_then_become_stylized_pictures(
    settings: Settings, service: Service
) -> None:
    url = f"/ui/thumbnails/{settings.default_style}"
    async with serving(settings, service) as client:  # its own app: closing it stops the other styles' thumbnails
        first = await client.get(url)
        assert first.headers["X-Thumbnail"] == "pending"
        assert first.headers["Content-Type"].startswith("image/svg+xml")
        async with asyncio.timeout(JOB_WAIT_SECONDS):
            while (response := await client.get(url)).headers["X-Thumbnail"] != "ready":
                await asyncio.sleep(1)
        assert response.headers["Content-Type"] == "image/jpeg"
        assert image_size(await response.read()) == (256, 256)
        unknown = await client.get("/ui/thumbnails/no_such_style")
        assert unknown.headers["X-Thumbnail"] == "unavailable"
    await settled(service)


# --- jobs ------------------------------------------------------------------------------------------------------


async def test_a_job_streams_its_stages_in_order_then_its_result(client: TestClient, photo: bytes) -> None:
    job, events = await run_job(client, job_form(photo, strength="0.8"))
    assert job["state"] in ("queued", "running") and job["source"] and job["id"]
    assert job["position"] is None or job["position"] >= 1

    progress = [event.data for event in events if event.event == "progress"]
    stages = [JobStage(item["stage"]) for item in progress]
    assert stages == sorted(stages, key=STAGE_ORDER.index), stages  # never goes back
    assert {JobStage.DECODING, JobStage.STYLIZING, JobStage.FINISHING} <= set(stages)
    assert all(item["label"] and 0 <= item["fraction"] <= 1 for item in progress)
    assert [int(event.id) for event in events] == sorted({int(event.id) for event in events})
    assert events[-1].event == "done"

    done = events[-1].data
    assert done["state"] == "done" and done["strength"] == 0.8
    status = await (await client.get(job["status_url"])).json()
    assert status == done
    result = await client.get(job["result_url"])
    assert result.status == 200 and result.headers["Content-Type"] == done["result"]["mime"] == "image/jpeg"
    width, height = image_size(await result.read())
    assert (width, height) == (done["result"]["width"], done["result"]["height"])
    assert width == 256 and abs(height - round(256 * 85 / 128)) <= 1  # 128x85 upscaled to the 256 px minimum


async def test_resuming_the_event_stream_skips_what_was_seen(client: TestClient, photo: bytes) -> None:
    job, events = await run_job(client, job_form(photo))
    again = await read_events(await client.get(job["events_url"], headers={"Last-Event-ID": events[-2].id}))
    assert [event.event for event in again] == ["done"]
    assert await read_events(await client.get(job["events_url"], headers={"Last-Event-ID": events[-1].id})) == []


async def test_another_style_reuses_the_source_without_uploading_again(
    client: TestClient, service: Service, photo: bytes
) -> None:
    first, _ = await run_job(client, job_form(photo))
    assert await service.sources.get(first["source"]) == photo
    second, second_events = await run_job(client, job_form(source=first["source"], style="hayao"))
    assert second["source"] == first["source"]
    assert second_events[-1].data["result"]["style"] == "hayao"
    one = await (await client.get(first["result_url"])).read()
    two = await (await client.get(second["result_url"])).read()
    assert image_size(one) == image_size(two) and one != two


async def test_an_expired_source_key_asks_for_the_photo_again(client: TestClient) -> None:
    response = await client.post("/api/v1/jobs", data=job_form(source="forgotten123"))
    body = await error_of(response, 410)
    assert "upload it again" in body["message"]


async def test_one_shot_stylize_answers_with_the_image(client: TestClient, service: Service, portrait: bytes) -> None:
    form = FormData()
    form.add_field("image", portrait, filename="me.jpg", content_type="image/jpeg")  # exactly what curl -F sends
    response = await client.post("/api/v1/stylize", data=form)
    data = await response.read()
    assert response.status == 200, data[:200]
    assert response.headers["Content-Type"] == "image/jpeg"
    assert image_size(data) == (256, 256)
    assert await service.sources.get(response.headers["X-Source-Key"]) == portrait


async def test_an_iphone_heic_photo_is_accepted(client: TestClient, coffee: np.ndarray) -> None:
    form = FormData()
    form.add_field("image", heic_bytes(coffee), filename="IMG_0001.HEIC", content_type="image/heic")
    form.add_field("faces", "false")
    form.add_field("format", "png")
    response = await client.post("/api/v1/stylize", data=form)
    data = await response.read()
    assert response.status == 200, data[:200]
    assert response.headers["Content-Type"] == "image/png"
    assert image_size(data) == (256, 170)  # 128x85 HEIC, upscaled to the 256 px minimum


async def test_the_result_of_an_unfinished_job_is_409(client: TestClient, photo: bytes) -> None:
    response = await client.post("/api/v1/jobs", data=job_form(photo))
    job = await response.json()
    early = await client.get(job["result_url"])
    await error_of(early, 409)
    async with asyncio.timeout(JOB_WAIT_SECONDS):
        await read_events(await client.get(job["events_url"]))


@pytest.mark.parametrize("path", ["", "/events", "/result"])
async def test_an_unknown_job_is_404(client: TestClient, path: str) -> None:
    await error_of(await client.get(f"/api/v1/jobs/no-such-job{path}"), 404)


# --- bad inputs and limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/api/v1/jobs", "/api/v1/stylize"])
@pytest.mark.parametrize("content", [TEXT_FILE, b"", b"\xff\xd8\xff\xe0 truncated jpeg"])
async def test_a_file_that_is_not_an_image_is_refused_at_once(client: TestClient, route: str, content: bytes) -> None:
    body = await error_of(await client.post(route, data=job_form(content)), 422)
    assert body["error"] == "not_an_image"
    assert "not a photo" in body["message"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"strength": "strong"}, "bad_strength"),
        ({"strength": "1.5"}, "bad_strength"),
        ({"strength": "-0.1"}, "bad_strength"),
        ({"strength": "nan"}, "bad_strength"),
        ({"faces": "maybe"}, "bad_faces"),
        ({"format": "gif"}, "bad_format"),
        ({"source": "abc"}, "image_and_source"),
    ],
)
async def test_bad_fields_are_400_with_a_plain_message(
    client: TestClient, photo: bytes, fields: dict[str, str], code: str
) -> None:
    body = await error_of(await client.post("/api/v1/jobs", data=job_form(photo, **fields)), 400)
    assert body["error"] == code


@pytest.mark.parametrize("body", [None, {"style": "shinkai"}, b'{"image": "x"}'])
async def test_a_request_without_a_photo_is_400(client: TestClient, body: Any) -> None:
    await error_of(await client.post("/api/v1/jobs", data=body), 400)


async def test_an_unknown_style_is_422_and_names_the_styles(client: TestClient, photo: bytes) -> None:
    body = await error_of(await client.post("/api/v1/jobs", data=job_form(photo, style="vaporwave")), 422)
    assert "vaporwave" in body["message"] and "shinkai" in body["message"]


async def test_wrong_method_and_unknown_api_path_answer_in_json(client: TestClient) -> None:
    wrong = await error_of(await client.get("/api/v1/stylize"), 405)
    assert wrong["error"] == "method_not_allowed"
    await error_of(await client.get("/api/v1/nothing-here"), 404)


async def test_uploads_over_the_byte_limit_are_413(settings: Settings, service: Service, photo: bytes) -> None:
    small = settings.model_copy(update={"max_upload_bytes": len(photo) - 1})
    async with serving(small, service) as client:
        streamed = await error_of(await client.post("/api/v1/jobs", data=job_form(photo)), 413)
        huge = b"x" * (small.max_upload_bytes + 200 * 1024)
        urlencoded = await error_of(await client.post("/api/v1/jobs", data={"image": huge.decode()}), 413)
    assert streamed["error"] == urlencoded["error"] == "too_large"
    assert "MB" in streamed["message"]


async def test_photos_over_the_pixel_limit_are_413(settings: Settings, service: Service, photo: bytes) -> None:
    small = settings.model_copy(update={"max_pixels": 128 * 80})  # the photo is 128x85
    async with serving(small, service) as client:
        body = await error_of(await client.post("/api/v1/stylize", data=job_form(photo)), 413)
    assert body["error"] == "too_many_pixels"
    assert "megapixels" in body["message"]


async def test_a_client_over_its_own_waiting_cap_gets_429_with_retry_after(
    client: TestClient, service: Service, photo: bytes
) -> None:
    await settled(service)
    running = await client.post("/api/v1/jobs", data=job_form(photo))
    waiting = await client.post("/api/v1/jobs", data=job_form(photo))
    refused = await client.post("/api/v1/jobs", data=job_form(photo))
    body = await error_of(refused, 429)
    assert body["error"] == "too_many_waiting"
    assert "waiting" in body["message"]
    assert int(refused.headers["Retry-After"]) > 0
    for response in (running, waiting):
        job = await response.json()
        async with asyncio.timeout(JOB_WAIT_SECONDS):
            await read_events(await client.get(job["events_url"]))


async def test_a_full_server_answers_503_with_retry_after(client: TestClient, service: Service, photo: bytes) -> None:
    await settled(service)
    # Other people (other front ends) fill the one worker and the whole queue; this client has nothing waiting.
    others = [
        await service.enqueue(JobRequest(user=f"telegram:{person}", image=photo, style="shinkai", faces=False))
        for person in range(QUEUE_SIZE + 1)
    ]
    refused = await client.post("/api/v1/jobs", data=job_form(photo))
    body = await error_of(refused, 503)
    assert body["error"] == "busy"
    assert int(refused.headers["Retry-After"]) > 0
    async with asyncio.timeout(JOB_WAIT_SECONDS):
        await asyncio.gather(*(handle.result() for handle in others))


async def test_the_rate_limit_answers_429_with_retry_after(settings: Settings, service: Service, photo: bytes) -> None:
    strict = settings.model_copy(update={"rate_limit_per_minute": 1})
    limited = Service(strict, queue=service.queue)  # the same running pool, a stricter front door
    async with serving(strict, limited) as client:
        first = await client.post("/api/v1/jobs", data=job_form(photo))
        assert first.status == 202
        second = await client.post("/api/v1/jobs", data=job_form(photo))
        body = await error_of(second, 429)
        assert body["error"] == "rate_limited"
        assert 0 < int(second.headers["Retry-After"]) <= 60
        async with asyncio.timeout(JOB_WAIT_SECONDS):
            await read_events(await client.get((await first.json())["events_url"]))


# --- the API key -----------------------------------------------------------------------------------------------


async def test_the_api_key_guards_the_api_and_never_leaks(
    settings: Settings, service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    guarded = settings.model_copy(update={"api_key": SecretStr(API_KEY)})
    seen: list[str] = []
    async with serving(guarded, service) as client:
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": API_KEY[:-1]}):
            response = await client.get("/api/v1/styles", headers=headers)
            body = await error_of(response, 401)
            assert "X-API-Key" in body["message"]
            seen.append(await response.text())
        for path in ("/api/v1/jobs/whatever", "/api/v1/nothing-here"):
            assert (await client.get(path)).status == 401
        assert (await client.post("/api/v1/stylize", data=job_form(TEXT_FILE))).status == 401
        allowed = await client.get("/api/v1/styles", headers={"X-API-Key": API_KEY})
        assert allowed.status == 200
        for path in ("/", "/healthz", "/readyz", "/ui/config", "/api/v1/openapi.json"):
            response = await client.get(path)  # public, without the key
            assert response.status == 200, path
            seen.append(await response.text())
        config = await (await client.get("/ui/config")).json()
        document = await (await client.get("/api/v1/openapi.json")).json()
    assert config["api_key_required"] is True
    assert document["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
    assert all(API_KEY not in text for text in seen)
    assert all(API_KEY not in record.getMessage() for record in caplog.records)


# --- metrics (last: counts what the tests above did) -----------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_jobs_by_outcome_queue_and_stage_time(client: TestClient, service: Service) -> None:
    await settled(service)
    response = await client.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    values = samples(await response.text())
    stats = service.stats()
    assert values[("animebot_jobs_total", (("outcome", "done"),))] == stats["jobs_done"] >= 5
    assert values[("animebot_jobs_total", (("outcome", "refused_busy"),))] == stats["jobs_refused"] >= 1
    assert values[("animebot_queue_depth", ())] == stats["queue_depth"]
    assert values[("animebot_workers_alive", ())] == stats["workers_alive"] >= 1
    assert values[("animebot_worker_restarts_total", ())] == stats["restarts"]
    for stage in ("decoding", "stylizing", "finishing"):
        assert values[("animebot_stage_seconds_count", (("stage", stage),))] >= 3
        assert values[("animebot_stage_seconds_sum", (("stage", stage),))] > 0
