"""What the bot remembers about a person or a chat: their settings, which source photos are theirs, their sticker
pack. ``SettingsStore`` is what front ends use; ``SqliteSettingsStore`` (a file in the data dir) is the embedded
default, ``bot.cluster.settings.RedisSettingsStore`` the one every front end shares with ``ANIMEBOT_REDIS_URL``.

Owners are namespaced strings like the queue's users: ``telegram:123`` (a person, or a private chat: Telegram
gives both the same id), ``telegram:-100456`` (a group), ``discord:789``, ``web:...``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from bot.sqlite_thread import SqliteThread

logger = logging.getLogger(__name__)

FILE_NAME = "settings.sqlite3"
BUSY_TIMEOUT_SECONDS = 10.0
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
FULL_STRENGTH = 100
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

    async def close(self) -> None:
        """Release the file or connection."""
        ...


class SqliteSettingsStore:
    """``SettingsStore`` in one SQLite file: WAL, schema versions in ``PRAGMA user_version``, private to this user.

    A file that is not a readable database (a disk error, a half-copied backup) is moved aside as
    ``settings.sqlite3.broken-<time>`` with a warning, and a fresh one started; nothing else in the data dir
    (the source photos) is touched. The file is opened, read and written in the store's own thread
    (``SqliteThread``): a busy lock or a ``secure_delete`` never holds up the event loop.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SqliteThread(lambda: _open(path), name="settings-db")

    @classmethod
    def in_folder(cls, folder: Path) -> SqliteSettingsStore:
        """The store of the data dir ``folder`` (file ``settings.sqlite3``)."""
        return cls(folder / FILE_NAME)

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
        await self._db.run(
            lambda db: _write(db, "INSERT OR IGNORE INTO owned_sources (owner, key) VALUES (?, ?)", owner, key)
        )

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
        return await self._db.run(lambda db: _forget(db, owner))

    async def holds_anything_about(self, owner: str) -> bool:
        return await self._db.run(lambda db: _holds_anything_about(db, owner))

    async def close(self) -> None:
        await self._db.close()


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
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE))
    try:
        return _connect(path)
    except sqlite3.DatabaseError as error:
        broken = path.with_name(f"{path.name}.broken-{int(time.time())}")
        logger.warning(
            "The settings database %s could not be read (%s); moved it to %s and started a new one. "
            "People's settings are back to the defaults; their source photos are kept.",
            path,
            error,
            broken,
        )
        os.replace(path, broken)
        for suffix in ("-wal", "-shm"):
            leftover = path.with_name(path.name + suffix)
            if leftover.exists():
                os.replace(leftover, broken.with_name(broken.name + suffix))
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE))
        return _connect(path)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA secure_delete=ON")  # /forget overwrites what it deletes
        _migrate(db)
        db.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError:
        db.close()
        raise
    db.isolation_level = "DEFERRED"  # back to implicit transactions (a plain BEGIN): ``with db:`` commits each write
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the file up to the newest schema, one version per transaction.

    The version is read inside each write transaction: two processes starting at once don't both migrate.
    """
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version > len(MIGRATIONS):
                newest = len(MIGRATIONS)
                raise sqlite3.DatabaseError(f"schema version {version} is newer than this bot knows ({newest})")
            if version == len(MIGRATIONS):
                db.execute("COMMIT")
                return
            for statement in filter(str.strip, MIGRATIONS[version].split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except sqlite3.DatabaseError:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        logger.info("settings database: schema version %d", version + 1)
