"""A store's SQLite file: opened so that only a file that really is not a database is set aside, and the copies
set aside kept for a bounded time.

A file is moved aside (``<name>.broken-<time>``, with its ``-wal`` and ``-shm``, so a stale log is never replayed
into the fresh file) only when SQLite says it is not a database or is corrupt. ``database is locked`` after the
busy timeout (another process holds the write lock) is retried, then raised as ``StoreUnavailable``: a live file
is never moved. A file whose schema is newer than this code (a downgrade) raises ``SchemaTooNew``: the service
stops with that sentence instead of starting empty.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700  # people's photos and settings: readable by the bot's user only
PRIVATE_FILE_MODE = 0o600
OPEN_ATTEMPTS = 3  # each waits the connection's busy timeout
NOT_A_DATABASE = frozenset({sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT})
BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
COMPANIONS = ("-wal", "-shm")  # SQLite's own files beside a database in WAL mode
BROKEN_INFIX = ".broken-"


class StoreFileError(RuntimeError):
    """A store's file can't be used now; ``str(error)`` is the plain sentence for the operator."""


class SchemaTooNew(StoreFileError):
    """The file was written by a newer version of the bot (the bot was downgraded)."""


class StoreUnavailable(StoreFileError):
    """Another process kept the file locked through every attempt to open it."""


def schema_too_new(path: Path, version: int, newest: int) -> SchemaTooNew:
    """The error for ``path`` at schema ``version`` when this code knows up to ``newest``."""
    return SchemaTooNew(
        f"{path} has schema version {version}, newer than this bot knows ({newest}): it was written by a newer "
        "animebot. Upgrade the bot again, or move the file away to start afresh."
    )


def open_store(path: Path, connect: Callable[[Path], sqlite3.Connection], what: str) -> sqlite3.Connection:
    """Open (or create) the store file ``path`` with ``connect``, private to this user.

    A file SQLite calls not a database, or corrupt, is set aside (see the module docstring) and a fresh one made;
    a locked one is tried ``OPEN_ATTEMPTS`` times, then ``StoreUnavailable``; ``SchemaTooNew`` passes through.
    """
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    create_private(path)
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            return connect(path)
        except sqlite3.DatabaseError as error:
            code = getattr(error, "sqlite_errorcode", None)
            if code in BUSY:
                logger.warning(
                    "%s %s is locked by another process (attempt %d of %d)", what, path, attempt, OPEN_ATTEMPTS
                )
                if attempt == OPEN_ATTEMPTS:
                    raise StoreUnavailable(
                        f"{path} stayed locked by another process; is an old animebot still running?"
                    ) from error
                continue
            if code not in NOT_A_DATABASE:
                raise
            broken = set_aside(path)
            logger.warning("%s %s could not be read (%s); moved it to %s and started afresh", what, path, error, broken)
            create_private(path)
            return connect(path)
    raise AssertionError("unreachable")  # the loop returns or raises


def create_private(path: Path) -> None:
    """Create ``path`` empty and private to this user, unless it exists (SQLite then gives its -wal and -shm files
    the same mode).

    Never an ``open`` and ``close`` of an existing file: closing any descriptor of a file drops every POSIX lock this
    process holds on it, so a store already open here would lose its locks, and another process closing the
    database would then think itself the last one and delete the -wal and -shm still in use here.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, PRIVATE_FILE_MODE))


def set_aside(path: Path) -> Path:
    """Move ``path`` and its ``-wal``/``-shm`` to ``<name>.broken-<time>``; the new name."""
    broken = path.with_name(f"{path.name}{BROKEN_INFIX}{time.time():.6f}")
    os.replace(path, broken)
    os.utime(broken)  # its age counts from now, for ``prune_broken``
    for suffix in COMPANIONS:
        leftover = path.with_name(path.name + suffix)
        if leftover.exists():
            os.replace(leftover, broken.with_name(broken.name + suffix))
    return broken


def broken_copies(path: Path) -> list[Path]:
    """The copies of ``path`` set aside (each with its companions), oldest first."""
    copies = [p for p in path.parent.glob(f"{path.name}.broken*") if not p.name.endswith(COMPANIONS)]
    return sorted(copies, key=lambda p: p.stat().st_mtime)


def delete_broken(copies: list[Path]) -> None:
    """Delete ``copies`` and their companions."""
    for copy in copies:
        for file in (copy, *(copy.with_name(copy.name + suffix) for suffix in COMPANIONS)):
            file.unlink(missing_ok=True)


def prune_broken(path: Path, keep: int | None = None, max_age: float | None = None) -> None:
    """Delete the copies of ``path`` set aside beyond the newest ``keep``, and those older than ``max_age`` s."""
    copies = broken_copies(path)
    doomed = copies[: max(0, len(copies) - keep)] if keep is not None else []
    if max_age is not None:
        oldest_kept = time.time() - max_age
        doomed += [copy for copy in copies if copy.stat().st_mtime < oldest_kept and copy not in doomed]
    delete_broken(doomed)
