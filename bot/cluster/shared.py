"""What front ends share besides the queue: source photos for the re-style buttons, and the rate limit.

Kept in Redis, so a button pressed on any front end finds its photo, also after the front end that received it
restarted, and a person can't multiply their allowance by reaching several front ends.
"""

from __future__ import annotations

import logging
import secrets
from typing import cast

from redis.asyncio import Redis

from bot.cache import KEY_BYTES, SourceUsage
from bot.cluster.connection import REDIS_DOWN, connect
from bot.cluster.frontend import RedisQueue
from bot.cluster.keys import Keys
from bot.config import Settings
from bot.supervision import Supervisor

logger = logging.getLogger(__name__)


class RedisSources:
    """Source photos under short random keys, each kept ``ttl`` seconds (Redis' memory is their bound)."""

    def __init__(self, client: Redis, ttl: float, keys: Keys | None = None) -> None:
        self.ttl = ttl
        self.keys = keys or Keys()
        self._client = client

    async def put(self, image: bytes) -> str:
        """Keep ``image``; its key (12 URL-safe characters). Unkept while Redis is away (the key then expires)."""
        key = secrets.token_urlsafe(KEY_BYTES)
        try:
            await self._client.set(self.keys.source(key), image, ex=max(1, round(self.ttl)))
        except REDIS_DOWN as error:
            logger.warning("could not keep a source photo: %s", error)
        return key

    async def get(self, key: str) -> bytes | None:
        """The photo under ``key``, or ``None`` when it expired, never existed, or Redis is away."""
        try:
            image = cast(bytes | None, await self._client.get(self.keys.source(key)))
        except REDIS_DOWN as error:
            logger.warning("could not read a source photo: %s", error)
            return None
        return image

    async def delete(self, key: str) -> None:
        """Forget the photo under ``key`` now."""
        await self._client.delete(self.keys.source(key))

    def usage(self) -> SourceUsage | None:
        """Unknown without asking Redis (counting would scan every front end's keys): ``None``."""
        return None

    @property
    def client(self) -> Redis:
        """The Redis client (shared with the queue, which closes it)."""
        return self._client


class RedisRateLimiter:
    """The shared rate limit's side in a front end: at most ``per_minute`` photos per person per minute, checked
    and counted by the queue's admission script (``RedisQueue(rate_limit=...)``), and the refusals counted here."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.refused = 0


def front_end(
    settings: Settings, supervisor: Supervisor | None = None
) -> tuple[RedisQueue, RedisSources, RedisRateLimiter]:
    """A front end's queue (its loops under ``supervisor``), source photos and rate limit, all on one Redis client
    (closed with the queue)."""
    if settings.redis_url is None:
        raise ValueError("a distributed front end needs settings.redis_url")
    client = connect(settings.redis_url.get_secret_value())
    return (
        RedisQueue(settings, client, supervisor=supervisor, rate_limit=settings.rate_limit_per_minute),
        RedisSources(client, settings.source_cache_ttl),
        RedisRateLimiter(settings.rate_limit_per_minute),
    )
