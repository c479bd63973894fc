"""Connecting to Redis, waiting politely when it is away, and the consumer group every host reads through."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MasterDownError, OutOfMemoryError, ReadOnlyError, ResponseError, TryAgainError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.cluster.keys import GROUP, Keys

logger = logging.getLogger(__name__)

# What a lost or restarting server raises (BusyLoadingError, while it reads its AOF back, is a ConnectionError),
# and what a server that is there but refuses writes for now raises: out of memory under maxmemory + noeviction,
# a replica after a failover (READONLY), a primary that lost its own primary or its cluster. Each one passes.
REDIS_DOWN = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    OSError,
    OutOfMemoryError,
    ReadOnlyError,
    MasterDownError,
    TryAgainError,
)
CONNECT_TIMEOUT_SECONDS = 2.0
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0


def connect(url: str) -> Redis:
    """A client for ``url`` (bytes in, bytes out: photos are binary). Connects lazily, on first use."""
    return Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_keepalive=True,
        health_check_interval=30,
        decode_responses=False,
    )


class Backoff:
    """Exponential waits between retries while Redis is unreachable: 0.1 s, 0.2 s, ... up to 5 s."""

    def __init__(self, first: float = BACKOFF_FIRST_SECONDS, cap: float = BACKOFF_MAX_SECONDS) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    async def wait(self) -> None:
        """Sleep the next wait."""
        await asyncio.sleep(min(self.cap, self.first * 2**self.failures))
        self.failures += 1

    def reset(self) -> None:
        """Redis answered: start again from the shortest wait."""
        self.failures = 0


async def ensure_group(client: Redis, keys: Keys) -> None:
    """Create the job stream and its consumer group unless they exist (a fresh or emptied server)."""
    try:
        await client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


# Refusals that pass with time but have no class of their own in redis-py: a failed snapshot (MISCONF), a primary
# without enough replicas, a script running too long, a blocking read ended because the server became a replica
# (UNBLOCKED, in a failover).
REFUSING_PREFIXES = ("MISCONF", "NOREPLICAS", "BUSY ", "UNBLOCKED")


def is_refusing(error: ResponseError) -> bool:
    """True for a refusal of ``REFUSING_PREFIXES``: wait and try again, as for ``REDIS_DOWN``."""
    return str(error).startswith(REFUSING_PREFIXES)


def must_wait(error: BaseException) -> bool:
    """True when Redis is away or refusing for now (``REDIS_DOWN``, ``is_refusing``): wait and try again."""
    return isinstance(error, REDIS_DOWN) or (isinstance(error, ResponseError) and is_refusing(error))


def is_missing_group(error: ResponseError) -> bool:
    """True for the error of a server that lost the consumer group (restarted without persistence)."""
    return "NOGROUP" in str(error)
