"""What the bot remembers about a person or a chat: their settings, which source photos are theirs, their sticker
pack. ``SettingsStore`` is what front ends use; ``SqliteSettingsStore`` (a file in the data dir) is the embedded
default, ``bot.cluster.settings.RedisSettingsStore`` the one every front end shares with ``ANIMEBOT_REDIS_URL``.

Owners are namespaced strings like the queue's users: ``telegram:123`` (a person, or a private chat: Telegram
gives both the same id), ``telegram:-100456`` (a group), ``discord:789``, ``web:...``.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from bot.sqlite_files import broken_copies, delete_broken, open_store, prune_broken
from bot.sqlite_schema import migrate
from bot.sqlite_thread import SqliteThread

FILE_NAME = "settings.sqlite3"
BUSY_TIMEOUT_SECONDS = 10.0
FULL_STRENGTH = 100
KEPT_BROKEN_COPIES = 3  # copies of a broken file set aside for the operator to salvage: the newest few
DEFAULT_SOURCE_TTL = 3600.0
SWEEP_SECONDS = 600.0  # how often records of expired source photos are pruned when nothing else happens
OWNER_TABLES = ("chat_settings", "owned_sources", "sticker_sets")  # every table keyed by owner

# Each entry moves the schema one version up (PRAGMA user_version); never edit one that has shipped, append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE chat_settings (
        owner    TEXT PRIMARY KEY,
        style    TEXT,
        strength INTEGER NOT NULL DEFAULT 100,
        faces    INTEGER NOT NULL DEFAULT 1,
        language TEXT,
        updated  REAL NOT NULL
    );
    """,
    """
    CREATE TABLE owned_sources (
        owner TEXT NOT NULL,
        key   TEXT NOT NULL,
        PRIMARY KEY (owner, key)
    ) WITHOUT ROWID;
    CREATE TABLE sticker_sets (
        owner TEXT PRIMARY KEY,
        name  TEXT NOT NULL
    );
    """,
    # When each source photo was kept (wall-clock seconds), so the records of expired ones are pruned; rows kept
    # before count from the upgrade.
    """
    ALTER TABLE owned_sources ADD COLUMN stored REAL NOT NULL DEFAULT 0;
    UPDATE owned_sources SET stored = CAST(strftime('%s', 'now') AS REAL);
    CREATE INDEX owned_sources_by_age ON owned_sources (stored);
    """,
)


@dataclass(frozen=True)
class ChatSettings:
    """A person's or a chat's choices; ``None`` means "the default" (the server's style, the platform's language)."""

    style: str | None = None
    strength: int = FULL_STRENGTH  # percent
    faces: bool = True
    language: str | None = None

    def with_changes(self, **changes: object) -> ChatSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


class SettingsStore(Protocol):
    """Per-owner settings and records, kept across restarts."""

    async def load(self, owner: str) -> ChatSettings:
        """The owner's settings (defaults when nothing is kept)."""
        ...

    async def save(self, owner: str, settings: ChatSettings) -> None:
        """Keep the owner's settings."""
        ...

    async def own_source(self, owner: str, key: str) -> None:
        """Remember that the source photo under ``key`` is the owner's (so ``forget`` can delete it)."""
        ...

    async def sticker_set(self, owner: str) -> str | None:
        """The name of the owner's sticker pack, once made."""
        ...

    async def keep_sticker_set(self, owner: str, name: str) -> None:
        """Remember the owner's sticker pack."""
        ...

    async def forget(self, owner: str) -> list[str]:
        """Delete everything kept about ``owner``; returns the keys of their source photos (to delete too)."""
        ...

    async def holds_anything_about(self, owner: str) -> bool:
        """Whether any record about ``owner`` is kept (for tests and for /forget's answer)."""
        ...

    async def ready(self) -> None:
        """Return once the store is usable; raise its plain error (``StoreFileError``) if it is not."""
        ...

    async def close(self) -> None:
        """Release the file or connection."""
        ...


class SqliteSettingsStore:
    """``SettingsStore`` in one SQLite file: WAL, schema versions in ``PRAGMA user_version``, private to this user.

    A file that is not a readable database (corrupt, a half-copied backup) is moved aside as
    ``settings.sqlite3.broken-<time>`` with a warning, and a fresh one started; nothing else in the data dir
    (the source photos) is touched. The newest ``KEPT_BROKEN_COPIES`` copies are kept for the operator, and
    ``forget`` deletes them all: a corrupt file can't be trusted to give up a person's rows. A locked file, or one
    of a newer schema, is never moved: ``ready`` and every call raise the plain error (see ``bot.sqlite_files``).
    The file is opened, read and written in the store's own thread (``SqliteThread``): a busy lock or a
    ``secure_delete`` never holds up the event loop. Records of source photos are pruned ``source_ttl`` seconds
    after they were kept, when the photos themselves have expired.
    """

    def __init__(self, path: Path, source_ttl: float = DEFAULT_SOURCE_TTL) -> None:
        self.path = path
        self.source_ttl = source_ttl
        self._db = SqliteThread(lambda: self._pruned(_open(path)), name="settings-db")
        self._db.every(SWEEP_SECONDS, self._pruned)

    @classmethod
    def in_folder(cls, folder: Path, source_ttl: float = DEFAULT_SOURCE_TTL) -> SqliteSettingsStore:
        """The store of the data dir ``folder`` (file ``settings.sqlite3``)."""
        return cls(folder / FILE_NAME, source_ttl)

    async def ready(self) -> None:
        await self._db.run(lambda db: None)

    async def schema_version(self) -> int:
        """The schema version of the open file."""
        (version,) = await self._db.run(lambda db: db.execute("PRAGMA user_version").fetchone())
        return int(version)

    async def load(self, owner: str) -> ChatSettings:
        row = await self._db.run(
            lambda db: db.execute(
                "SELECT style, strength, faces, language FROM chat_settings WHERE owner = ?", (owner,)
            ).fetchone()
        )
        if row is None:
            return ChatSettings()
        return ChatSettings(style=row[0], strength=int(row[1]), faces=bool(row[2]), language=row[3])

    async def save(self, owner: str, settings: ChatSettings) -> None:
        await self._db.run(lambda db: _save(db, owner, settings))

    async def own_source(self, owner: str, key: str) -> None:
        await self._db.run(lambda db: self._own_source(db, owner, key))

    async def sticker_set(self, owner: str) -> str | None:
        row = await self._db.run(
            lambda db: db.execute("SELECT name FROM sticker_sets WHERE owner = ?", (owner,)).fetchone()
        )
        return None if row is None else str(row[0])

    async def keep_sticker_set(self, owner: str, name: str) -> None:
        await self._db.run(
            lambda db: _write(
                db,
                "INSERT INTO sticker_sets (owner, name) VALUES (?, ?) "
                "ON CONFLICT (owner) DO UPDATE SET name = excluded.name",
                owner,
                name,
            )
        )

    async def forget(self, owner: str) -> list[str]:
        return await self._db.run(lambda db: self._forget(db, owner))

    async def holds_anything_about(self, owner: str) -> bool:
        return await self._db.run(lambda db: _holds_anything_about(db, owner))

    async def close(self) -> None:
        await self._db.close()

    def _own_source(self, db: sqlite3.Connection, owner: str, key: str) -> None:
        with db:
            db.execute(
                "INSERT OR REPLACE INTO owned_sources (owner, key, stored) VALUES (?, ?, ?)", (owner, key, time.time())
            )
        self._pruned(db)

    def _pruned(self, db: sqlite3.Connection) -> sqlite3.Connection:
        """Delete the records of source photos kept longer ago than they live; returns ``db``."""
        with db:
            db.execute("DELETE FROM owned_sources WHERE stored <= ?", (time.time() - self.source_ttl,))
        return db

    def _forget(self, db: sqlite3.Connection, owner: str) -> list[str]:
        keys = _forget(db, owner)
        delete_broken(broken_copies(self.path))
        return keys


# What follows runs in the store's thread, one call at a time: each write is one transaction.


def _write(db: sqlite3.Connection, statement: str, *parameters: str) -> None:
    with db:
        db.execute(statement, parameters)


def _save(db: sqlite3.Connection, owner: str, settings: ChatSettings) -> None:
    with db:
        db.execute(
            "INSERT INTO chat_settings (owner, style, strength, faces, language, updated) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (owner) DO UPDATE SET style = excluded.style, "
            "strength = excluded.strength, faces = excluded.faces, language = excluded.language, "
            "updated = excluded.updated",
            (owner, settings.style, settings.strength, int(settings.faces), settings.language, time.time()),
        )


def _forget(db: sqlite3.Connection, owner: str) -> list[str]:
    with db:
        keys = [row[0] for row in db.execute("SELECT key FROM owned_sources WHERE owner = ?", (owner,))]
        for table in OWNER_TABLES:
            db.execute(f"DELETE FROM {table} WHERE owner = ?", (owner,))  # fixed table names, not input
    return keys


def _holds_anything_about(db: sqlite3.Connection, owner: str) -> bool:
    return any(
        db.execute(f"SELECT 1 FROM {table} WHERE owner = ? LIMIT 1", (owner,)).fetchone() for table in OWNER_TABLES
    )


def _open(path: Path) -> sqlite3.Connection:
    db = open_store(path, _connect, "The settings database (people's settings; their source photos are kept)")
    prune_broken(path, keep=KEPT_BROKEN_COPIES)
    return db


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA secure_delete=ON")  # /forget overwrites what it deletes
        migrate(db, path, MIGRATIONS)
        db.execute("PRAGMA quick_check").fetchone()
    except BaseException:
        db.close()
        raise
    db.isolation_level = "DEFERRED"  # back to implicit transactions (a plain BEGIN): ``with db:`` commits each write
    return db
