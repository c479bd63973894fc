"""The service layer: source cache, rate limit, allow-list, and ``Service`` wiring them to a real pool."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from animegan.manifest import list_styles
from bot.cache import SourceCache, SourceStore, SourceUsage
from bot.config import Settings
from bot.disk_cache import DiskSourceCache
from bot.jobs import JobRejected, JobRequest, JobResult, QueueFull, RateLimited
from bot.limits import AccessList, RateLimiter
from bot.service import Service
from tests.support_pool import SCRIPTED_ENGINE, FakeClock, report_of, script

TTL = 600.0
REPO = Path(__file__).resolve().parents[1]
KEY_LIMIT = 16  # Telegram callback data must also hold the style and strength


# --- SourceCache (memory) and DiskSourceCache (the embedded default): one contract ---

MakeStore = Callable[..., SourceStore]


@pytest.fixture(params=["memory", "disk"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """Builds a source store of either kind with the given bounds (the disk one in a fresh folder)."""

    def make(max_items: int, ttl: float, max_bytes: int | None = None, clock: FakeClock | None = None) -> SourceStore:
        clock = clock or FakeClock()
        if request.param == "memory":
            return SourceCache(max_items, ttl, max_bytes=max_bytes, clock=clock)
        return DiskSourceCache.in_folder(tmp_path / "data", max_items, ttl, max_bytes=max_bytes, clock=clock)

    return make


async def test_source_store_returns_the_photo_under_a_short_ascii_key(make_store: MakeStore) -> None:
    cache = make_store(max_items=4, ttl=TTL)
    keys = {await cache.put(f"photo {index}".encode()) for index in range(4)}

    assert len(keys) == 4
    for key in keys:
        assert len(key) <= KEY_LIMIT
        assert key.isascii() and key.replace("-", "").replace("_", "").isalnum()
    kept = sorted([await cache.get(key) or b"" for key in keys])
    assert kept == [f"photo {index}".encode() for index in range(4)]
    assert await cache.get("no-such-key") is None


async def test_source_store_forgets_a_photo_once_its_ttl_has_passed(make_store: MakeStore) -> None:
    clock = FakeClock()
    cache = make_store(max_items=4, ttl=TTL, clock=clock)
    old = await cache.put(b"old")
    clock.advance(TTL / 2)
    young = await cache.put(b"young")

    clock.advance(TTL / 2 - 1)
    assert await cache.get(old) == b"old"
    clock.advance(2)
    assert await cache.get(old) is None
    assert await cache.get(young) == b"young"
    assert cache.usage().photos == 1
    clock.advance(TTL)
    assert await cache.get(young) is None
    assert cache.usage().photos == 0


async def test_source_store_pushes_out_the_least_recently_used_photo(make_store: MakeStore) -> None:
    cache = make_store(max_items=2, ttl=TTL)
    first = await cache.put(b"first")
    second = await cache.put(b"second")
    assert await cache.get(first) == b"first"  # now `second` is the least recently used

    third = await cache.put(b"third")

    assert await cache.get(second) is None
    assert (await cache.get(first), await cache.get(third)) == (b"first", b"third")
    assert cache.usage().photos == 2


async def test_source_store_keeps_within_its_byte_budget(make_store: MakeStore) -> None:
    cache = make_store(max_items=10, ttl=TTL, max_bytes=10)
    first = await cache.put(b"123456")
    second = await cache.put(b"abcdef")
    huge = await cache.put(b"x" * 11)

    assert await cache.get(first) is None
    assert await cache.get(second) == b"abcdef"
    assert await cache.get(huge) is None
    assert cache.usage().total_bytes == 6


async def test_disk_store_keeps_photos_across_a_reopen_and_only_for_this_user(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    clock = FakeClock(now=1.7e9)
    before = DiskSourceCache.in_folder(folder, max_items=4, ttl=TTL, clock=clock)
    key = await before.put(b"kept photo")
    await before.close()

    after = DiskSourceCache.in_folder(folder, max_items=4, ttl=TTL, clock=clock)

    assert await after.get(key) == b"kept photo"
    assert (after.usage().photos, after.usage().total_bytes) == (1, len(b"kept photo"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "sources.sqlite3").stat().st_mode) == 0o600
    clock.advance(TTL)
    assert await after.get(key) is None  # the time-to-live counts across the restart


async def test_disk_store_shared_by_two_processes_sees_each_others_photos(tmp_path: Path) -> None:
    first = DiskSourceCache.in_folder(tmp_path, max_items=3, ttl=TTL)
    second = DiskSourceCache.in_folder(tmp_path, max_items=3, ttl=TTL)
    keys = [await first.put(b"a"), await second.put(b"b"), await first.put(b"c"), await second.put(b"d")]

    assert [await second.get(key) for key in keys] == [None, b"b", b"c", b"d"]  # one bound over both writers
    assert await first.get(keys[3]) == b"d"  # `first` reads, and so counts, the file both wrote
    assert first.usage().photos == 3


async def test_disk_store_starts_afresh_from_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "sources.sqlite3").write_bytes(b"this is not a SQLite database" * 100)

    cache = DiskSourceCache.in_folder(tmp_path, max_items=3, ttl=TTL)

    assert await cache.get(await cache.put(b"photo")) == b"photo"
    assert [copy.name for copy in tmp_path.glob("sources.sqlite3.broken-*")]  # set aside, not deleted


def test_a_photo_written_by_a_killed_process_is_wholly_there_or_absent(tmp_path: Path) -> None:
    code = (
        "import asyncio, os, sys\n"
        "from pathlib import Path\n"
        "from bot.disk_cache import DiskSourceCache\n"
        "async def main():\n"
        "    cache = DiskSourceCache.in_folder(Path(sys.argv[1]), max_items=1000, ttl=3600)\n"
        "    print(await cache.put(b'first' * 1000), flush=True)\n"
        "    while True:\n"
        "        await cache.put(os.urandom(1 << 20))\n"
        "asyncio.run(main())\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, cwd=REPO)
    assert writer.stdout is not None
    key = writer.stdout.readline().decode().strip()
    time.sleep(1.0)  # mid-way through some megabyte-sized write
    writer.kill()
    writer.wait()

    async def read_back() -> tuple[bytes | None, SourceUsage]:
        cache = DiskSourceCache.in_folder(tmp_path, max_items=1000, ttl=3600)
        return await cache.get(key), cache.usage()

    image, usage = asyncio.run(read_back())
    assert image == b"first" * 1000
    assert usage.total_bytes == (usage.photos - 1) * (1 << 20) + len(b"first" * 1000)


# --- RateLimiter and AccessList ---


def test_rate_limit_refuses_the_photo_over_the_limit_and_says_when_to_retry() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=3, clock=clock)
    for _ in range(3):
        limiter.check("telegram:1")
        limiter.record("telegram:1")
        clock.advance(10)

    with pytest.raises(RateLimited) as refusal:
        limiter.check("telegram:1")
    limiter.check("telegram:2")  # someone else is not affected

    assert refusal.value.retry_after == pytest.approx(30)
    assert "30 seconds" in refusal.value.message
    assert limiter.refused == 1
    clock.advance(30)
    limiter.check("telegram:1")
    assert limiter.retry_after("telegram:1") == 0


def test_rate_limit_of_zero_means_no_limit() -> None:
    limiter = RateLimiter(per_minute=0, clock=FakeClock())
    for _ in range(100):
        limiter.check("web:1")
        limiter.record("web:1")
    assert limiter.refused == 0


def test_access_list_is_open_when_empty_and_closed_to_others_when_set() -> None:
    open_list = AccessList()
    closed = AccessList.of(chats=[-100], guilds=[7])

    assert open_list.allows_chat(5) and open_list.allows_guild(None)
    assert closed.allows_chat(-100) and not closed.allows_chat(5)
    assert closed.allows_guild(7) and not closed.allows_guild(8)
    assert not closed.allows_guild(None)


def test_access_list_reads_the_settings() -> None:
    settings = Settings(_env_file=None, allowed_chats={1, 2}, allowed_guilds=set())  # type: ignore[call-arg]
    access = AccessList.from_settings(settings)
    assert access.allows_chat(2) and not access.allows_chat(3) and access.allows_guild(99)


# --- Service ---


def service_settings(weights_dir: Path, **overrides: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, engine_factory=SCRIPTED_ENGINE, workers=1, weights_dir=weights_dir, **overrides
    )


def test_service_lists_installed_styles_default_first(weights_dir: Path) -> None:
    styles = Service(service_settings(weights_dir, default_style="hayao")).styles()
    installed = {style.name for style in list_styles(weights_dir) if style.installed}

    assert {style.name for style in styles} == installed
    assert styles[0].name == "hayao"
    assert all(style.installed for style in styles)


async def test_service_runs_a_job_and_refuses_bad_ones_at_once(weights_dir: Path) -> None:
    settings = service_settings(weights_dir, max_upload_bytes=1000)
    missing = [style for style in list_styles(weights_dir) if not style.installed]
    async with Service(settings) as service:
        handle = await service.enqueue(JobRequest(user="web:1", image=script(sleep=0.01), style="Shinkai"))
        result = await handle.result()
        with pytest.raises(JobRejected, match="no style called"):
            await service.enqueue(JobRequest(user="web:1", image=script(), style="picasso"))
        with pytest.raises(JobRejected, match="strength must be between"):
            await service.enqueue(JobRequest(user="web:1", image=script(), style="shinkai", strength=1.5))
        with pytest.raises(JobRejected, match="limit is"):
            await service.enqueue(JobRequest(user="web:1", image=b"x" * 1001, style="shinkai"))
        if missing:
            with pytest.raises(JobRejected, match="not installed"):
                await service.enqueue(JobRequest(user="web:1", image=script(), style=missing[0].name))
        stats = service.stats()

    assert isinstance(result, JobResult)
    assert result.style == "shinkai"
    assert report_of(result.image)["style"] == "shinkai"
    assert stats["jobs_done"] == 1
    assert stats["jobs_accepted"] == 1  # refused inputs never reached the queue


async def test_service_rate_limits_only_photos_the_queue_took(weights_dir: Path, tmp_path: Path) -> None:
    clock = FakeClock()
    settings = service_settings(weights_dir, rate_limit_per_minute=2, queue_size=0, data_dir=tmp_path)
    async with Service(settings, clock=clock) as service:
        running = await service.enqueue(JobRequest(user="telegram:9", image=script(sleep=0.2), style="shinkai"))
        with pytest.raises(QueueFull):  # the only worker is busy and nothing may wait
            await service.enqueue(JobRequest(user="telegram:9", image=script(), style="shinkai"))
        await running.result()
        second = await service.enqueue(JobRequest(user="telegram:9", image=script(), style="shinkai"))
        await second.result()
        with pytest.raises(RateLimited) as refusal:
            await service.enqueue(JobRequest(user="telegram:9", image=script(), style="shinkai"))
        clock.advance(61)
        third = await service.enqueue(JobRequest(user="telegram:9", image=script(), style="shinkai"))
        await third.result()
        key = await service.sources.put(b"source photo")
        stats = service.stats()
        kept = await service.sources.get(key)

    assert refusal.value.retry_after == pytest.approx(60)
    assert "try again in 60 seconds" in refusal.value.message
    assert stats["rate_limited"] == 1
    assert stats["jobs_refused"] == 1
    assert stats["jobs_done"] == 3
    assert stats["sources_cached"] == 1
    assert kept == b"source photo"
