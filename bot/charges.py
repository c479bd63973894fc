"""What a job is charged to: the daily budgets (``bot.budgets``) a queue that applies them (the cluster's admission
script) charges when it admits a new job. Plain data, so ``bot.jobs`` can carry it without importing the budgets."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """Whose budget a count is: a person's, or a group chat's / guild's, shared by its members."""

    PERSON = "person"
    GROUP = "group"


@dataclass(frozen=True)
class BudgetLine:
    """One budget a job is charged to: its scope, its key (``telegram:123``, ``discord-guild:456``) and its daily
    limit in photo equivalents (0: counted, never refused: an admin, or no budget set)."""

    scope: Scope
    key: str
    limit: int


@dataclass(frozen=True)
class Charge:
    """What admitting a new job spends: ``cost`` photo equivalents of each budget of ``lines``; ``zone`` is the
    person's time zone, for the refusal's reset time (``None``: UTC)."""

    lines: tuple[BudgetLine, ...]
    cost: int
    zone: str | None = None
