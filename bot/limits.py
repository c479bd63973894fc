"""Who may use the bot and how often: a per-person rate limit and the chat/guild allow-list."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cachetools import TTLCache

from bot.i18n import Text
from bot.jobs import RateLimited

if TYPE_CHECKING:
    from bot.config import Settings

Clock = Callable[[], float]

RATE_WINDOW_SECONDS = 60.0
# People whose history is kept at once; beyond it the longest-idle person's history is forgotten (harmless:
# at worst that person may send a few more photos in the same minute).
MAX_TRACKED_PEOPLE = 100_000


def retry_message(sent: int, seconds: float) -> str:
    """The plain sentence for a person who hit the rate limit."""
    wait = max(1, math.ceil(seconds))
    return (
        Text.plural(
            "You have sent {sent} photos in the last minute. Please try again in {count} second.",
            "You have sent {sent} photos in the last minute. Please try again in {count} seconds.",
            wait,
            sent=sent,
        )
        if sent != 1
        else Text.plural(
            "You have sent 1 photo in the last minute. Please try again in {count} second.",
            "You have sent 1 photo in the last minute. Please try again in {count} seconds.",
            wait,
        )
    )


class RateLimiter:
    """At most ``per_minute`` accepted photos per person in any sliding 60-second window.

    ``check`` refuses without recording, ``record`` counts an accepted photo: the service records only after the
    queue took the job, so a "busy" refusal does not use up the person's allowance. ``per_minute <= 0`` disables it.
    """

    def __init__(self, per_minute: int, window: float = RATE_WINDOW_SECONDS, clock: Clock = time.monotonic) -> None:
        self.per_minute = per_minute
        self.window = window
        self.refused = 0
        self._clock = clock
        # A person's entry is rewritten on every record, so it expires exactly when their last photo leaves the
        # window: idle people are forgotten without a sweep.
        self._sent: TTLCache[str, deque[float]] = TTLCache(MAX_TRACKED_PEOPLE, window, timer=clock)

    def retry_after(self, user: str) -> float:
        """Seconds until ``user`` may send another photo (0 when they may now)."""
        if self.per_minute <= 0:
            return 0.0
        recent = self._recent(user)
        if len(recent) < self.per_minute:
            return 0.0
        return recent[0] + self.window - self._clock()

    def check(self, user: str) -> None:
        """Raise ``RateLimited`` (with the wait in its message and ``retry_after``) when ``user`` is over the limit."""
        wait = self.retry_after(user)
        if wait > 0:
            self.refused += 1
            raise RateLimited(retry_message(self.per_minute, wait), retry_after=wait)

    def record(self, user: str) -> None:
        """Count one accepted photo from ``user`` now."""
        if self.per_minute <= 0:
            return
        recent = self._recent(user)
        recent.append(self._clock())
        self._sent[user] = recent

    def _recent(self, user: str) -> deque[float]:
        recent = self._sent.get(user, deque())
        horizon = self._clock() - self.window
        while recent and recent[0] <= horizon:
            recent.popleft()
        return recent


@dataclass(frozen=True)
class AccessList:
    """Which Telegram chats and Discord guilds may use the bot; an empty set lets everyone in.

    With a guild allow-list set, Discord direct messages (no guild) are refused too: the list names every place
    the bot answers.
    """

    chats: frozenset[int] = frozenset()
    guilds: frozenset[int] = frozenset()

    @classmethod
    def of(cls, chats: Iterable[int] = (), guilds: Iterable[int] = ()) -> AccessList:
        """An access list from any iterables of ids."""
        return cls(frozenset(chats), frozenset(guilds))

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessList:
        """The allow-list of ``settings.allowed_chats`` and ``settings.allowed_guilds``."""
        return cls.of(settings.allowed_chats, settings.allowed_guilds)

    def allows_chat(self, chat_id: int) -> bool:
        """True when the bot may answer in this Telegram chat."""
        return not self.chats or chat_id in self.chats

    def allows_guild(self, guild_id: int | None) -> bool:
        """True when the bot may answer in this Discord guild (``None``: a direct message)."""
        return not self.guilds or guild_id in self.guilds
