"""No SQLite store call holds up the event loop: not a 20 MB photo written or read, not a settings save waiting
for another process's write lock, not a /forget overwriting (``secure_delete``) several 20 MB photos.

A ticker sleeps 5 ms at a time while the store works; the longest gap between its wake-ups is how long the loop
was held. Every chat, button and progress event of the bot waits that long too. Each case is tried a few times and
the best try counts (like ``timeit``): a busy machine can delay any one wake-up, but a store that blocks the loop
blocks it every time.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from bot.config import Settings
from bot.disk_cache import DiskSourceCache
from bot.service import Service
from bot.settings_store import FILE_NAME, ChatSettings, SqliteSettingsStore

T = TypeVar("T")

TICK_SECONDS = 0.005
STALL_LIMIT_SECONDS = 0.05  # the loop may be held this long at most (a tick included)
PHOTO_BYTES = 20 * 1024 * 1024  # the largest upload the bot takes (ANIMEBOT_MAX_UPLOAD_BYTES)
LOCK_HELD_SECONDS = 0.3  # another process holding the settings file's write lock
TRIES = 3


async def with_largest_stall(work: Awaitable[T]) -> tuple[T, float]:
    """``work``'s result, and the longest the event loop went without running a 5 ms ticker while it ran."""
    gaps = [0.0]

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(TICK_SECONDS)  # the ticker is running before the work starts
    try:
        result = await work
        await asyncio.sleep(TICK_SECONDS)  # and it gets one more turn after the work ends
    finally:
        ticker.cancel()
    return result, max(gaps)


def shown(stalls: list[float]) -> list[str]:
    return [f"{stall * 1000:.0f} ms" for stall in stalls]


def photo(index: int) -> bytes:
    """20 MB that compress to nothing smaller (no store can take a shortcut)."""
    return index.to_bytes(4, "big") + os.urandom(PHOTO_BYTES - 4)


async def test_putting_and_reading_20_mb_photos_leaves_the_loop_free(tmp_path: Path) -> None:
    store = DiskSourceCache.in_folder(tmp_path, max_items=2, ttl=3600, max_bytes=2 * PHOTO_BYTES)
    stalls = []
    for index in range(TRIES):  # from the third on, each put pushes the oldest photo out
        key, put_stall = await with_largest_stall(store.put(photo(index)))
        kept, get_stall = await with_largest_stall(store.get(key))
        assert kept is not None and kept[:4] == index.to_bytes(4, "big") and len(kept) == PHOTO_BYTES
        stalls.append(max(put_stall, get_stall))
    await store.close()

    assert store.usage().photos == 2
    assert min(stalls) < STALL_LIMIT_SECONDS, shown(stalls)


async def test_a_settings_save_waiting_for_another_process_lock_leaves_the_loop_free(tmp_path: Path) -> None:
    store = SqliteSettingsStore.in_folder(tmp_path)
    assert await store.load("telegram:1") == ChatSettings()  # the file is open and migrated
    other = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)  # another `animebot serve` writing
    stalls = []
    for strength in range(TRIES):
        other.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(LOCK_HELD_SECONDS, other.execute, "COMMIT")
        started = time.perf_counter()
        _, stall = await with_largest_stall(store.save("telegram:1", ChatSettings(style="hayao", strength=strength)))
        assert time.perf_counter() - started >= LOCK_HELD_SECONDS * 0.9  # it did wait (SQLite's busy timeout) ...
        stalls.append(stall)
    other.close()

    assert await store.load("telegram:1") == ChatSettings(style="hayao", strength=TRIES - 1)
    await store.close()
    assert min(stalls) < STALL_LIMIT_SECONDS, shown(stalls)  # ... but not on the event loop


async def test_forgetting_a_person_with_several_20_mb_photos_leaves_the_loop_free(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, workers=1, data_dir=tmp_path)  # type: ignore[call-arg]
    service = Service(settings)  # its queue is never started: only the stores are used here
    stalls = []
    for person in range(TRIES):
        owner = f"telegram:{person}"
        kept = [await with_largest_stall(service.keep_source(photo(index), owner=owner)) for index in range(3)]
        deleted, forget_stall = await with_largest_stall(service.forget(owner))
        assert deleted == 3
        assert [await service.find_source(key) for key, _ in kept] == [None, None, None]
        stalls.append(max(forget_stall, *(stall for _, stall in kept)))
    await service.chat_settings.close()
    await service.sources.close()  # type: ignore[attr-defined]

    assert min(stalls) < STALL_LIMIT_SECONDS, shown(stalls)
