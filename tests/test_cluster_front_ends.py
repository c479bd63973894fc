"""Several front ends on one Redis: a Telegram button pressed on another front end (after the first one stopped)
re-styles from the shared source photos, the rate limit is shared, and the web page's event stream, fed from the
job's Redis stream, resumes with Last-Event-ID. The worker host runs the real engine on real weights."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import ClientSession, FormData
from pydantic import SecretStr

from adapters.telegram import build_application, running
from bot.cluster.host import WorkerHost
from bot.config import Settings
from bot.jobs import JobRequest, RateLimited
from bot.service import Service
from tests.fake_telegram import FakeTelegram, FakeUser
from tests.support_cluster import assert_nothing_pending, cluster_settings, counters
from tests.support_redis import RedisServer
from tests.support_web import SMALL_SIDE, jpeg_bytes, live_server, read_events

REPLY_TIMEOUT = 120.0
ENGINE = "animegan:Engine"


def front_end_settings(redis_server: RedisServer, weights_dir: Path, **overrides: Any) -> Settings:
    """A pure front end (no workers of its own) of the cluster on ``redis_server``."""
    values: dict[str, Any] = {
        "weights_dir": weights_dir,
        "workers": 0,
        "engine_factory": ENGINE,
        "working_size": 256,
        "job_timeout": REPLY_TIMEOUT,
    }
    return cluster_settings(redis_server.url, **(values | overrides))


@pytest_asyncio.fixture
async def engine_host(redis_server: RedisServer, weights_dir: Path) -> AsyncIterator[WorkerHost]:
    """A worker host with one process running the real engine at 256 px."""
    host = WorkerHost(front_end_settings(redis_server, weights_dir, workers=1))
    await host.start()
    yield host
    await host.stop(grace=10)


def telegram_settings(settings: Settings, telegram: FakeTelegram) -> Settings:
    return settings.model_copy(
        update={
            "telegram_token": SecretStr(telegram.token),
            "telegram_base_url": telegram.base_url,
            "telegram_base_file_url": telegram.base_file_url,
        }
    )


async def test_a_button_pressed_on_a_second_front_end_restyles_from_the_shared_sources(
    redis_server: RedisServer, weights_dir: Path, engine_host: WorkerHost, coffee: np.ndarray
) -> None:
    user = FakeUser(id=4242, first_name="Ann", username="ann4242")
    async with FakeTelegram() as telegram:
        chat = telegram.private_chat(user)
        first = telegram_settings(front_end_settings(redis_server, weights_dir), telegram)
        async with Service(first) as service, running(build_application(first, service), first):
            sent = telegram.send_photo(user, chat, jpeg_bytes(coffee, 240))
            await telegram.wait_until(lambda: any("photo" in m for m in telegram.replies_to(sent)), REPLY_TIMEOUT)
        (reply,) = [m for m in telegram.replies_to(sent) if "photo" in m]
        # The first front end is gone, memory and all. Another one gets the button press.
        second = telegram_settings(front_end_settings(redis_server, weights_dir), telegram)
        other = next(style for style in Service(second).styles()[1:] if style.name == "hayao")
        button = next(b for row in reply["reply_markup"]["inline_keyboard"] for b in row if b["text"] == other.title)
        async with Service(second) as service, running(build_application(second, service), second):
            telegram.press_button(user, reply, button["callback_data"])
            await telegram.wait_until(lambda: bool(telegram.calls_to("editMessageMedia", chat.id)), REPLY_TIMEOUT)
        edited = telegram.message(chat.id, reply["message_id"])
    assert edited["caption"].startswith(other.title)
    assert not telegram.refused()
    client = redis_server.client()
    assert counters(client)["done"] == 2
    assert_nothing_pending(client)


async def test_the_rate_limit_is_shared_by_the_front_ends(redis_server: RedisServer, weights_dir: Path) -> None:
    settings = front_end_settings(redis_server, weights_dir, rate_limit_per_minute=2)
    photo = jpeg_bytes(np.zeros((SMALL_SIDE, SMALL_SIDE, 3), np.uint8))
    request = JobRequest(user="web:10.0.0.1", image=photo, style="shinkai")
    async with Service(settings) as one, Service(settings) as two:
        await one.enqueue(request)
        await two.enqueue(request)
        with pytest.raises(RateLimited) as refusal:
            await one.enqueue(request)
        await one.queue.stop(grace=0)  # nobody runs these jobs here
        await two.queue.stop(grace=0)
    assert 55 < (refusal.value.retry_after or 0) <= 60


async def test_the_event_stream_resumes_with_last_event_id_exactly_once(
    redis_server: RedisServer, weights_dir: Path, engine_host: WorkerHost, coffee: np.ndarray
) -> None:
    settings = front_end_settings(redis_server, weights_dir)
    async with Service(settings) as service, live_server(settings, service) as base, ClientSession() as http:
        form = FormData()
        form.add_field("image", jpeg_bytes(coffee), filename="coffee.jpg", content_type="image/jpeg")
        form.add_field("faces", "false")
        async with http.post(f"{base}/api/v1/jobs", data=form) as response:
            job = await response.json()
            assert response.status == 202, job
        events_url = f"{base}{job['events_url']}"
        async with http.get(events_url) as stream:  # read the first event, then the connection drops
            line = b""
            while not line.startswith(b"id:"):
                line = await stream.content.readline()
            first_id = line.decode().split(":", 1)[1].strip()
        await asyncio.sleep(0.5)  # events happen while nobody listens
        async with asyncio.timeout(REPLY_TIMEOUT), http.get(events_url, headers={"Last-Event-ID": first_id}) as again:
            rest = await read_events(again)
    ids = [first_id] + [event.id for event in rest]
    assert len(ids) == len(set(ids)) and all(int(a) < int(b) for a, b in pairwise(ids))  # none twice, in order
    assert rest[-1].event == "done"
    stages = [event.data["stage"] for event in rest if event.event == "progress"]
    assert "queued" not in stages  # seen before the reconnect, not replayed
    assert stages[-1] == "finishing" and stages.index("decoding") < stages.index("stylizing")
    assert_nothing_pending(redis_server.client())
