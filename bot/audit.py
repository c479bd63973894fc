"""The audit log: every admin action (ban, unban, usage lookup) with who did it, to whom, and when.

Entries hold person keys and a short reason only, never a photo or a token. The log is bounded (the newest
``MAX_ENTRIES`` are kept): ``SqliteAuditLog`` on one box, ``bot.cluster.audit.RedisAuditLog`` in the cluster.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from bot.sqlite_schema import store_thread

Clock = Callable[[], float]

FILE_NAME = "audit.sqlite3"
MAX_ENTRIES = 10_000
MAX_DETAIL_CHARS = 200

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE audit (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at     REAL NOT NULL,
        admin  TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    """,
)


class AdminAction(StrEnum):
    """What an admin did."""

    BAN = "ban"
    UNBAN = "unban"
    USAGE = "usage"


@dataclass(frozen=True)
class AuditEntry:
    """One admin action: ``admin`` (a person key) did ``action`` to ``target`` at ``at`` (UTC); ``detail`` is a
    ban's reason, or empty."""

    admin: str
    action: AdminAction
    target: str
    at: datetime
    detail: str = ""


class AuditLog(Protocol):
    """A bounded log of admin actions, kept across restarts."""

    async def record(self, admin: str, action: AdminAction, target: str, detail: str = "") -> None:
        """Write one entry, now."""
        ...

    async def recent(self, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first."""
        ...

    async def ready(self) -> None:
        """Return once the log is usable; raise its plain error if not."""
        ...

    async def close(self) -> None:
        """Release the file or connection."""
        ...


class SqliteAuditLog:
    """``AuditLog`` in one SQLite file of the data dir (``audit.sqlite3``), in its own thread, the newest
    ``max_entries`` kept."""

    def __init__(self, path: Path, clock: Clock = time.time, max_entries: int = MAX_ENTRIES) -> None:
        self.path = path
        self.max_entries = max_entries
        self._clock = clock
        self._db = store_thread(path, MIGRATIONS, "The audit log database (admin actions)", "audit-db")

    @classmethod
    def in_folder(cls, folder: Path, clock: Clock = time.time) -> SqliteAuditLog:
        """The log of the data dir ``folder``."""
        return cls(folder / FILE_NAME, clock)

    async def record(self, admin: str, action: AdminAction, target: str, detail: str = "") -> None:
        at, detail = self._clock(), detail[:MAX_DETAIL_CHARS]
        await self._db.run(lambda db: _record(db, at, admin, action, target, detail, self.max_entries))

    async def recent(self, limit: int) -> list[AuditEntry]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT admin, action, target, at, detail FROM audit ORDER BY id DESC LIMIT ?", (max(0, limit),)
            ).fetchall()
        )
        return [
            AuditEntry(admin, AdminAction(action), target, datetime.fromtimestamp(at, UTC), detail)
            for admin, action, target, at, detail in rows
        ]

    async def ready(self) -> None:
        await self._db.run(lambda db: None)

    async def close(self) -> None:
        await self._db.close()


def _record(
    db: sqlite3.Connection, at: float, admin: str, action: AdminAction, target: str, detail: str, keep: int
) -> None:
    with db:
        cursor = db.execute(
            "INSERT INTO audit (at, admin, action, target, detail) VALUES (?, ?, ?, ?, ?)",
            (at, admin, action.value, target, detail),
        )
        db.execute("DELETE FROM audit WHERE id <= ?", (int(cursor.lastrowid or 0) - keep,))
