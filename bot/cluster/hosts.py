"""What each worker host says about itself with its heartbeat, for the admin page and the front ends' wait
estimates: its slots, how many are busy, jobs answered, its latest error and its recent mean service time.

A report is a hash ``<prefix>:host_report:<host>``, rewritten at every heartbeat and kept ``REPORT_TTL_SECONDS``
after the last one, so a host that died is still listed (as gone, with its last error) for a while.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from bot.cluster.keys import Keys
from bot.overview import WorkerState

REPORT_TTL_SECONDS = 600


@dataclass(frozen=True)
class HostReport:
    """One worker host's own numbers."""

    slots: int
    busy: int
    answered: int
    last_error: str
    mean_seconds: float | None
    reported_at: float  # wall-clock seconds


async def publish_report(client: Redis, keys: Keys, host: str, report: HostReport) -> None:
    """Write ``host``'s report (one round trip)."""
    fields: dict[FieldT, EncodableT] = {
        "slots": report.slots,
        "busy": report.busy,
        "answered": report.answered,
        "last_error": report.last_error,
        "mean_seconds": "" if report.mean_seconds is None else f"{report.mean_seconds:.3f}",
        "reported_at": f"{report.reported_at:.3f}",
    }
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(keys.host_report(host), mapping=fields)
        pipe.expire(keys.host_report(host), REPORT_TTL_SECONDS)
        await pipe.execute()


def _report(fields: dict[bytes, bytes]) -> HostReport:
    mean = fields.get(b"mean_seconds", b"").decode()
    return HostReport(
        slots=int(fields.get(b"slots", b"0")),
        busy=int(fields.get(b"busy", b"0")),
        answered=int(fields.get(b"answered", b"0")),
        last_error=fields.get(b"last_error", b"").decode(errors="replace"),
        mean_seconds=float(mean) if mean else None,
        reported_at=float(fields.get(b"reported_at", b"0")),
    )


async def read_reports(client: Redis, keys: Keys) -> dict[str, tuple[HostReport, bool]]:
    """Every host's report by host name, with whether the host is alive (in the live set) now."""
    alive = {member.decode() for member in cast(list[bytes], await client.zrange(keys.hosts, 0, -1))}
    names = alive | {
        key.decode().removeprefix(keys.host_report(""))
        async for key in client.scan_iter(match=keys.host_report("*"), count=100)
    }
    ordered = sorted(names)
    async with client.pipeline(transaction=False) as pipe:
        for name in ordered:
            pipe.hgetall(keys.host_report(name))
        rows = cast(list[dict[bytes, bytes]], await pipe.execute())
    return {name: (_report(fields), name in alive) for name, fields in zip(ordered, rows, strict=True) if fields}


def host_states(reports: dict[str, tuple[HostReport, bool]], now: float | None = None) -> list[WorkerState]:
    """The reports as the admin page lists worker hosts, live ones first."""
    now = time.time() if now is None else now
    states = [
        WorkerState(
            name=name,
            alive=alive,
            slots=report.slots,
            busy=report.busy if alive else 0,
            jobs_done=report.answered,
            last_error=report.last_error,
            seen_seconds_ago=round(max(0.0, now - report.reported_at), 1),
        )
        for name, (report, alive) in reports.items()
    ]
    return sorted(states, key=lambda state: (not state.alive, state.name))


def mean_seconds(reports: dict[str, tuple[HostReport, bool]]) -> float | None:
    """The recent mean service time over live hosts, each weighted by its slots (None: no host knows one)."""
    known = [(report.mean_seconds, report.slots) for report, alive in reports.values() if alive and report.mean_seconds]
    weight = sum(slots for _, slots in known)
    return sum(mean * slots for mean, slots in known) / weight if weight else None
