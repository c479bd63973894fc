"""Bans in Redis, shared by every front end: a hash of banned person -> who banned them, when and why, and one
"told today" marker per banned person (expiring with the day)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

from redis.asyncio import Redis

from bot.bans import MAX_REASON_CHARS, Ban, BanList
from bot.budgets import SECONDS_PER_DAY, budget_day
from bot.cluster.connection import must_wait
from bot.cluster.keys import Keys

Clock = Callable[[], float]
logger = logging.getLogger(__name__)


class RedisBans:
    """``BanStore`` in Redis (``<prefix>:bans``, ``<prefix>:banned_told:<day>:<person>``)."""

    def __init__(self, client: Redis, keys: Keys | None = None, clock: Clock = time.time) -> None:
        self.keys = keys or Keys()
        self._client = client
        self._clock = clock

    @property
    def _bans(self) -> str:
        return f"{self.keys.prefix}:bans"

    async def ban(self, target: str, admin: str, reason: str = "") -> bool:
        record = json.dumps({"admin": admin, "since": self._clock(), "reason": reason[:MAX_REASON_CHARS]})
        return bool(await self._client.hsetnx(self._bans, target, record))

    async def unban(self, target: str) -> bool:
        return bool(await self._client.hdel(self._bans, target))

    async def is_banned(self, target: str) -> bool:
        """Whether ``target`` is banned; False while Redis is away or refusing (``must_wait``): the check runs on
        every update and upload, and the admission that follows it refuses them then with its own "busy" sentence,
        so an outage is answered plainly rather than failing every request."""
        try:
            return bool(await self._client.hexists(self._bans, target))
        except Exception as error:
            if not must_wait(error):
                raise
            logger.warning("could not read the bans from Redis: %s", error)
            return False

    async def should_tell(self, target: str) -> bool:
        day = budget_day(self._clock())
        told = f"{self.keys.prefix}:banned_told:{day}:{target}"
        try:
            return bool(await self._client.set(told, 1, nx=True, ex=SECONDS_PER_DAY))
        except Exception as error:
            if not must_wait(error):
                raise
            return False  # told at most once a day: when unsure, not told again

    async def list(self) -> BanList:
        records = cast(dict[bytes, bytes], await self._client.hgetall(self._bans))
        bans = [_ban(target.decode(), json.loads(record)) for target, record in records.items()]
        return sorted(bans, key=lambda ban: ban.since, reverse=True)

    async def ready(self) -> None:
        """Nothing to open: the queue's client connects when first used."""

    async def close(self) -> None:
        """Nothing to close: the client is the queue's."""


def _ban(target: str, record: dict[str, object]) -> Ban:
    since = record.get("since")
    return Ban(
        target,
        str(record.get("admin", "")),
        datetime.fromtimestamp(float(since) if isinstance(since, int | float) else 0.0, UTC),
        str(record.get("reason", "")),
    )
