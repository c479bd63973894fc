"""Source photos on disk, in one SQLite file of the data dir: re-style buttons keep working after a restart.

SQLite (from the standard library) gives what a photo store on disk needs without a server: every ``put`` is
one transaction, so a crash or a kill mid-write leaves the photo either wholly there or not at all; several
processes may open the same file; and bounding by items and bytes is a query. Times are wall-clock seconds,
since they must mean the same after a restart.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from bot.cache import Clock, new_key

logger = logging.getLogger(__name__)

FILE_NAME = "sources.sqlite3"
BUSY_TIMEOUT_SECONDS = 10.0  # another process (an old `animebot serve` still stopping) may hold the write lock
PRIVATE_DIR_MODE = 0o700  # people's photos: readable by the bot's user only
PRIVATE_FILE_MODE = 0o600

SCHEMA = """
CREATE TABLE IF NOT EXISTS photos (
    key    TEXT PRIMARY KEY,
    image  BLOB NOT NULL,
    size   INTEGER NOT NULL,
    stored REAL NOT NULL,    -- wall-clock seconds when put
    used   INTEGER NOT NULL  -- recency rank: the highest was put or read last
);
CREATE INDEX IF NOT EXISTS photos_by_use ON photos (used);
CREATE INDEX IF NOT EXISTS photos_by_age ON photos (stored);
"""


class DiskSourceCache:
    """A bounded time-to-live, least-recently-used store of photo bytes in a SQLite file; a ``SourceStore``.

    Bounded three ways, like ``SourceCache``: ``max_items`` photos, ``max_bytes`` bytes in all (when given) and
    ``ttl`` seconds per photo; the least recently used photo goes first when full. A photo larger than the whole
    byte budget is not kept (its key then reads as expired).

    Args:
        path: the SQLite file (its folder is made, private to this user, when missing).
        max_items: most photos kept at once (>= 1).
        ttl: seconds a photo is kept after it was stored.
        max_bytes: most bytes kept in all, or ``None`` for no byte bound.
        clock: wall-clock seconds; injectable so tests can move time.
    """

    def __init__(
        self, path: Path, max_items: int, ttl: float, max_bytes: int | None = None, clock: Clock = time.time
    ) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self.path = path
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        # One connection shared by the event loop's thread and the threads a caller may hand work to.
        self._lock = threading.Lock()
        self._db = _open(path)

    @classmethod
    def in_folder(
        cls, folder: Path, max_items: int, ttl: float, max_bytes: int | None = None, clock: Clock = time.time
    ) -> DiskSourceCache:
        """The store of the data dir ``folder`` (file ``sources.sqlite3``)."""
        return cls(folder / FILE_NAME, max_items, ttl, max_bytes, clock)

    def put(self, image: bytes) -> str:
        """Keep ``image``; returns its key (12 ASCII characters: letters, digits, ``-`` and ``_``)."""
        key = new_key()
        if self.max_bytes is not None and len(image) > self.max_bytes:
            return key
        with self._lock, self._db:
            self._db.execute("DELETE FROM photos WHERE stored <= ?", (self._oldest_kept(),))
            self._db.execute(
                "INSERT INTO photos (key, image, size, stored, used) "
                "VALUES (?, ?, ?, ?, (SELECT coalesce(max(used), 0) + 1 FROM photos))",
                (key, image, len(image), self._clock()),
            )
            self._evict_beyond_bounds()
        return key

    def get(self, key: str) -> bytes | None:
        """The photo stored under ``key``, or ``None`` when it expired, was pushed out, or never existed."""
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT image FROM photos WHERE key = ? AND stored > ?", (key, self._oldest_kept())
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE photos SET used = (SELECT max(used) + 1 FROM photos) WHERE key = ?", (key,)
            )
        return bytes(row[0])

    def delete(self, key: str) -> None:
        """Forget the photo under ``key`` now (nothing happens when there is none)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM photos WHERE key = ?", (key,))

    def __len__(self) -> int:
        """Photos held now (expired ones not counted)."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT count(*) FROM photos WHERE stored > ?", (self._oldest_kept(),)
            ).fetchone()
        return int(count)

    @property
    def held_bytes(self) -> int:
        """Bytes held now (expired photos not counted)."""
        with self._lock:
            (total,) = self._db.execute(
                "SELECT coalesce(sum(size), 0) FROM photos WHERE stored > ?", (self._oldest_kept(),)
            ).fetchone()
        return int(total)

    def close(self) -> None:
        """Close the file; the photos stay for the next start."""
        with self._lock:
            self._db.close()

    def _oldest_kept(self) -> float:
        """Photos stored at or before this moment have expired."""
        return self._clock() - self.ttl

    def _evict_beyond_bounds(self) -> None:
        """Delete the least recently used photos until both bounds hold (inside the caller's transaction)."""
        count, total = self._db.execute("SELECT count(*), coalesce(sum(size), 0) FROM photos").fetchone()
        budget = self.max_bytes if self.max_bytes is not None else float("inf")
        if count <= self.max_items and total <= budget:
            return
        evicted: list[tuple[str]] = []
        for key, size in self._db.execute("SELECT key, size FROM photos ORDER BY used").fetchall():
            if count <= self.max_items and total <= budget:
                break
            evicted.append((key,))
            count, total = count - 1, total - size
        self._db.executemany("DELETE FROM photos WHERE key = ?", evicted)


def _open(path: Path) -> sqlite3.Connection:
    """Open (or create) the store's file, private to this user; a file that is not a usable store is set aside."""
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    # Made here rather than by SQLite so its mode is ours; SQLite gives its -wal and -shm files the same mode.
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE))
    try:
        return _connect(path)
    except sqlite3.DatabaseError:
        broken = path.with_name(path.name + ".broken")
        logger.warning("The source photo store %s could not be read; moved it to %s and started afresh", path, broken)
        os.replace(path, broken)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE))
        return _connect(path)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
    try:
        # WAL: a reader never waits for a writer, and a write interrupted by a crash is rolled back at next open.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA secure_delete=ON")  # a forgotten photo's bytes are overwritten, not left in free pages
        db.executescript(SCHEMA)
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db
