"""Source photos belong to the person who sent them, in every store, and are bounded per person and in all.

A key is not a bearer token: a Discord member who reads a button's ``anime:<key>:...`` id and posts
``source=<key>`` to the web API is told the photo expired, while the owner's own buttons and the web page's "try
another style" keep working. Issue 20, points 6, 2 (bounds) and 8 (sweeps, dead letters).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from adapters.web import create_app
from bot.cache import SourceBounds, SourceCache, SourceStore
from bot.cluster.keys import Keys
from bot.cluster.shared import RedisSources
from bot.config import Settings
from bot.disk_cache import DiskSourceCache
from bot.orders import Order, SourceExpired
from bot.service import Service
from bot.settings_store import SqliteSettingsStore
from tests.support_pool import SCRIPTED_ENGINE, FakeClock, script
from tests.support_redis import RedisServer

TTL = 600.0
ALICE, MALLORY = "discord:1001", "discord:6666"

MakeStore = Callable[..., SourceStore]


@pytest_asyncio.fixture(params=["memory", "disk", "redis"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeStore]:
    """Builds a source store of each kind (Redis: a real redis-server) with the given bounds."""
    clients: list[Redis] = []

    def make(**bounds: Any) -> SourceStore:
        limits = SourceBounds(**{"items": 100, **bounds})
        if request.param == "memory":
            return SourceCache(
                limits.items,
                TTL,
                limits.total_bytes,
                clock=FakeClock(),
                per_person_items=limits.per_person_items,
                per_person_bytes=limits.per_person_bytes,
            )
        if request.param == "disk":
            return DiskSourceCache.in_folder(
                tmp_path / "data",
                limits.items,
                TTL,
                limits.total_bytes,
                per_person_items=limits.per_person_items,
                per_person_bytes=limits.per_person_bytes,
            )
        server: RedisServer = request.getfixturevalue("redis_server")
        client = Redis.from_url(server.url)
        clients.append(client)
        return RedisSources(client, TTL, bounds=limits)

    yield make
    for client in clients:
        await client.aclose()


async def test_a_photo_is_read_only_for_its_owner(make_store: MakeStore) -> None:
    store = make_store()
    key = await store.put(b"alice's photo", owner=ALICE)

    assert await store.get(key, MALLORY) is None  # the same answer as for a key that never existed
    assert await store.get("no-such-key", MALLORY) is None
    assert await store.get(key, ALICE) == b"alice's photo"
    assert await store.get(key) == b"alice's photo"  # the service itself (no asker): album records, /stats


async def test_a_person_is_bounded_in_photos_their_least_recently_used_going_first(make_store: MakeStore) -> None:
    store = make_store(per_person_items=2)
    other = await store.put(b"someone else's", owner=MALLORY)
    first = await store.put(b"first", owner=ALICE)
    second = await store.put(b"second", owner=ALICE)
    assert await store.get(first, ALICE) == b"first"  # now `second` is Alice's least recently used

    third = await store.put(b"third", owner=ALICE)

    assert await store.get(second, ALICE) is None
    assert [await store.get(key, ALICE) for key in (first, third)] == [b"first", b"third"]
    assert await store.get(other, MALLORY) == b"someone else's"  # one person's flood never pushes out another's


async def test_a_person_is_bounded_in_bytes(make_store: MakeStore) -> None:
    store = make_store(per_person_bytes=10)
    first = await store.put(b"123456", owner=ALICE)
    second = await store.put(b"abcdef", owner=ALICE)
    huge = await store.put(b"x" * 11, owner=ALICE)
    other = await store.put(b"123456789", owner=MALLORY)

    assert await store.get(first) is None
    assert await store.get(second) == b"abcdef"
    assert await store.get(huge) is None
    assert await store.get(other) == b"123456789"


async def test_all_photos_are_bounded_in_count_and_bytes(make_store: MakeStore) -> None:
    store = make_store(items=3, total_bytes=22)
    keys = [await store.put(f"photo {index}".encode(), owner=f"telegram:{index}") for index in range(4)]

    assert [await store.get(key) for key in keys] == [None, b"photo 1", b"photo 2", b"photo 3"]
    big = await store.put(b"y" * 15, owner="telegram:9")
    assert [await store.get(key) for key in [*keys, big]] == [None, None, None, b"photo 3", b"y" * 15]


async def test_forget_deletes_every_photo_of_the_person(make_store: MakeStore) -> None:
    store = make_store()
    mine = [await store.put(b"a", owner=ALICE), await store.put(b"b", owner=ALICE)]
    theirs = await store.put(b"c", owner=MALLORY)

    assert await store.forget(ALICE) == 2
    assert [await store.get(key) for key in [*mine, theirs]] == [None, None, b"c"]


async def test_redis_keeps_one_count_of_photos_and_bytes_for_every_front_end(redis_server: RedisServer) -> None:
    clients = [Redis.from_url(redis_server.url) for _ in range(2)]
    bounds = SourceBounds(items=1000, total_bytes=50 * 1024)
    front_ends = [RedisSources(client, TTL, bounds=bounds) for client in clients]
    try:
        await asyncio.gather(
            *(front_ends[i % 2].put(bytes(1024), owner=f"telegram:{i}") for i in range(200))
        )  # a flood of 200 KB from many people through two front ends at once
        held = [key async for key in clients[0].scan_iter(f"{Keys().prefix}:source:*")]
        sizes = [len(await clients[0].hget(key, "image") or b"") for key in held]
        total = int(await clients[0].get(f"{Keys().prefix}:sources:bytes") or 0)
    finally:
        for client in clients:
            await client.aclose()

    assert len(held) == 50 and sum(sizes) == 50 * 1024 == total


# --- through the service and the web API: the Discord key posted to the web API ---


def service_settings(weights_dir: Path, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"workers": 1, "rate_limit_per_minute": 0, **overrides}
    return Settings(  # type: ignore[call-arg]
        _env_file=None, engine_factory=SCRIPTED_ENGINE, weights_dir=weights_dir, data_dir=data_dir, **values
    )


@pytest_asyncio.fixture(params=["one box", "redis"])
async def service(request: pytest.FixtureRequest, weights_dir: Path, tmp_path: Path) -> AsyncIterator[Service]:
    """A service with the in-process pool, its photos on disk or (``redis``) in a real redis-server."""
    sources = None
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        sources = RedisSources(Redis.from_url(server.url), TTL)
    async with Service(service_settings(weights_dir, tmp_path / "data"), sources=sources) as running:
        yield running
    if isinstance(sources, RedisSources):
        await sources.client.aclose()


@pytest_asyncio.fixture
async def web_client(service: Service) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(service.settings, service))) as client:
        yield client


async def test_a_discord_button_key_posted_to_the_web_api_reads_as_expired(
    service: Service, web_client: TestClient
) -> None:
    accepted = await service.submit(Order(user=ALICE, image=script(), owner=ALICE))  # Alice's /anime on Discord
    await accepted.handle.result()

    stolen = await web_client.post("/api/v1/jobs", data={"source": accepted.source, "strength": "0"})

    assert stolen.status == 410
    assert (await stolen.json())["error"] == "source_expired"
    with pytest.raises(SourceExpired):  # and through the core, for any other person's key
        await service.submit(Order(user=MALLORY, source=accepted.source, strength=0.0))
    again = await service.submit(Order(user=ALICE, source=accepted.source, style="hayao"))  # Alice's own button
    assert (await again.handle.result()).image


async def test_the_web_page_restyles_its_own_upload(service: Service, web_client: TestClient) -> None:
    accepted = await service.submit(Order(user="web:127.0.0.1", image=script()))  # what the API makes of an upload
    await accepted.handle.result()

    response = await web_client.post("/api/v1/jobs", data={"source": accepted.source, "style": "hayao"})

    assert response.status == 202, await response.text()
    assert (await response.json())["source"] == accepted.source


# --- point 8: expired photos and their records leave on time; dead letters name no one ---


async def test_expired_photos_leave_the_disk_without_another_put(tmp_path: Path) -> None:
    clock = FakeClock(now=time.time())
    store = DiskSourceCache(tmp_path / "sources.sqlite3", 10, TTL, clock=clock, sweep_seconds=0.05)
    await store.put(b"old photo", owner=ALICE)
    clock.advance(TTL + 1)
    deadline = time.monotonic() + 5
    with sqlite3.connect(tmp_path / "sources.sqlite3") as db:
        while db.execute("SELECT count(*) FROM photos").fetchone()[0] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        left = db.execute("SELECT count(*) FROM photos").fetchone()[0]
    await store.close()

    assert left == 0


async def test_records_of_expired_photos_are_pruned(tmp_path: Path) -> None:
    store = SqliteSettingsStore.in_folder(tmp_path, source_ttl=0.2)
    await store.own_source(ALICE, "old-key")
    await asyncio.sleep(0.3)
    await store.own_source(MALLORY, "new-key")
    await store.close()

    with sqlite3.connect(tmp_path / "settings.sqlite3") as db:
        assert db.execute("SELECT owner, key FROM owned_sources").fetchall() == [(MALLORY, "new-key")]


async def test_dead_letters_name_no_one_and_forget_removes_older_ones(
    redis_server: RedisServer, weights_dir: Path, tmp_path: Path
) -> None:
    client = redis_server.client()
    keys = Keys()
    client.xadd(keys.dead, {"job": "j1", "user": ALICE, "attempts": "2", "reason": "old"})  # written before
    client.xadd(keys.dead, {"job": "j2", "user": MALLORY, "attempts": "2", "reason": "old"})
    common = (Path(__file__).resolve().parents[1] / "bot" / "cluster" / "lua" / "common.lua").read_text()
    client.register_script(common + "\ndead_letter(ARGV[1], 'j3', ARGV[2], 2, 'crashed')\nreturn 1")(
        args=[keys.prefix, ALICE]
    )
    settings = service_settings(weights_dir, tmp_path, redis_url=redis_server.url, workers=0)
    service = Service(settings)
    try:
        await service.forget(ALICE)
    finally:
        await service.queue.stop()

    records = [fields for _entry, fields in client.xrange(keys.dead)]
    assert [record[b"job"] for record in records] == [b"j2", b"j3"]
    assert ALICE.encode() not in [value for record in records for value in record.values()]
