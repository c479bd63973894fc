"""One SQLite connection behind its own thread, so the event loop never waits for the disk or another process's lock.

sqlite3 calls block: a 20 MB blob written with ``secure_delete``, or up to the busy timeout while another process
(an old ``animebot serve`` still stopping) holds the write lock. Each store therefore hands its work to one
dedicated thread that owns the connection: SQLite's one-connection-one-thread rule holds (the connection is made
with ``check_same_thread`` on), and the work arrives in order, so each unit runs whole, as one transaction, before
the next starts.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)


class SqliteThread:
    """A SQLite connection opened, used and closed in one worker thread; ``await run(work)`` from the event loop.

    Args:
        open_db: makes the connection (run in the worker thread, first of all work; it may block, set a broken
            file aside or migrate). When it fails, every ``run`` raises its error.
        name: the worker thread's name, for logs and debuggers.
    """

    def __init__(self, open_db: Callable[[], sqlite3.Connection], name: str) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._db = self._thread.submit(open_db)
        self._closed = False
        self._timer: threading.Timer | None = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` in the worker thread, after all work handed over before it; its result."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._with_db, work)

    def every(self, seconds: float, work: Callable[[sqlite3.Connection], object]) -> None:
        """Also run ``work(connection)`` in the worker thread every ``seconds`` until ``close`` (housekeeping that
        must happen even when nothing else does; a failure is logged and the next one still runs)."""

        def tick() -> None:
            if self._closed:
                return
            try:
                self._thread.submit(self._with_db, work).add_done_callback(_log_failure)
            except RuntimeError:  # closed meanwhile: the thread takes no more work
                return
            arm()

        def arm() -> None:
            self._timer = threading.Timer(seconds, tick)
            self._timer.daemon = True
            self._timer.start()

        arm()

    async def close(self) -> None:
        """Close the connection once the work handed over before is done, then let the thread end (once)."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)

    def _with_db(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return work(self._db.result())  # done already: opening was the thread's first task

    def _close(self) -> None:
        if self._db.exception() is None:
            self._db.result().close()


def _log_failure(done: Future[object]) -> None:
    error = done.exception()
    if error is not None:
        logger.warning("housekeeping of a SQLite store failed: %s", error)
