"""What front ends share besides the queue: source photos for the re-style buttons (the shared rate limit is
applied by the queue's admission script).

Kept in Redis, so a button pressed on any front end finds its photo, also after the front end that received it
restarted.
"""

from __future__ import annotations

import logging
import secrets
from importlib import resources
from typing import Any, cast

from redis.asyncio import Redis

from bot.cache import KEY_BYTES, SourceBounds, SourceUsage
from bot.cluster.connection import REDIS_DOWN, connect
from bot.cluster.frontend import RedisQueue
from bot.cluster.keys import Keys
from bot.config import Settings
from bot.supervision import Supervisor

logger = logging.getLogger(__name__)


NO_BOUND = -1  # what sources.lua reads as "no bound of this kind"


def _sources_script() -> str:
    folder = resources.files("bot.cluster") / "lua"
    return (folder / "common.lua").read_text() + "\n" + (folder / "sources.lua").read_text()


class RedisSources:
    """Source photos under short random keys, each kept ``ttl`` seconds with the person it belongs to, bounded in
    all and per person like the stores on one box (``bounds``; the least recently used of the person, then of
    everyone, goes first). Each step is one Lua script (``lua/sources.lua``), so front ends sharing the Redis keep
    one count of photos and bytes between them, exactly."""

    def __init__(self, client: Redis, ttl: float, keys: Keys | None = None, bounds: SourceBounds | None = None) -> None:
        self.ttl = ttl
        self.keys = keys or Keys()
        self.bounds = bounds or SourceBounds(items=256)
        self._client = client
        self._script = client.register_script(_sources_script())

    async def put(self, image: bytes, owner: str | None = None) -> str:
        """Keep ``image`` as ``owner``'s; its key (12 URL-safe characters). Unkept while Redis is away (the key then
        expires)."""
        key = secrets.token_urlsafe(KEY_BYTES)
        bounds = self.bounds
        limits = [
            bounds.items,
            *(
                NO_BOUND if b is None else b
                for b in (bounds.total_bytes, bounds.per_person_items, bounds.per_person_bytes)
            ),
        ]
        try:
            await self._run("put", key, owner or "", *limits, image)
        except REDIS_DOWN as error:
            logger.warning("could not keep a source photo: %s", error)
        return key

    async def get(self, key: str, owner: str | None = None) -> bytes | None:
        """The photo under ``key``, or ``None`` when it expired, never existed, is (with ``owner``) someone else's,
        or Redis is away."""
        try:
            image = cast(bytes | None, await self._run("get", key, owner or ""))
        except REDIS_DOWN as error:
            logger.warning("could not read a source photo: %s", error)
            return None
        return image

    async def delete(self, key: str) -> None:
        """Forget the photo under ``key`` now."""
        await self._run("delete", key)

    async def forget(self, owner: str) -> int:
        """Delete every photo kept as ``owner``'s; how many."""
        return int(await self._run("forget", owner))

    def usage(self) -> SourceUsage | None:
        """Unknown without asking Redis (counting would scan every front end's keys): ``None``."""
        return None

    @property
    def client(self) -> Redis:
        """The Redis client (shared with the queue, which closes it)."""
        return self._client

    async def _run(self, op: str, *args: bytes | str | int) -> Any:
        return await self._script(args=[self.keys.prefix, op, max(1, round(self.ttl * 1000)), *args])


DEAD_LETTER_BATCH = 1000


async def forget_dead_letters(client: Redis, owner: str, keys: Keys | None = None) -> int:
    """Delete the dead-letter records that name ``owner`` (written before records stopped naming people); how many.

    The stream is bounded (about 10,000 records), so reading it through is bounded too.
    """
    stream = (keys or Keys()).dead
    start, deleted = "-", 0
    while True:
        batch = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(stream, start, "+", DEAD_LETTER_BATCH))
        doomed = [entry for entry, fields in batch if fields.get(b"user") == owner.encode()]
        if doomed:
            deleted += int(await client.xdel(stream, *doomed))
        if len(batch) < DEAD_LETTER_BATCH:
            return deleted
        start = "(" + batch[-1][0].decode()


def front_end(settings: Settings, supervisor: Supervisor | None = None) -> tuple[RedisQueue, RedisSources]:
    """A front end's queue (its loops under ``supervisor``; its admission script also applies the shared rate
    limit) and source photos, on one Redis client (closed with the queue)."""
    if settings.redis_url is None:
        raise ValueError("a distributed front end needs settings.redis_url")
    client = connect(settings.redis_url.get_secret_value())
    return (
        RedisQueue(settings, client, supervisor=supervisor, rate_limit=settings.rate_limit_per_minute),
        RedisSources(client, settings.source_cache_ttl, bounds=SourceBounds.from_settings(settings)),
    )
