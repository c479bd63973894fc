"""The audit log in Redis, shared by every front end: a capped list of admin actions, newest first."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

from redis.asyncio import Redis

from bot.audit import MAX_DETAIL_CHARS, MAX_ENTRIES, AdminAction, AuditEntry
from bot.cluster.keys import Keys

Clock = Callable[[], float]


class RedisAuditLog:
    """``AuditLog`` in Redis (``<prefix>:audit``), the newest ``max_entries`` kept (LPUSH and LTRIM in one
    transaction)."""

    def __init__(
        self, client: Redis, keys: Keys | None = None, clock: Clock = time.time, max_entries: int = MAX_ENTRIES
    ) -> None:
        self.keys = keys or Keys()
        self.max_entries = max_entries
        self._client = client
        self._clock = clock

    @property
    def _log(self) -> str:
        return f"{self.keys.prefix}:audit"

    async def record(self, admin: str, action: AdminAction, target: str, detail: str = "") -> None:
        entry = {"admin": admin, "action": action.value, "target": target, "at": self._clock()}
        entry["detail"] = detail[:MAX_DETAIL_CHARS]
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.lpush(self._log, json.dumps(entry))
            pipe.ltrim(self._log, 0, self.max_entries - 1)
            await pipe.execute()

    async def recent(self, limit: int) -> list[AuditEntry]:
        if limit < 1:
            return []
        rows = cast(list[bytes], await self._client.lrange(self._log, 0, limit - 1))
        return [_entry(json.loads(row)) for row in rows]

    async def ready(self) -> None:
        """Nothing to open: the queue's client connects when first used."""

    async def close(self) -> None:
        """Nothing to close: the client is the queue's."""


def _entry(fields: dict[str, object]) -> AuditEntry:
    at = fields.get("at")
    return AuditEntry(
        str(fields.get("admin", "")),
        AdminAction(str(fields.get("action"))),
        str(fields.get("target", "")),
        datetime.fromtimestamp(float(at) if isinstance(at, int | float) else 0.0, UTC),
        str(fields.get("detail", "")),
    )
