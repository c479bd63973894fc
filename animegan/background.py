"""Stages of a stream in their own threads: an iterator run ahead of its consumer, or a consumer fed behind it.

A clip is three stages in a row: decoding frames, stylizing them, encoding them. The generators and FFmpeg
release the GIL while they compute, so running the first and last stage in threads keeps the cores busy while the
middle one waits on Python; a short queue between two stages bounds the frames held in memory. The middle stage
stays on the caller's thread (its progress reports go where the caller expects them).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

Item = TypeVar("Item")
Result = TypeVar("Result")

DEFAULT_DEPTH = 4  # items the thread may run ahead of its consumer
POLL_SECONDS = 0.1  # how often a thread blocked on a full queue checks whether its consumer left


@dataclass(frozen=True)
class _Failed:
    """What the thread hands over instead of an item when the source raised."""

    error: BaseException


_END = object()


def run_ahead(source: Iterable[Item], depth: int = DEFAULT_DEPTH, name: str = "run-ahead") -> RunAhead[Item]:
    """The items of ``source`` in order, produced by a thread up to ``depth`` items ahead of the caller.

    An exception in ``source`` is raised to the caller where its item would have come, and the thread ends. When
    the caller stops early (breaks, or closes the iterator), the thread stops at its next item.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(source, handoff, stop), name=name, daemon=True)
    producer.start()
    return RunAhead(handoff, stop, producer)


def _produce(source: Iterable[object], handoff: queue.Queue[object], stop: threading.Event) -> None:
    try:
        for item in source:
            if not _put(handoff, item, stop):
                return
    except BaseException as error:  # handed to the consumer, which raises it in its own thread
        _put(handoff, _Failed(error), stop)
        return
    finally:
        close = getattr(source, "close", None)
        if stop.is_set() and close is not None:
            close()  # a generator left early runs its cleanup (open files, containers) here, in its own thread
    _put(handoff, _END, stop)


def _put(handoff: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put ``item`` once there is room; False when the consumer left first."""
    while not stop.is_set():
        try:
            handoff.put(item, timeout=POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


class RunAhead(Iterator[Item], Generic[Item]):
    """The caller's side of ``run_ahead``: takes items from the queue; ``close`` stops the thread."""

    def __init__(self, handoff: queue.Queue[object], stop: threading.Event, producer: threading.Thread) -> None:
        self._handoff = handoff
        self._stop = stop
        self._producer = producer
        self._done = False

    def __next__(self) -> Item:
        if self._done:
            raise StopIteration
        item = self._handoff.get()
        if item is _END:
            self._finish()
            raise StopIteration
        if isinstance(item, _Failed):
            self._finish()
            raise item.error
        return cast("Item", item)  # everything else in the queue is one of source's items

    def close(self) -> None:
        """Stop the thread (it finishes the item it is making) and wait for it."""
        self._finish()

    def _finish(self) -> None:
        self._done = True
        self._stop.set()
        self._producer.join()

    def __del__(self) -> None:
        self._stop.set()


def consume_behind(
    consume: Callable[[Iterator[Item]], Result], items: Iterable[Item], depth: int = DEFAULT_DEPTH, name: str = "behind"
) -> Result:
    """``consume(iterator of items)`` run in a thread while this thread produces ``items``, up to ``depth`` ahead.

    Returns what ``consume`` returns. An exception in ``consume`` stops the production of items and is raised here;
    an exception in ``items`` ends the consumer's iterator (it returns what it made, which is dropped) and is
    raised here.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    ended = threading.Event()  # the consumer returned or raised: nothing more will be taken
    outcome: list[Result] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(consume(_taken(handoff)))
        except BaseException as error:  # raised in the caller's thread below
            failure.append(error)
        finally:
            ended.set()

    consumer = threading.Thread(target=work, name=name, daemon=True)
    consumer.start()
    try:
        for item in items:
            if not _put(handoff, item, ended):
                break
    finally:
        _put(handoff, _END, ended)
        consumer.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()
    if failure:
        raise failure[0]
    return outcome[0]


def _taken(handoff: queue.Queue[object]) -> Iterator[Item]:
    """The items put into ``handoff`` up to the end mark."""
    while (item := handoff.get()) is not _END:
        yield cast("Item", item)
