"""A small store's SQLite file with its schema versions: what the budget, ban and audit stores share.

Each store is one file in the data dir, opened the way ``bot.settings_store`` opens its own (WAL, private to this
user, a broken file set aside, a newer schema refused; see ``bot.sqlite_files``), migrated by a tuple of
statements (``PRAGMA user_version``), and used through its own ``SqliteThread``, so the event loop never waits.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from bot.sqlite_files import open_store, prune_broken, schema_too_new
from bot.sqlite_thread import SqliteThread

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 10.0
KEPT_BROKEN_COPIES = 3


def store_thread(path: Path, migrations: tuple[str, ...], what: str, name: str) -> SqliteThread:
    """The thread owning ``path``'s connection, opened and brought up to ``migrations`` (``what``: the store's
    words for the operator's messages)."""

    def opened() -> sqlite3.Connection:
        db = open_store(path, lambda file: _connect(file, migrations), what)
        prune_broken(path, keep=KEPT_BROKEN_COPIES)
        return db

    return SqliteThread(opened, name=name)


def _connect(path: Path, migrations: tuple[str, ...]) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        migrate(db, path, migrations)
        db.execute("PRAGMA quick_check").fetchone()
    except BaseException:
        db.close()
        raise
    db.isolation_level = "DEFERRED"  # implicit transactions again: ``with db:`` commits each write
    return db


def migrate(db: sqlite3.Connection, path: Path, migrations: tuple[str, ...]) -> None:
    """Bring ``path``'s file up to the newest of ``migrations``, one version per write transaction (the version is
    read inside it: two processes starting at once don't both migrate)."""
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version > len(migrations):
                raise schema_too_new(path, version, len(migrations))
            if version == len(migrations):
                db.execute("COMMIT")
                return
            for statement in filter(str.strip, migrations[version].split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        logger.info("%s: schema version %d", path.name, version + 1)
