"""The Lua scripts of ``lua/``, loaded once per client and called with typed arguments.

Each script is ``common.lua`` followed by its own file. redis-py runs them with EVALSHA and loads them again by
itself when a restarted server no longer knows them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from bot.budgets import BudgetLine, Charge
from bot.cluster.keys import GROUP, Keys

SCRIPT_NAMES = ("admit", "release", "take", "claim", "progress", "complete", "renew", "stats")


def _source(name: str) -> str:
    folder = resources.files("bot.cluster") / "lua"
    return (folder / "common.lua").read_text() + "\n" + (folder / f"{name}.lua").read_text()


@dataclass(frozen=True)
class Lease:
    """A job a worker host holds: its stream entry, its id, and which attempt this is (1-based, all hosts)."""

    entry: str
    job_id: str
    attempts: int


def _lease(row: list[bytes | int]) -> Lease:
    entry, job_id, attempts = row
    assert isinstance(entry, bytes) and isinstance(job_id, bytes)
    return Lease(entry.decode(), job_id.decode(), int(attempts))


def budget_arguments(lines: Sequence[BudgetLine]) -> list[str | int]:
    """Budgets as the scripts take them: scope, member, daily limit, for each."""
    return [item for line in lines for item in (line.scope.value, line.key, line.limit)]


class ClusterScripts:
    """Every atomic step of the distributed queue, as one method each."""

    def __init__(self, client: Redis, keys: Keys) -> None:
        self.keys = keys
        self._scripts: dict[str, AsyncScript] = {name: client.register_script(_source(name)) for name in SCRIPT_NAMES}

    async def admit(
        self,
        user: str,
        queue_size: int,
        per_user: int,
        job_id: str,
        fields: list[bytes | str],
        rate_limit: int = 0,
        rate_window: float = 60.0,
        place: str = "",
        place_ttl: float = 600.0,
        charge: Charge | None = None,
    ) -> tuple[str, int, int]:
        """Queue a job fairly unless the rate limit (``rate_limit`` jobs per ``rate_window`` seconds, 0: none), a
        daily budget of ``charge`` or a bound says no, and count it in the rate limit and the budgets, in one step:
        ``("ok", position, 0)``, ``("rate", wait_ms, 0)``, ``("budget", left, index)`` (not enough left in
        ``charge.lines[index]``), ``("busy", waiting, 0)`` or ``("person", waiting_of_this_person, 0)``. With
        ``place`` (a clip's id) the job takes or rides on that place, kept ``place_ttl`` seconds after its latest
        step (see ``lua/admit.lua``)."""
        window_ms, ttl_ms = int(rate_window * 1000), int(place_ttl * 1000)
        lines = () if charge is None else charge.lines
        reply = await self._run(
            "admit",
            user,
            queue_size,
            per_user,
            job_id,
            rate_limit,
            window_ms,
            place,
            ttl_ms,
            0 if charge is None else charge.cost,
            len(lines),
            *budget_arguments(lines),
            *fields,
        )
        verdict = reply[0].decode()
        if verdict == "budget":
            return verdict, int(reply[2]), int(reply[1]) - 1
        return verdict, int(reply[1]), 0

    async def release(self, user: str, place: str) -> None:
        """Give back a clip's place."""
        await self._run("release", user, place)

    async def take(self, consumer: str) -> Lease | None:
        """The next job in round-robin order over people, now leased to ``consumer``; ``None`` if none waits."""
        row = await self._run("take", GROUP, consumer)
        return _lease(row) if row else None

    async def claim(
        self, consumer: str, lease_seconds: float, count: int, max_attempts: int, ttl: float, message: str
    ) -> list[Lease]:
        """Take over up to ``count`` jobs whose lease expired; those past ``max_attempts`` are answered with
        ``message`` and dead-lettered instead."""
        rows = await self._run(
            "claim", GROUP, consumer, int(lease_seconds * 1000), count, max_attempts, _seconds(ttl), message
        )
        return [_lease(row) for row in rows]

    async def progress(self, consumer: str, lease: Lease, max_length: int, fields: dict[str, str]) -> bool:
        """Add a progress event to the job's stream; False (nothing added) when this host lost the lease."""
        pairs = [item for pair in fields.items() for item in pair]
        added = await self._run("progress", GROUP, consumer, lease.entry, lease.job_id, max_length, *pairs)
        return bool(added)

    async def complete(
        self, consumer: str, lease: Lease, ttl: float, outcome: str, fields: list[bytes | str], dead_reason: str = ""
    ) -> bool:
        """Answer the job; False when this host lost the lease or the job was answered already (the fence)."""
        done = await self._run(
            "complete", GROUP, consumer, lease.entry, lease.job_id, _seconds(ttl), outcome, dead_reason, *fields
        )
        return bool(done)

    async def renew(self, consumer: str, host_ttl: float, slots: int, entries: list[str]) -> set[str]:
        """Renew the leases of ``entries`` and the host's own liveness; returns the entries whose lease was lost."""
        lost = await self._run("renew", GROUP, consumer, _seconds(host_ttl), slots, *entries)
        return {entry.decode() for entry in lost}

    async def stats(self) -> tuple[int, int, int, dict[str, int]]:
        """(worker slots alive, hosts alive, jobs running, counters)."""
        alive, hosts, running, flat = await self._run("stats", GROUP)
        counters = {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return int(alive), int(hosts), int(running), counters

    async def _run(self, name: str, *args: bytes | str | int | float) -> Any:
        return await self._scripts[name](args=[self.keys.prefix, *args])


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))
