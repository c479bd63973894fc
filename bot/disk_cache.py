"""Source photos on disk, in one SQLite file of the data dir: re-style buttons keep working after a restart.

SQLite (from the standard library) gives what a photo store on disk needs without a server: every ``put`` is
one transaction, so a crash or a kill mid-write leaves the photo either wholly there or not at all; several
processes may open the same file; and bounding by items and bytes, in all and per person, is a query. Times are
wall-clock seconds, since they must mean the same after a restart. Expired photos are deleted on every read and
write and by a sweep every ``SWEEP_SECONDS``, so they leave the disk on time even when nobody uses the bot.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from bot.cache import Clock, SourceBounds, SourceUsage, new_key, readable_by
from bot.sqlite_files import broken_copies, delete_broken, open_store, prune_broken, schema_too_new
from bot.sqlite_thread import SqliteThread

logger = logging.getLogger(__name__)

FILE_NAME = "sources.sqlite3"
BUSY_TIMEOUT_SECONDS = 10.0  # another process (an old `animebot serve` still stopping) may hold the write lock
SWEEP_SECONDS = 60.0  # most seconds an expired photo stays on disk when nothing else happens
SCHEMA_VERSION = 1  # PRAGMA user_version: 1 = photos have an owner
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
    used   INTEGER NOT NULL, -- recency rank: the highest was put or read last
    owner  TEXT              -- whose photo (a person's or web client's key); NULL: kept before owners were
);
CREATE INDEX IF NOT EXISTS photos_by_use ON photos (used);
-- Holds the size too, so counting bytes reads the index, not every photo (a 20 MB one spans 5000 pages).
CREATE INDEX IF NOT EXISTS photos_by_age_and_size ON photos (stored, size);
DROP INDEX IF EXISTS photos_by_age;
"""
# Version 0 -> 1: photos kept before owners were recorded stay readable by their key, as before, until they expire.
ADD_OWNERS = "ALTER TABLE photos ADD COLUMN owner TEXT"
OWNER_INDEX = "CREATE INDEX IF NOT EXISTS photos_by_owner ON photos (owner, used)"


class DiskSourceCache:
    """A bounded time-to-live, least-recently-used store of photo bytes in a SQLite file; a ``SourceStore``.

    Bounded like ``SourceCache``: ``max_items`` photos and ``max_bytes`` bytes in all (when given), as much per
    person as ``per_person_items`` and ``per_person_bytes`` allow, and ``ttl`` seconds per photo; the least recently
    used photo of the person, then of everyone, goes first when full. A photo larger than a whole byte budget is
    not kept (its key then reads as expired). Copies of a broken file set aside are deleted after ``ttl`` (the
    photos in them have expired by then) and by ``forget``. The file is opened, read and written in the store's
    own thread (``SqliteThread``), so a 20 MB write never holds up the event loop.

    Args:
        path: the SQLite file (its folder is made, private to this user, when missing).
        max_items: most photos kept at once (>= 1).
        ttl: seconds a photo is kept after it was stored.
        max_bytes: most bytes kept in all, or ``None`` for no byte bound.
        clock: wall-clock seconds; injectable so tests can move time.
        per_person_items: most photos of one person, or ``None``.
        per_person_bytes: most bytes of one person, or ``None``.
        sweep_seconds: how often expired photos are deleted when nothing else happens.
    """

    def __init__(
        self,
        path: Path,
        max_items: int,
        ttl: float,
        max_bytes: int | None = None,
        clock: Clock = time.time,
        per_person_items: int | None = None,
        per_person_bytes: int | None = None,
        sweep_seconds: float = SWEEP_SECONDS,
    ) -> None:
        self.bounds = SourceBounds(max_items, max_bytes, per_person_items, per_person_bytes)
        self.path = path
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._usage = SourceUsage(0, 0)  # as the worker thread last counted it
        self._db = SqliteThread(lambda: self._swept(open_store(path, _connect, "The source photo store")), "sources-db")
        self._db.every(sweep_seconds, self._swept)

    @classmethod
    def in_folder(
        cls,
        folder: Path,
        max_items: int,
        ttl: float,
        max_bytes: int | None = None,
        clock: Clock = time.time,
        per_person_items: int | None = None,
        per_person_bytes: int | None = None,
    ) -> DiskSourceCache:
        """The store of the data dir ``folder`` (file ``sources.sqlite3``)."""
        return cls(folder / FILE_NAME, max_items, ttl, max_bytes, clock, per_person_items, per_person_bytes)

    async def put(self, image: bytes, owner: str | None = None) -> str:
        """Keep ``image`` as ``owner``'s; returns its key (12 ASCII characters: letters, digits, ``-`` and ``_``)."""
        key = new_key()
        if self.bounds.refuses(len(image), owner):
            return key
        await self._db.run(lambda db: self._put(db, key, image, owner))
        return key

    async def get(self, key: str, owner: str | None = None) -> bytes | None:
        """The photo stored under ``key``, or ``None`` when it expired, was pushed out, never existed, or (with
        ``owner``) is someone else's."""
        return await self._db.run(lambda db: self._get(db, key, owner))

    async def forget(self, owner: str) -> int:
        """Delete every photo kept as ``owner``'s, and every copy of a broken file set aside (SQLite can't be
        trusted to find, let alone overwrite, a person's rows in a corrupt file); how many photos."""
        return await self._db.run(lambda db: self._forget(db, owner))

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

    def _put(self, db: sqlite3.Connection, key: str, image: bytes, owner: str | None) -> None:
        with db:
            db.execute("DELETE FROM photos WHERE stored <= ?", (self._oldest_kept(),))
            ((rowid,),) = db.execute(
                "INSERT INTO photos (key, image, size, stored, used, owner) "
                "VALUES (?, zeroblob(?), ?, ?, (SELECT coalesce(max(used), 0) + 1 FROM photos), ?) RETURNING rowid",
                (key, len(image), len(image), self._clock(), owner),
            ).fetchall()
            _write_blob(db, rowid, image)
            if owner is not None:
                self._evict_beyond_bounds(db, owner)
            self._evict_beyond_bounds(db)
        self._counted(db)

    def _get(self, db: sqlite3.Connection, key: str, asker: str | None) -> bytes | None:
        with db:
            db.execute("DELETE FROM photos WHERE stored <= ?", (self._oldest_kept(),))
        with db:
            db.execute("BEGIN")  # the row found and the bytes read are of one snapshot (a rowid can be reused)
            row = db.execute("SELECT rowid, owner FROM photos WHERE key = ?", (key,)).fetchone()
            image = None if row is None or not readable_by(row[1], asker) else _read_blob(db, row[0])
        if image is not None:
            with db:
                db.execute("UPDATE photos SET used = (SELECT max(used) + 1 FROM photos) WHERE key = ?", (key,))
        self._counted(db)
        return image

    def _delete(self, db: sqlite3.Connection, key: str) -> None:
        with db:
            db.execute("DELETE FROM photos WHERE key = ?", (key,))
        self._counted(db)

    def _forget(self, db: sqlite3.Connection, owner: str) -> int:
        with db:
            deleted = db.execute("DELETE FROM photos WHERE owner = ?", (owner,)).rowcount
        delete_broken(broken_copies(self.path))
        self._counted(db)
        return int(deleted)

    def _swept(self, db: sqlite3.Connection) -> sqlite3.Connection:
        """Delete expired photos, and copies set aside longer ago than a photo lives; returns ``db``."""
        with db:
            db.execute("DELETE FROM photos WHERE stored <= ?", (self._oldest_kept(),))
        prune_broken(self.path, max_age=self.ttl)
        return self._counted(db)

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

    def _evict_beyond_bounds(self, db: sqlite3.Connection, owner: str | None = None) -> None:
        """Delete the least recently used photos, of ``owner`` when given, else of everyone, until the bounds of
        that kind hold (inside the caller's transaction)."""
        bounds = self.bounds
        items, max_bytes = (
            (bounds.items, bounds.total_bytes) if owner is None else (bounds.per_person_items, bounds.per_person_bytes)
        )
        which, parameters = ("owner = ?", (owner,)) if owner is not None else ("1", ())
        count, total = db.execute(
            f"SELECT count(*), coalesce(sum(size), 0) FROM photos WHERE {which}", parameters
        ).fetchone()
        most = items if items is not None else float("inf")
        budget = max_bytes if max_bytes is not None else float("inf")
        if count <= most and total <= budget:
            return
        evicted: list[tuple[str]] = []
        for key, size in db.execute(f"SELECT key, size FROM photos WHERE {which} ORDER BY used", parameters).fetchall():
            if count <= most and total <= budget:
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


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        # WAL: a reader never waits for a writer, and a write interrupted by a crash is rolled back at next open.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA secure_delete=ON")  # a forgotten photo's bytes are overwritten, not left in free pages
        db.executescript(SCHEMA)
        _migrate(db, path)
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring a file of an older version up to ``SCHEMA_VERSION`` in one write transaction (so two processes
    starting at once don't both migrate); a newer one raises ``SchemaTooNew``."""
    db.execute("BEGIN IMMEDIATE")
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise schema_too_new(path, version, SCHEMA_VERSION)
        columns = {row[1] for row in db.execute("PRAGMA table_info(photos)")}
        if "owner" not in columns:
            db.execute(ADD_OWNERS)
        db.execute(OWNER_INDEX)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()
    except BaseException:
        db.rollback()
        raise
