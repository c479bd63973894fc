"""Daily budgets: how many photos (or their equivalent in clip frames) a person, and optionally a group chat or a
guild, may have drawn per day.

A photo costs 1; a clip costs its drawn frames in photo equivalents (``photo_equivalents``). Days are UTC days: a
budget resets for everyone at 00:00 UTC, and the refusal says when that is in the person's time zone where the
platform gives one. Admins (``ANIMEBOT_ADMIN_IDS``) are exempt. ``Budgets`` is the policy; where the counts live is
a ``BudgetStore``: ``SqliteBudgetStore`` on one box, ``bot.cluster.budgets.RedisBudgetStore`` in the cluster (where
a photo's charge is taken by the admission script itself, atomically with the queue's bounds).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.charges import BudgetLine as BudgetLine
from bot.charges import Charge as Charge
from bot.charges import Scope as Scope
from bot.i18n import Text
from bot.jobs import JobError
from bot.sqlite_schema import store_thread

logger = logging.getLogger(__name__)

Clock = Callable[[], float]

SECONDS_PER_DAY = 86_400
# Clip frames per photo equivalent. A clip frame (drawn at 512 px, faces tracked, with its share of the plan and
# the join) costs about 0.8 of a photo (sent at phone size, drawn at 1024 px, its scene at 512 px): the generator
# runs at 512 px in both. Measured side by side by bench/photo_equivalent.py (median 404 ms a frame, 507 ms a
# photo: 1.26 frames per photo; README, "Running a public bot"). A clip of 10 s at 15 fps (150 frames) is 120.
FRAMES_PER_PHOTO = 1.25
FILE_NAME = "budgets.sqlite3"
KEPT_DAYS = 2  # today's counts and yesterday's (a front end whose clock runs behind still finds its day)

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE spent (
        day   INTEGER NOT NULL,
        scope TEXT NOT NULL,
        key   TEXT NOT NULL,
        used  INTEGER NOT NULL,
        PRIMARY KEY (day, scope, key)
    ) WITHOUT ROWID;
    """,
)


def photo_equivalents(frames: int) -> int:
    """What a clip of ``frames`` drawn frames costs: ``ceil(frames / FRAMES_PER_PHOTO)``, at least 1."""
    return max(1, math.ceil(frames / FRAMES_PER_PHOTO))


def budget_day(now: float) -> int:
    """The UTC day (days since 1970-01-01) of the wall-clock time ``now``."""
    return int(now // SECONDS_PER_DAY)


def next_reset(now: float) -> datetime:
    """When the budgets of the day of ``now`` reset: the next 00:00 UTC."""
    return datetime.fromtimestamp((budget_day(now) + 1) * SECONDS_PER_DAY, UTC)


def time_zone(name: str | None) -> tzinfo:
    """The IANA time zone ``name`` (``Asia/Tokyo``), or UTC when it is unset or unknown here."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            logger.debug("unknown time zone %r: saying UTC", name)
    return UTC


def clock_time(moment: datetime, zone: str | None = None) -> str:
    """``moment`` as a clock time in ``zone`` with the zone's name: ``00:00 UTC``, ``09:00 JST``."""
    local = moment.astimezone(time_zone(zone))
    return f"{local:%H:%M} {local.tzname() or 'UTC'}"


@dataclass(frozen=True)
class Overdrawn:
    """The first budget a charge did not fit in, and how much was left in it."""

    line: BudgetLine
    left: int


@dataclass(frozen=True)
class Usage:
    """A person's use of their budget today: photo equivalents ``used`` of ``limit`` (0: no budget applies)."""

    user: str
    used: int
    limit: int
    resets_at: datetime

    @property
    def left(self) -> int | None:
        """Photo equivalents left today (``None``: no budget applies to this person)."""
        return None if self.limit <= 0 else max(0, self.limit - self.used)


class BudgetExhausted(JobError):
    """The job does not fit in what is left of a daily budget; the message says what is left and when it resets.

    ``retry_after`` is the seconds until the reset (for an HTTP ``Retry-After``).
    """

    def __init__(self, cost: int, overdrawn: Overdrawn, resets_at: datetime, zone: str | None = None) -> None:
        self.cost = cost
        self.overdrawn = overdrawn
        self.resets_at = resets_at
        super().__init__(self.said_at(clock_time(resets_at, zone)))

    @property
    def retry_after(self) -> float:
        """Seconds from now until the budget resets."""
        return max(1.0, self.resets_at.timestamp() - time.time())

    def said_at(self, reset_time: str) -> Text:
        """The sentence with the reset written as ``reset_time`` (a front end may write it its own way: Discord
        shows ``<t:...:t>`` in each reader's own time zone)."""
        line, left = self.overdrawn.line, self.overdrawn.left
        group = line.scope is Scope.GROUP
        if left == 0:
            if group:
                return Text.plural(
                    "This chat has no photos left today (its budget is {count} a day); it resets at {time}.",
                    "This chat has no photos left today (its budget is {count} a day); it resets at {time}.",
                    line.limit,
                    time=reset_time,
                )
            return Text.plural(
                "You have no photos left today (your budget is {count} a day); it resets at {time}.",
                "You have no photos left today (your budget is {count} a day); it resets at {time}.",
                line.limit,
                time=reset_time,
            )
        if group:
            return Text.plural(
                "That counts as {count} photo and this chat has {left} left today; its budget resets at {time}.",
                "That video counts as {count} photos and this chat has {left} left today; its budget resets at {time}.",
                self.cost,
                left=left,
                time=reset_time,
            )
        return Text.plural(
            "That counts as {count} photo and you have {left} left today; your budget resets at {time}.",
            "That video counts as {count} photos and you have {left} left today; your budget resets at {time}.",
            self.cost,
            left=left,
            time=reset_time,
        )


class BudgetStore(Protocol):
    """Today's spending per budget, kept across restarts; each charge checked and counted in one step."""

    async def spend(self, lines: Sequence[BudgetLine], cost: int) -> Overdrawn | None:
        """Add ``cost`` to every line when it fits in each line's limit (all or nothing); else the first that it
        does not fit in, and nothing is spent."""
        ...

    async def refund(self, lines: Sequence[BudgetLine], cost: int) -> None:
        """Take ``cost`` back from every line (a charged job the queue then refused)."""
        ...

    async def used(self, scope: Scope, key: str) -> int:
        """Photo equivalents spent today on one budget."""
        ...

    async def top(self, scope: Scope, limit: int) -> list[tuple[str, int]]:
        """The ``limit`` budgets of ``scope`` that spent most today, most first: (key, spent)."""
        ...

    async def ready(self) -> None:
        """Return once the store is usable; raise its plain error if not."""
        ...

    async def close(self) -> None:
        """Release the file or connection."""
        ...


class Budgets:
    """The daily budgets: per person (``per_person``) and per group chat / guild (``per_group``), 0: none.

    Args:
        store: where today's spending is counted.
        per_person: photo equivalents one person may use per day (0: no budget).
        per_group: photo equivalents one group chat or guild may use per day, shared by its members (0: none).
        admins: person keys exempt from every budget (their use is still counted).
        clock: wall-clock seconds, for the reset times said (the store counts by its own day).
    """

    def __init__(
        self,
        store: BudgetStore,
        per_person: int = 0,
        per_group: int = 0,
        admins: frozenset[str] = frozenset(),
        clock: Clock = time.time,
    ) -> None:
        self.store = store
        self.per_person = per_person
        self.per_group = per_group
        self._admins = admins
        self._own: set[str] = set()
        self._clock = clock

    def exempt(self, user: str) -> None:
        """Neither charge nor count ``user``: a key the service itself draws for (the web gallery's thumbnails)."""
        self._own.add(user)

    def is_exempt(self, user: str) -> bool:
        """Whether no budget applies to ``user`` (an admin, or the service's own)."""
        return user in self._admins or user in self._own

    def lines(self, user: str, group: str | None = None) -> tuple[BudgetLine, ...]:
        """The budgets a job of ``user`` (in ``group``, if any) is charged to. Use is always counted (the admin page
        shows the day's top users); the limits are 0 (never refused) for an admin and where no budget is set."""
        if user in self._own:
            return ()
        exempt = self.is_exempt(user)
        lines = [BudgetLine(Scope.PERSON, user, 0 if exempt else self.per_person)]
        if group:
            lines.append(BudgetLine(Scope.GROUP, group, 0 if exempt else self.per_group))
        return tuple(lines)

    def refusal(self, cost: int, overdrawn: Overdrawn, zone: str | None = None) -> BudgetExhausted:
        """The refusal of a job of ``cost`` that did not fit (``zone``: the person's time zone, if known)."""
        return BudgetExhausted(cost, overdrawn, next_reset(self._clock()), zone)

    async def charge(self, user: str, group: str | None, cost: int, zone: str | None = None) -> None:
        """Spend ``cost`` of ``user``'s (and ``group``'s) budget, or raise ``BudgetExhausted`` spending nothing."""
        lines = self.lines(user, group)
        overdrawn = await self.store.spend(lines, cost) if lines else None
        if overdrawn is not None:
            raise self.refusal(cost, overdrawn, zone)

    async def charge_rest(self, user: str, group: str | None, total: int, charged: int, zone: str | None) -> None:
        """Spend the rest of a clip's ``total`` cost once its frames are known (``charged`` was spent when it was
        admitted). When the rest does not fit, the first charge is given back too (a refused clip costs nothing)
        and ``BudgetExhausted`` says what the whole clip counts as against what was left before it."""
        lines = self.lines(user, group)
        if total <= charged or not lines:
            return
        overdrawn = await self.store.spend(lines, total - charged)
        if overdrawn is not None:
            await self.store.refund(lines, charged)
            raise self.refusal(total, Overdrawn(overdrawn.line, overdrawn.left + charged), zone)

    async def refund(self, user: str, group: str | None, cost: int) -> None:
        """Give back a charge (the job it paid for was refused by the queue)."""
        lines = self.lines(user, group)
        if lines:
            await self.store.refund(lines, cost)

    async def usage(self, user: str) -> Usage:
        """``user``'s use of their own budget today (limit 0 for an admin or without a per-person budget)."""
        limit = 0 if self.is_exempt(user) else self.per_person
        used = await self.store.used(Scope.PERSON, user)
        return Usage(user, used, limit, next_reset(self._clock()))

    async def top_users(self, limit: int) -> list[Usage]:
        """The ``limit`` people who used most today (photo equivalents), most first; admins included (limit 0)."""
        resets_at = next_reset(self._clock())
        return [
            Usage(user, used, 0 if self.is_exempt(user) else self.per_person, resets_at)
            for user, used in await self.store.top(Scope.PERSON, limit)
        ]

    async def ready(self) -> None:
        """Open the store."""
        await self.store.ready()

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()


class SqliteBudgetStore:
    """``BudgetStore`` in one SQLite file of the data dir (``budgets.sqlite3``), in its own thread; each charge is
    one transaction, so two processes on the box sharing the file never spend past a limit. Counts of days before
    yesterday are deleted as days pass."""

    def __init__(self, path: Path, clock: Clock = time.time) -> None:
        self.path = path
        self._clock = clock
        self._db = store_thread(path, MIGRATIONS, "The budgets database (today's photo counts)", "budgets-db")

    @classmethod
    def in_folder(cls, folder: Path, clock: Clock = time.time) -> SqliteBudgetStore:
        """The store of the data dir ``folder``."""
        return cls(folder / FILE_NAME, clock)

    async def spend(self, lines: Sequence[BudgetLine], cost: int) -> Overdrawn | None:
        day = budget_day(self._clock())
        return await self._db.run(lambda db: _spend(db, day, tuple(lines), cost))

    async def refund(self, lines: Sequence[BudgetLine], cost: int) -> None:
        day = budget_day(self._clock())
        await self._db.run(lambda db: _refund(db, day, tuple(lines), cost))

    async def used(self, scope: Scope, key: str) -> int:
        day = budget_day(self._clock())
        row = await self._db.run(
            lambda db: db.execute(
                "SELECT used FROM spent WHERE day = ? AND scope = ? AND key = ?", (day, scope.value, key)
            ).fetchone()
        )
        return 0 if row is None else int(row[0])

    async def top(self, scope: Scope, limit: int) -> list[tuple[str, int]]:
        day = budget_day(self._clock())
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT key, used FROM spent WHERE day = ? AND scope = ? AND used > 0 ORDER BY used DESC, key LIMIT ?",
                (day, scope.value, max(0, limit)),
            ).fetchall()
        )
        return [(str(key), int(used)) for key, used in rows]

    async def ready(self) -> None:
        await self._db.run(lambda db: None)

    async def close(self) -> None:
        await self._db.close()


# What follows runs in the store's thread: each call is one transaction.


def _spend(db: sqlite3.Connection, day: int, lines: tuple[BudgetLine, ...], cost: int) -> Overdrawn | None:
    db.execute("BEGIN IMMEDIATE")  # the write lock first: no other process charges between the read and the write
    try:
        for line in lines:
            row = db.execute(
                "SELECT used FROM spent WHERE day = ? AND scope = ? AND key = ?", (day, line.scope.value, line.key)
            ).fetchone()
            used = 0 if row is None else int(row[0])
            if line.limit > 0 and used + cost > line.limit:
                db.execute("ROLLBACK")
                return Overdrawn(line, max(0, line.limit - used))
        for line in lines:
            db.execute(
                "INSERT INTO spent (day, scope, key, used) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (day, scope, key) DO UPDATE SET used = used + excluded.used",
                (day, line.scope.value, line.key, cost),
            )
        db.execute("DELETE FROM spent WHERE day < ?", (day - KEPT_DAYS + 1,))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return None


def _refund(db: sqlite3.Connection, day: int, lines: tuple[BudgetLine, ...], cost: int) -> None:
    with db:
        for line in lines:
            db.execute(
                "UPDATE spent SET used = MAX(0, used - ?) WHERE day = ? AND scope = ? AND key = ?",
                (cost, day, line.scope.value, line.key),
            )
