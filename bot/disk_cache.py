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
import time
from pathlib import Path

from bot.cache import Clock, SourceUsage, new_key
from bot.sqlite_thread import SqliteThread

logger = logging.getLogger(__name__)

FILE_NAME = "sources.sqlite3"
BUSY_TIMEOUT_SECONDS = 10.0  # another process (an old `animebot serve` still stopping) may hold the write lock
PRIVATE_DIR_MODE = 0o700  # people's photos: readable by the bot's user only
PRIVATE_FILE_MODE = 0o600
# Photos go in and out of the file in pieces this big. sqlite3 binds a parameter and builds a result while holding
# the GIL, which stalls the event loop's thread too (by tens of ms for 20 MB on a busy machine); its blob reads
# and writes, and the final ``bytes.join``, let the GIL go.
BLOB_CHUNK_BYTES = 1024 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS photos (
    key    TEXT PRIMARY KEY,
    image  BLOB NOT NULL,
    size   INTEGER NOT NULL,
    stored REAL NOT NULL,    -- wall-clock seconds when put
    used   INTEGER NOT NULL  -- recency rank: the highest was put or read last
);
CREATE INDEX IF NOT EXISTS photos_by_use ON photos (used);
-- Holds the size too, so counting bytes reads the index, not every photo (a 20 MB one spans 5000 pages).
CREATE INDEX IF NOT EXISTS photos_by_age_and_size ON photos (stored, size);
DROP INDEX IF EXISTS photos_by_age;
"""


class DiskSourceCache:
    """A bounded time-to-live, least-recently-used store of photo bytes in a SQLite file; a ``SourceStore``.

    Bounded three ways, like ``SourceCache``: ``max_items`` photos, ``max_bytes`` bytes in all (when given) and
    ``ttl`` seconds per photo; the least recently used photo goes first when full. A photo larger than the whole
    byte budget is not kept (its key then reads as expired). The file is opened, read and written in the store's
    own thread (``SqliteThread``), so a 20 MB write never holds up the event loop.

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
        self._usage = SourceUsage(0, 0)  # as the worker thread last counted it
        self._db = SqliteThread(lambda: self._counted(_open(path)), name="sources-db")

    @classmethod
    def in_folder(
        cls, folder: Path, max_items: int, ttl: float, max_bytes: int | None = None, clock: Clock = time.time
    ) -> DiskSourceCache:
        """The store of the data dir ``folder`` (file ``sources.sqlite3``)."""
        return cls(folder / FILE_NAME, max_items, ttl, max_bytes, clock)

    async def put(self, image: bytes) -> str:
        """Keep ``image``; returns its key (12 ASCII characters: letters, digits, ``-`` and ``_``)."""
        key = new_key()
        if self.max_bytes is not None and len(image) > self.max_bytes:
            return key
        await self._db.run(lambda db: self._put(db, key, image))
        return key

    async def get(self, key: str) -> bytes | None:
        """The photo stored under ``key``, or ``None`` when it expired, was pushed out, or never existed."""
        return await self._db.run(lambda db: self._get(db, key))

    async def delete(self, key: str) -> None:
        """Forget the photo under ``key`` now (nothing happens when there is none)."""
        await self._db.run(lambda db: self._delete(db, key))

    def usage(self) -> SourceUsage:
        """Photos and bytes held (expired ones not counted) as of this store's last call: other processes sharing
        the file, and time, may have changed them since; reading them needs no I/O."""
        return self._usage

    async def close(self) -> None:
        """Close the file; the photos stay for the next start."""
        await self._db.close()

    # What follows runs in the store's thread, one call at a time: each write is one transaction.

    def _put(self, db: sqlite3.Connection, key: str, image: bytes) -> None:
        with db:
            db.execute("DELETE FROM photos WHERE stored <= ?", (self._oldest_kept(),))
            ((rowid,),) = db.execute(
                "INSERT INTO photos (key, image, size, stored, used) "
                "VALUES (?, zeroblob(?), ?, ?, (SELECT coalesce(max(used), 0) + 1 FROM photos)) RETURNING rowid",
                (key, len(image), len(image), self._clock()),
            ).fetchall()
            _write_blob(db, rowid, image)
            self._evict_beyond_bounds(db)
        self._counted(db)

    def _get(self, db: sqlite3.Connection, key: str) -> bytes | None:
        with db:
            db.execute("BEGIN")  # the row found and the bytes read are of one snapshot (a rowid can be reused)
            row = db.execute(
                "SELECT rowid FROM photos WHERE key = ? AND stored > ?", (key, self._oldest_kept())
            ).fetchone()
            image = None if row is None else _read_blob(db, row[0])
        if image is not None:
            with db:
                db.execute("UPDATE photos SET used = (SELECT max(used) + 1 FROM photos) WHERE key = ?", (key,))
        self._counted(db)
        return image

    def _delete(self, db: sqlite3.Connection, key: str) -> None:
        with db:
            db.execute("DELETE FROM photos WHERE key = ?", (key,))
        self._counted(db)

    def _counted(self, db: sqlite3.Connection) -> sqlite3.Connection:
        """Count what is held now for ``usage`` (from the index alone: no photo is read); returns ``db``."""
        count, total = db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM photos WHERE stored > ?", (self._oldest_kept(),)
        ).fetchone()
        self._usage = SourceUsage(int(count), int(total))
        return db

    def _oldest_kept(self) -> float:
        """Photos stored at or before this moment have expired."""
        return self._clock() - self.ttl

    def _evict_beyond_bounds(self, db: sqlite3.Connection) -> None:
        """Delete the least recently used photos until both bounds hold (inside the caller's transaction)."""
        count, total = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM photos").fetchone()
        budget = self.max_bytes if self.max_bytes is not None else float("inf")
        if count <= self.max_items and total <= budget:
            return
        evicted: list[tuple[str]] = []
        for key, size in db.execute("SELECT key, size FROM photos ORDER BY used").fetchall():
            if count <= self.max_items and total <= budget:
                break
            evicted.append((key,))
            count, total = count - 1, total - size
        db.executemany("DELETE FROM photos WHERE key = ?", evicted)


def _write_blob(db: sqlite3.Connection, rowid: int, image: bytes) -> None:
    """Fill the zeroed photo at ``rowid`` with ``image``, a chunk at a time (see ``BLOB_CHUNK_BYTES``)."""
    view = memoryview(image)
    with db.blobopen("photos", "image", rowid) as blob:
        for start in range(0, len(view), BLOB_CHUNK_BYTES):
            blob.write(view[start : start + BLOB_CHUNK_BYTES])


def _read_blob(db: sqlite3.Connection, rowid: int) -> bytes:
    """The photo at ``rowid``, read a chunk at a time (see ``BLOB_CHUNK_BYTES``)."""
    with db.blobopen("photos", "image", rowid, readonly=True) as blob:
        return b"".join(iter(lambda: blob.read(BLOB_CHUNK_BYTES), b""))


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
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
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
