"""``SettingsStore`` in Redis: every front end reads and writes the same people's settings.

One hash per owner (``animebot:settings:<owner>``), the set of their source photo keys (expiring with the
photos themselves) and their sticker pack name. Settings have no expiry: like the SQLite file, they stay
until the person says ``/forget``.
"""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from bot.cluster.keys import Keys
from bot.cluster.records import Fields
from bot.settings_store import FULL_STRENGTH, ChatSettings

UNSET = ""  # Redis hashes hold strings: an empty field means "the default"


class RedisSettingsStore:
    """Per-owner settings and records in Redis (see the module docstring for the keys).

    Args:
        client: the front end's Redis client (closed by its owner, not here).
        source_ttl: seconds a source photo lives; the owner's set of photo keys lives as long as the newest.
    """

    def __init__(self, client: Redis, source_ttl: float, keys: Keys | None = None) -> None:
        self._client = client
        self._source_ttl = max(1, round(source_ttl))
        self._prefix = (keys or Keys()).prefix

    def _settings_key(self, owner: str) -> str:
        return f"{self._prefix}:settings:{owner}"

    def _sources_key(self, owner: str) -> str:
        return f"{self._prefix}:owned:{owner}"

    def _sticker_key(self, owner: str) -> str:
        return f"{self._prefix}:sticker_set:{owner}"

    async def load(self, owner: str) -> ChatSettings:
        fields = cast(Fields, await self._client.hgetall(self._settings_key(owner)))
        if not fields:
            return ChatSettings()
        text = {name.decode(): value.decode() for name, value in fields.items()}
        return ChatSettings(
            style=text.get("style") or None,
            strength=int(text.get("strength") or FULL_STRENGTH),
            faces=text.get("faces", "1") != "0",
            language=text.get("language") or None,
        )

    async def save(self, owner: str, settings: ChatSettings) -> None:
        await self._client.hset(
            self._settings_key(owner),
            mapping={
                "style": settings.style or UNSET,
                "strength": str(settings.strength),
                "faces": "1" if settings.faces else "0",
                "language": settings.language or UNSET,
            },
        )

    async def own_source(self, owner: str, key: str) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.sadd(self._sources_key(owner), key)
            pipe.expire(self._sources_key(owner), self._source_ttl)
            await pipe.execute()

    async def sticker_set(self, owner: str) -> str | None:
        name = cast(bytes | None, await self._client.get(self._sticker_key(owner)))
        return None if name is None else name.decode()

    async def keep_sticker_set(self, owner: str, name: str) -> None:
        await self._client.set(self._sticker_key(owner), name)

    async def forget(self, owner: str) -> list[str]:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.smembers(self._sources_key(owner))
            pipe.delete(self._settings_key(owner), self._sources_key(owner), self._sticker_key(owner))
            members, _ = await pipe.execute()
        return sorted(member.decode() for member in members)

    async def holds_anything_about(self, owner: str) -> bool:
        found = await self._client.exists(self._settings_key(owner), self._sources_key(owner), self._sticker_key(owner))
        return bool(found)

    async def ready(self) -> None:
        """Nothing to open: Redis being away is the queue's to report."""

    async def close(self) -> None:
        """Nothing to release: the client belongs to the front end's queue."""
