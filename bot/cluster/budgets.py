"""Daily budgets in Redis, shared by every front end (``lua/budgets.lua``; a photo's charge is taken by
``lua/admit.lua`` with its admission). Days are the Redis server's UTC days, so front ends never disagree."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis

from bot.budgets import BudgetLine, Overdrawn, Scope
from bot.cluster.keys import Keys
from bot.cluster.scripts import budget_arguments


def _budgets_script() -> str:
    folder = resources.files("bot.cluster") / "lua"
    return (folder / "common.lua").read_text() + "\n" + (folder / "budgets.lua").read_text()


class RedisBudgetStore:
    """``BudgetStore`` in Redis: a sorted set per day and scope (member -> photo equivalents spent), expiring after
    two days; each step one script."""

    def __init__(self, client: Redis, keys: Keys | None = None) -> None:
        self.keys = keys or Keys()
        self._script = client.register_script(_budgets_script())

    async def spend(self, lines: Sequence[BudgetLine], cost: int) -> Overdrawn | None:
        short, left = await self._run("spend", cost, len(lines), *budget_arguments(lines))
        return None if int(short) == 0 else Overdrawn(lines[int(short) - 1], int(left))

    async def refund(self, lines: Sequence[BudgetLine], cost: int) -> None:
        await self._run("refund", cost, len(lines), *budget_arguments(lines))

    async def used(self, scope: Scope, key: str) -> int:
        return int(await self._run("used", scope.value, key))

    async def top(self, scope: Scope, limit: int) -> list[tuple[str, int]]:
        flat = await self._run("top", scope.value, limit)
        return [(flat[i].decode(), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]

    async def ready(self) -> None:
        """Nothing to open: the queue's client connects when first used."""

    async def close(self) -> None:
        """Nothing to close: the client is the queue's, which closes it."""

    async def _run(self, op: str, *args: str | int) -> Any:
        return await self._script(args=[self.keys.prefix, op, *args])
