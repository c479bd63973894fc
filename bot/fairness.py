"""Fairness between people: waiting jobs served round-robin, one of each person in turn."""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    """Waiting items served round-robin over people: one item of each person in turn, in order of arrival.

    Retried items (``push_urgent``) go before everything else. Pure data structure: no asyncio, no clocks.
    """

    def __init__(self) -> None:
        self._urgent: deque[T] = deque()
        self._by_user: OrderedDict[str, deque[T]] = OrderedDict()  # key order is the rotation

    def __len__(self) -> int:
        return len(self._urgent) + sum(len(items) for items in self._by_user.values())

    def waiting(self, user: str) -> int:
        """Items of ``user`` waiting (retries not counted)."""
        return len(self._by_user.get(user, ()))

    def push(self, user: str, item: T) -> None:
        """Queue ``item`` behind ``user``'s earlier items; a person new to the queue joins the end of the turn."""
        self._by_user.setdefault(user, deque()).append(item)

    def push_urgent(self, item: T) -> None:
        """Queue ``item`` ahead of every person's items."""
        self._urgent.append(item)

    def pop(self) -> T:
        """The next item; raises ``IndexError`` when empty."""
        if self._urgent:
            return self._urgent.popleft()
        if not self._by_user:
            raise IndexError("pop from an empty FairQueue")
        user, items = next(iter(self._by_user.items()))
        item = items.popleft()
        if items:
            self._by_user.move_to_end(user)
        else:
            del self._by_user[user]
        return item

    def order(self) -> list[T]:
        """Every waiting item, in the order ``pop`` would return them if nothing new arrived."""
        rounds = max((len(items) for items in self._by_user.values()), default=0)
        ordered = list(self._urgent)
        for turn in range(rounds):
            ordered.extend(items[turn] for items in self._by_user.values() if len(items) > turn)
        return ordered

    def clear(self) -> list[T]:
        """Remove and return every waiting item, in order."""
        items = self.order()
        self._urgent.clear()
        self._by_user.clear()
        return items
