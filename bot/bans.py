"""Bans: people an admin has blocked, kept across restarts (``SqliteBans`` on one box, ``bot.cluster.bans.RedisBans``
shared by every front end in the cluster).

Front ends drop a banned person's updates before downloading anything, and answer them at most once a day
(``should_tell``); ``Service.submit`` refuses them too (``Banned``), for the web page and the API.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bot.budgets import budget_day
from bot.i18n import N_, Text
from bot.jobs import JobError
from bot.sqlite_schema import store_thread

Clock = Callable[[], float]

FILE_NAME = "bans.sqlite3"
MAX_REASON_CHARS = 200
BANNED_MESSAGE = N_("An admin of this bot has blocked you, so it no longer answers you.")

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE bans (
        target    TEXT PRIMARY KEY,
        admin     TEXT NOT NULL,
        since     REAL NOT NULL,
        reason    TEXT NOT NULL DEFAULT '',
        told_day  INTEGER NOT NULL DEFAULT -1
    );
    """,
)


class Banned(JobError):
    """The person is banned: nothing of theirs is drawn."""

    def __init__(self) -> None:
        super().__init__(Text(BANNED_MESSAGE))


@dataclass(frozen=True)
class Ban:
    """One ban: who is banned (a person key), by which admin, since when (UTC), and why (may be empty)."""

    target: str
    admin: str
    since: datetime
    reason: str = ""


BanList = list[Ban]  # named here: inside the store classes, ``list`` is a method


class BanStore(Protocol):
    """Who is banned, kept across restarts."""

    async def ban(self, target: str, admin: str, reason: str = "") -> bool:
        """Ban ``target``; False when they were banned already (the first ban's record stays)."""
        ...

    async def unban(self, target: str) -> bool:
        """Lift ``target``'s ban; False when they were not banned."""
        ...

    async def is_banned(self, target: str) -> bool:
        """Whether ``target`` is banned."""
        ...

    async def should_tell(self, target: str) -> bool:
        """For a banned ``target``: True the first time today (the caller answers them once), else False."""
        ...

    async def list(self) -> BanList:
        """Every ban, newest first."""
        ...

    async def ready(self) -> None:
        """Return once the store is usable; raise its plain error if not."""
        ...

    async def close(self) -> None:
        """Release the file or connection."""
        ...


class SqliteBans:
    """``BanStore`` in one SQLite file of the data dir (``bans.sqlite3``), in its own thread."""

    def __init__(self, path: Path, clock: Clock = time.time) -> None:
        self.path = path
        self._clock = clock
        self._db = store_thread(path, MIGRATIONS, "The bans database", "bans-db")

    @classmethod
    def in_folder(cls, folder: Path, clock: Clock = time.time) -> SqliteBans:
        """The store of the data dir ``folder``."""
        return cls(folder / FILE_NAME, clock)

    async def ban(self, target: str, admin: str, reason: str = "") -> bool:
        since, reason = self._clock(), reason[:MAX_REASON_CHARS]
        return await self._db.run(lambda db: _insert(db, target, admin, since, reason))

    async def unban(self, target: str) -> bool:
        return await self._db.run(lambda db: _delete(db, target))

    async def is_banned(self, target: str) -> bool:
        row = await self._db.run(lambda db: db.execute("SELECT 1 FROM bans WHERE target = ?", (target,)).fetchone())
        return row is not None

    async def should_tell(self, target: str) -> bool:
        day = budget_day(self._clock())
        return await self._db.run(lambda db: _tell(db, target, day))

    async def list(self) -> BanList:
        rows = await self._db.run(
            lambda db: db.execute("SELECT target, admin, since, reason FROM bans ORDER BY since DESC").fetchall()
        )
        return [Ban(target, admin, datetime.fromtimestamp(since, UTC), reason) for target, admin, since, reason in rows]

    async def ready(self) -> None:
        await self._db.run(lambda db: None)

    async def close(self) -> None:
        await self._db.close()


# What follows runs in the store's thread: each call is one transaction.


def _insert(db: sqlite3.Connection, target: str, admin: str, since: float, reason: str) -> bool:
    with db:
        added = db.execute(
            "INSERT OR IGNORE INTO bans (target, admin, since, reason) VALUES (?, ?, ?, ?)",
            (target, admin, since, reason),
        )
    return added.rowcount > 0


def _delete(db: sqlite3.Connection, target: str) -> bool:
    with db:
        deleted = db.execute("DELETE FROM bans WHERE target = ?", (target,))
    return deleted.rowcount > 0


def _tell(db: sqlite3.Connection, target: str, day: int) -> bool:
    with db:
        changed = db.execute("UPDATE bans SET told_day = ? WHERE target = ? AND told_day < ?", (day, target, day))
    return changed.rowcount > 0
