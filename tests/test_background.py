"""Stages of a stream in threads (animegan/background.py): order kept, errors reach the caller, threads stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from animegan.background import consume_behind, run_ahead


def counting(stop: int, made: list[int], fail_at: int | None = None) -> Iterator[int]:
    for number in range(stop):
        if number == fail_at:
            raise ValueError(f"broke at {number}")
        made.append(number)
        yield number


def test_run_ahead_keeps_the_order_and_runs_in_another_thread() -> None:
    threads: list[str] = []

    def source() -> Iterator[int]:
        for number in range(50):
            threads.append(threading.current_thread().name)
            yield number

    assert list(run_ahead(source(), depth=3, name="ahead")) == list(range(50))
    assert set(threads) == {"ahead"}


def test_run_ahead_raises_the_sources_error_where_its_item_would_have_come() -> None:
    made: list[int] = []
    got: list[int] = []
    with pytest.raises(ValueError, match="broke at 5"):
        for number in run_ahead(counting(10, made, fail_at=5)):
            got.append(number)
    assert got == [0, 1, 2, 3, 4]


def test_run_ahead_stops_its_thread_when_the_caller_leaves_early() -> None:
    made: list[int] = []
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            number = 0
            while True:
                made.append(number)
                yield number
                number += 1
        finally:
            closed.set()

    items = run_ahead(endless(), depth=2)
    assert next(items) == 0
    items.close()
    assert closed.wait(5), "the source was closed in its thread"
    count = len(made)
    time.sleep(0.3)
    assert len(made) == count <= 4, "nothing made after the caller left, and at most depth + 2 ahead"


def test_consume_behind_sees_every_item_in_order_in_another_thread() -> None:
    seen: list[tuple[int, str]] = []

    def consume(items: Iterator[int]) -> int:
        for number in items:
            seen.append((number, threading.current_thread().name))
        return len(seen)

    assert consume_behind(consume, range(40), depth=2, name="behind") == 40
    assert [number for number, _ in seen] == list(range(40))
    assert {name for _, name in seen} == {"behind"}


def test_consume_behind_raises_the_consumers_error_and_stops_producing() -> None:
    made: list[int] = []

    def consume(items: Iterator[int]) -> None:
        for number in items:
            if number == 3:
                raise RuntimeError("encoder broke")

    with pytest.raises(RuntimeError, match="encoder broke"):
        consume_behind(consume, counting(10_000, made), depth=2)
    assert len(made) < 20, "production stopped soon after the consumer failed"


def test_consume_behind_raises_the_producers_error_after_the_consumer_ends() -> None:
    made: list[int] = []
    consumed: list[int] = []

    def consume(items: Iterator[int]) -> int:
        consumed.extend(items)
        return len(consumed)

    with pytest.raises(ValueError, match="broke at 4"):
        consume_behind(consume, counting(10, made, fail_at=4))
    assert consumed == [0, 1, 2, 3]
