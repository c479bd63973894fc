"""SQLite stores at open: "locked" is not "broken", a newer schema stops the service, broken copies are bounded
and reached by /forget (issue 20, point 7)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import disk_cache, settings_store
from bot.config import Settings
from bot.disk_cache import DiskSourceCache
from bot.service import Service
from bot.settings_store import FILE_NAME, ChatSettings, SqliteSettingsStore
from bot.sqlite_files import SchemaTooNew, StoreUnavailable
from tests.support_pool import SCRIPTED_ENGINE

TTL = 600.0


def broken(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.glob(f"{name}.broken*"))


async def test_a_locked_settings_database_is_never_moved_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteSettingsStore.in_folder(tmp_path)
    await store.save("telegram:1", ChatSettings(style="hayao"))
    await store.close()
    monkeypatch.setattr(settings_store, "BUSY_TIMEOUT_SECONDS", 0.05)
    holder = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process mid-write, past our busy timeout

    locked = SqliteSettingsStore.in_folder(tmp_path)
    with pytest.raises(StoreUnavailable, match="locked by another process"):
        await locked.ready()
    await locked.close()
    holder.execute("ROLLBACK")
    holder.close()

    assert broken(tmp_path, FILE_NAME) == []
    reopened = SqliteSettingsStore.in_folder(tmp_path)
    assert (await reopened.load("telegram:1")).style == "hayao"
    await reopened.close()


async def test_a_locked_source_store_is_never_moved_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DiskSourceCache.in_folder(tmp_path, 10, TTL)
    key = await store.put(b"photo", owner="telegram:1")
    await store.close()
    monkeypatch.setattr(disk_cache, "BUSY_TIMEOUT_SECONDS", 0.05)
    holder = sqlite3.connect(tmp_path / disk_cache.FILE_NAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")

    locked = DiskSourceCache.in_folder(tmp_path, 10, TTL)
    with pytest.raises(StoreUnavailable):
        await locked.get(key)
    await locked.close()
    holder.execute("ROLLBACK")
    holder.close()

    assert broken(tmp_path, disk_cache.FILE_NAME) == []
    reopened = DiskSourceCache.in_folder(tmp_path, 10, TTL)
    assert await reopened.get(key) == b"photo"
    await reopened.close()


async def test_a_newer_schema_stops_the_service_with_a_plain_error(tmp_path: Path, weights_dir: Path) -> None:
    store = SqliteSettingsStore.in_folder(tmp_path)
    await store.save("telegram:1", ChatSettings(style="hayao"))
    await store.close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.execute("PRAGMA user_version = 99")  # written by a newer bot, then downgraded
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, engine_factory=SCRIPTED_ENGINE, workers=1, weights_dir=weights_dir, data_dir=tmp_path
    )

    service = Service(settings)
    with pytest.raises(SchemaTooNew, match="newer than this bot knows"):
        await service.start()
    await service.chat_settings.close()
    if service._owned_sources is not None:
        await service._owned_sources.close()

    assert broken(tmp_path, FILE_NAME) == []
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        assert db.execute("SELECT style FROM chat_settings").fetchall() == [("hayao",)]


async def test_a_broken_source_store_leaves_no_wal_or_shm_beside_the_fresh_file(tmp_path: Path) -> None:
    (tmp_path / "sources.sqlite3").write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"sources.sqlite3{suffix}").write_bytes(b"stale log of the broken file")

    store = DiskSourceCache.in_folder(tmp_path, 10, TTL)
    assert await store.get(await store.put(b"photo")) == b"photo"
    await store.close()

    assert broken(tmp_path, "sources.sqlite3")  # the file, and whatever of its log SQLite had not removed
    assert sorted(p.name for p in tmp_path.glob("sources.sqlite3*") if ".broken" not in p.name) == ["sources.sqlite3"]


async def test_broken_settings_copies_are_kept_newest_few(tmp_path: Path) -> None:
    for _ in range(5):
        (tmp_path / FILE_NAME).write_bytes(b"not a database" * 100)
        store = SqliteSettingsStore.in_folder(tmp_path)
        await store.ready()
        await store.close()

    assert len(broken(tmp_path, FILE_NAME)) == settings_store.KEPT_BROKEN_COPIES


async def test_broken_source_copies_go_after_the_time_to_live(tmp_path: Path) -> None:
    old = tmp_path / "sources.sqlite3.broken-1"
    old.write_bytes(b"photos that expired long ago")
    os.utime(old, (time.time() - TTL - 60, time.time() - TTL - 60))

    store = DiskSourceCache.in_folder(tmp_path, 10, TTL)
    await store.put(b"photo")
    await store.close()

    assert broken(tmp_path, "sources.sqlite3") == []


async def test_forget_deletes_the_broken_copies(tmp_path: Path, weights_dir: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, engine_factory=SCRIPTED_ENGINE, workers=1, weights_dir=weights_dir, data_dir=tmp_path
    )
    (tmp_path / FILE_NAME).write_bytes(b"not a database" * 100)
    (tmp_path / "sources.sqlite3").write_bytes(b"not a database" * 100)
    service = Service(settings)
    await service.chat_settings.save("telegram:1", ChatSettings())
    await service.sources.put(b"photo")
    assert broken(tmp_path, FILE_NAME) and broken(tmp_path, "sources.sqlite3")

    await service.forget("telegram:1")
    await service.chat_settings.close()
    if service._owned_sources is not None:
        await service._owned_sources.close()

    assert broken(tmp_path, FILE_NAME) == [] and broken(tmp_path, "sources.sqlite3") == []


OTHER_PROCESS = """
import asyncio, sys
from pathlib import Path
from bot.disk_cache import DiskSourceCache
from bot.settings_store import ChatSettings, SqliteSettingsStore

async def main() -> None:
    sources = DiskSourceCache.in_folder(Path(sys.argv[1]), 10, 600)
    await sources.put(b"from another process", owner="telegram:3")
    await sources.close()
    settings = SqliteSettingsStore.in_folder(Path(sys.argv[1]))
    await settings.save("telegram:3", ChatSettings(style="hayao"))
    await settings.close()

asyncio.run(main())
"""


async def test_opening_a_store_again_keeps_the_locks_of_the_one_open_here(tmp_path: Path) -> None:
    """A second store on the same file in this process must not drop the first one's locks: else another process
    closing the file thinks it is the last and deletes the -wal and -shm the first one still uses."""
    sources, settings = DiskSourceCache.in_folder(tmp_path, 10, TTL), SqliteSettingsStore.in_folder(tmp_path)
    key = await sources.put(b"kept here", owner="telegram:1")
    await settings.save("telegram:1", ChatSettings(style="shinkai"))
    again = DiskSourceCache.in_folder(tmp_path, 10, TTL), SqliteSettingsStore.in_folder(tmp_path)
    await again[0].put(b"also here", owner="telegram:2")
    await again[1].save("telegram:2", ChatSettings(style="sketch"))
    repo = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-c", OTHER_PROCESS, str(tmp_path)]
    await asyncio.to_thread(subprocess.run, command, check=True, cwd=repo, timeout=120)
    companions = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(("-wal", "-shm")))
    assert companions == [f"{name}{suffix}" for name in (FILE_NAME, "sources.sqlite3") for suffix in ("-shm", "-wal")]
    assert await sources.get(key, "telegram:1") == b"kept here"
    assert (await settings.load("telegram:3")).style == "hayao"
    for store in (sources, settings, *again):
        await store.close()
