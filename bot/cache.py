"""Source photos kept for a while, so a button press can re-style a reply without a new upload.

``SourceStore`` is what the service uses; ``SourceCache`` keeps the photos in memory (gone at a restart), the
embedded default ``bot.disk_cache.DiskSourceCache`` keeps them on disk in the data dir, and
``bot.cluster.shared.RedisSources`` in Redis, for every front end at once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cachetools import TTLCache

Clock = Callable[[], float]

KEY_BYTES = 9  # 72 random bits -> 12 URL-safe characters, small enough for Telegram's 64-byte callback data


def new_key() -> str:
    """A fresh random source key: 12 ASCII characters (letters, digits, ``-`` and ``_``)."""
    return secrets.token_urlsafe(KEY_BYTES)


@dataclass(frozen=True)
class SourceUsage:
    """How many source photos a store holds, and their bytes (expired ones not counted)."""

    photos: int
    total_bytes: int


class SourceStore(Protocol):
    """Photo bytes under short random keys, bounded in items, bytes and time.

    Every method either is quick or awaits; none blocks the event loop (a store on disk works in its own thread).
    """

    async def put(self, image: bytes) -> str:
        """Keep ``image``; returns its key (at most 16 ASCII characters: letters, digits, ``-`` and ``_``)."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The photo stored under ``key``, or ``None`` when it expired, was pushed out, or never existed."""
        ...

    async def delete(self, key: str) -> None:
        """Forget the photo under ``key`` now (nothing happens when there is none)."""
        ...

    def usage(self) -> SourceUsage | None:
        """What is held, as far as this store knows without any I/O (for /stats and metrics, read on the event
        loop); ``None`` when it can't tell without asking a server."""
        ...


class SourceCache:
    """A bounded time-to-live, least-recently-used store of photo bytes under short random keys.

    Bounded three ways: ``max_items`` photos, ``max_bytes`` bytes in all (when given) and ``ttl`` seconds per
    photo; the least recently used photo goes first when full. Nothing is written to disk. A photo larger than the
    whole byte budget is not kept (its key then reads as expired).

    Args:
        max_items: most photos kept at once (>= 1).
        ttl: seconds a photo is kept after it was stored.
        max_bytes: most bytes kept in all, or ``None`` for no byte bound.
        clock: monotonic seconds; injectable so tests can move time.
    """

    def __init__(self, max_items: int, ttl: float, max_bytes: int | None = None, clock: Clock = time.monotonic) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self.max_items = max_items
        self.max_bytes = max_bytes
        budget = max_bytes if max_bytes is not None else max_items
        size: Callable[[bytes], int] | None = len if max_bytes is not None else None
        self._photos: TTLCache[str, bytes] = TTLCache(budget, ttl, timer=clock, getsizeof=size)

    async def put(self, image: bytes) -> str:
        """Keep ``image``; returns its key (12 ASCII characters: letters, digits, ``-`` and ``_``)."""
        key = new_key()
        if self.max_bytes is not None and len(image) > self.max_bytes:
            return key
        self._photos[key] = image
        while len(self._photos) > self.max_items:
            self._photos.popitem()
        return key

    async def get(self, key: str) -> bytes | None:
        """The photo stored under ``key``, or ``None`` when it expired, was pushed out, or never existed."""
        return self._photos.get(key)

    async def delete(self, key: str) -> None:
        """Forget the photo under ``key`` now (nothing happens when there is none)."""
        self._photos.pop(key, None)

    def usage(self) -> SourceUsage:
        """Photos and bytes held now (expired photos dropped first)."""
        self._photos.expire()
        return SourceUsage(len(self._photos), sum(len(image) for image in self._photos.values()))
