"""Source photos kept for a while, so a button press can re-style a reply without a new upload.

``SourceStore`` is what the service uses; ``SourceCache`` keeps the photos in memory (gone at a restart), the
embedded default ``bot.disk_cache.DiskSourceCache`` keeps them on disk in the data dir, and
``bot.cluster.shared.RedisSources`` in Redis, for every front end at once.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.config import Settings

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


@dataclass(frozen=True)
class SourceBounds:
    """How much a source store keeps: in all (``items``, ``total_bytes``) and of one person
    (``per_person_items``, ``per_person_bytes``); ``None`` is no bound of that kind. A photo kept as no one's
    counts only towards the totals."""

    items: int
    total_bytes: int | None = None
    per_person_items: int | None = None
    per_person_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.items < 1:
            raise ValueError(f"max_items must be at least 1, got {self.items}")

    @classmethod
    def from_settings(cls, settings: Settings) -> SourceBounds:
        """The ``ANIMEBOT_SOURCE_CACHE_*`` bounds."""
        return cls(
            settings.source_cache_items,
            settings.source_cache_bytes,
            settings.source_cache_per_person_items,
            settings.source_cache_per_person_bytes,
        )

    def refuses(self, size: int, owner: str | None) -> bool:
        """Whether a photo of ``size`` bytes is too big to keep at all (larger than a whole byte budget)."""
        too_big_for_all = self.total_bytes is not None and size > self.total_bytes
        too_big_for_one = owner is not None and self.per_person_bytes is not None and size > self.per_person_bytes
        return too_big_for_all or too_big_for_one


def readable_by(owner: str | None, asker: str | None) -> bool:
    """Whether a photo kept as ``owner``'s may be read by ``asker``.

    ``asker`` ``None`` is the service itself (no check); a photo of no one (kept before owners were recorded)
    is anyone's who holds its key, until it expires.
    """
    return asker is None or owner is None or owner == asker


class SourceStore(Protocol):
    """Photo bytes under short random keys, each with the person it belongs to; bounded in items, bytes and time,
    in all and per person.

    Every method either is quick or awaits; none blocks the event loop (a store on disk works in its own thread).
    """

    async def put(self, image: bytes, owner: str | None = None) -> str:
        """Keep ``image`` as ``owner``'s; returns its key (at most 16 ASCII characters: letters, digits, ``-``
        and ``_``). The least recently used photos of ``owner``, then of everyone, make room."""
        ...

    async def get(self, key: str, owner: str | None = None) -> bytes | None:
        """The photo stored under ``key``, or ``None`` when it expired, was pushed out, never existed, or (with
        ``owner``) is someone else's: a stranger can't tell a key that exists from one that doesn't."""
        ...

    async def delete(self, key: str) -> None:
        """Forget the photo under ``key`` now (nothing happens when there is none)."""
        ...

    async def forget(self, owner: str) -> int:
        """Delete every photo kept as ``owner``'s (and copies the store set aside); how many photos."""
        ...

    def usage(self) -> SourceUsage | None:
        """What is held, as far as this store knows without any I/O (for /stats and metrics, read on the event
        loop); ``None`` when it can't tell without asking a server."""
        ...


@dataclass
class _Kept:
    image: bytes
    owner: str | None
    stored: float


class SourceCache:
    """A bounded time-to-live, least-recently-used store of photo bytes under short random keys, in memory.

    Bounded like every ``SourceStore``: ``max_items`` photos and ``max_bytes`` bytes in all (when given), as much
    per person as ``per_person_items`` and ``per_person_bytes`` allow, and ``ttl`` seconds per photo; the least
    recently used photo of the person, then of everyone, goes first when full. Nothing is written to disk. A photo
    larger than a whole byte budget is not kept (its key then reads as expired).

    Args:
        max_items: most photos kept at once (>= 1).
        ttl: seconds a photo is kept after it was stored.
        max_bytes: most bytes kept in all, or ``None`` for no byte bound.
        clock: monotonic seconds; injectable so tests can move time.
        per_person_items: most photos of one person, or ``None``.
        per_person_bytes: most bytes of one person, or ``None``.
    """

    def __init__(
        self,
        max_items: int,
        ttl: float,
        max_bytes: int | None = None,
        clock: Clock = time.monotonic,
        per_person_items: int | None = None,
        per_person_bytes: int | None = None,
    ) -> None:
        self.bounds = SourceBounds(max_items, max_bytes, per_person_items, per_person_bytes)
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._photos: OrderedDict[str, _Kept] = OrderedDict()  # least recently used first

    async def put(self, image: bytes, owner: str | None = None) -> str:
        """Keep ``image`` as ``owner``'s; returns its key (12 ASCII characters: letters, digits, ``-`` and ``_``)."""
        self._expire()
        key = new_key()
        if self.bounds.refuses(len(image), owner):
            return key
        self._photos[key] = _Kept(image, owner, self._clock())
        if owner is not None:
            self._evict([k for k, kept in self._photos.items() if kept.owner == owner], per_person=True)
        self._evict(list(self._photos), per_person=False)
        return key

    async def get(self, key: str, owner: str | None = None) -> bytes | None:
        """The photo stored under ``key``, or ``None`` when it expired, was pushed out, never existed, or (with
        ``owner``) is someone else's."""
        self._expire()
        kept = self._photos.get(key)
        if kept is None or not readable_by(kept.owner, owner):
            return None
        self._photos.move_to_end(key)
        return kept.image

    async def delete(self, key: str) -> None:
        """Forget the photo under ``key`` now (nothing happens when there is none)."""
        self._photos.pop(key, None)

    async def forget(self, owner: str) -> int:
        """Delete every photo kept as ``owner``'s; how many."""
        keys = [key for key, kept in self._photos.items() if kept.owner == owner]
        for key in keys:
            del self._photos[key]
        return len(keys)

    def usage(self) -> SourceUsage:
        """Photos and bytes held now (expired photos dropped first)."""
        self._expire()
        return SourceUsage(len(self._photos), sum(len(kept.image) for kept in self._photos.values()))

    def _expire(self) -> None:
        oldest_kept = self._clock() - self.ttl
        for key in [key for key, kept in self._photos.items() if kept.stored <= oldest_kept]:
            del self._photos[key]

    def _evict(self, keys: list[str], per_person: bool) -> None:
        """Delete the least recently used of ``keys`` (oldest first) until their bound holds."""
        items, budget = (
            (self.bounds.per_person_items, self.bounds.per_person_bytes)
            if per_person
            else (self.bounds.items, self.bounds.total_bytes)
        )
        count, total = len(keys), sum(len(self._photos[key].image) for key in keys)
        for key in keys:
            if (items is None or count <= items) and (budget is None or total <= budget):
                return
            count, total = count - 1, total - len(self._photos.pop(key).image)
