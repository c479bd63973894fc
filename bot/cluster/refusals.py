"""Writes Redis refused, counted by reason, for the ``animebot_redis_refusals_total`` metric and its alert.

A refusal is a server that answers but will not write for now (``must_wait`` in ``bot.cluster.connection``): out
of memory under ``maxmemory`` + ``noeviction`` (OOM), a replica after a failover (READONLY), a failed snapshot
(MISCONF)... A lost connection is not a refusal: ``animebot_redis_connected`` says that.
"""

from __future__ import annotations

from collections import Counter

from redis.exceptions import MasterDownError, OutOfMemoryError, ReadOnlyError, ResponseError, TryAgainError

from bot.cluster.connection import REFUSING_PREFIXES, is_refusing

# redis-py strips the error code of these from their message, so their class names the reason.
REASON_OF_CLASS: dict[type[ResponseError], str] = {
    OutOfMemoryError: "oom",
    ReadOnlyError: "readonly",
    MasterDownError: "masterdown",
    TryAgainError: "tryagain",
}
REASONS = (*REASON_OF_CLASS.values(), *(prefix.strip().lower() for prefix in REFUSING_PREFIXES))
STATS_PREFIX = "redis_refusals_"  # stats key of a reason: redis_refusals_oom, redis_refusals_misconf...


def refusal_reason(error: BaseException) -> str | None:
    """The reason Redis refused (one of ``REASONS``), or ``None`` when ``error`` is no refusal."""
    for error_class, reason in REASON_OF_CLASS.items():
        if isinstance(error, error_class):
            return reason
    if isinstance(error, ResponseError) and is_refusing(error):
        return str(error).split(maxsplit=1)[0].lower()
    return None


class RedisRefusals:
    """How many times Redis refused a write, by reason (every reason reported from zero, so a rate works at once)."""

    def __init__(self) -> None:
        self.by_reason: Counter[str] = Counter()

    def count(self, error: BaseException) -> None:
        """Count ``error`` if it is a refusal; anything else is ignored."""
        reason = refusal_reason(error)
        if reason is not None:
            self.by_reason[reason] += 1

    def stats(self) -> dict[str, int | float]:
        """``{"redis_refusals_<reason>": count}`` for every reason, for ``stats()`` and the metrics."""
        return {f"{STATS_PREFIX}{reason}": self.by_reason[reason] for reason in REASONS}
