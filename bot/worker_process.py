"""One worker process as the event loop sees it: the process, its pipe, and a thread reading what comes back.

``bot/worker.py`` is the other end (the code the process runs); ``bot/pool.py`` starts, feeds and replaces these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType

from bot.jobs import JobRequest
from bot.worker import DONE, ERROR, GAVE_BACK, REJECTED, STAGE, Message

logger = logging.getLogger(__name__)

WORKER_STOP_TIMEOUT = 5.0
GONE, TIMED_OUT = "gone", "timed_out"  # made on this side: the pipe closed / the job ran out of time


class WorkerProcess:
    """A worker process, its pipe, and a thread that turns what the pipe brings into loop-side messages."""

    def __init__(
        self,
        process: BaseProcess,
        conn: Connection,
        loop: asyncio.AbstractEventLoop,
        on_exit: Callable[[WorkerProcess], None],
        cores: tuple[int, ...] = (),
        lent_cores: tuple[int, ...] = (),
        give_back: EventType | None = None,
    ) -> None:
        self.process = process
        self.cores = cores  # the CPU cores it is pinned to (empty: not pinned)
        self.lent_cores = lent_cores  # the cores it runs a lone job on (empty: it is not the one lent them)
        self.give_back = give_back  # set: go back to its own cores at the lone job's next stage
        self.details: dict[str, str] = {}  # what it said of itself when ready (bot/worker.py: ready_details)
        self.conn = conn
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.busy = False
        self.retired = False
        self.exited = False
        self._loop = loop
        self._on_exit = on_exit
        self._reaped = False
        self._exitcode: int | None = None
        # A blocking reader thread rather than loop.add_reader: unpickling a large result stays off the loop.
        self._reader = threading.Thread(target=self._read, name=f"{process.name}-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self.process.pid if not self._reaped else None

    @property
    def exitcode(self) -> int | None:
        """The process's exit code (negative: killed by that signal), ``None`` while it runs."""
        return self._exitcode if self._reaped else self.process.exitcode

    def _read(self) -> None:
        while True:
            try:
                message: Message = self.conn.recv()
            except (EOFError, OSError):
                message = (GONE,)
            except Exception:
                logger.exception("unreadable message from worker %s", self.pid)
                message = (GONE,)
            try:
                self._loop.call_soon_threadsafe(self._deliver, message)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                return
            if message[0] == GONE:
                return

    def _deliver(self, message: Message) -> None:
        if message[0] == GONE:
            self.exited = True
            self._on_exit(self)
        self.inbox.put_nowait(message)

    async def run(
        self,
        job_id: str,
        request: JobRequest,
        on_stage: Callable[[str, float], None],
        timeout: float,  # noqa: ASYNC109 - the job's own time limit
        cores: tuple[int, ...] = (),
        on_given_back: Callable[[], None] | None = None,
    ) -> Message:
        """Run a job here (on ``cores``; empty: on its own), calling ``on_stage(stage, fraction)`` as it reports and
        ``on_given_back()`` once it is back on its own cores; returns its outcome message, or ``(GONE,)`` /
        ``(TIMED_OUT,)``."""
        try:
            await asyncio.to_thread(self.conn.send, (job_id, request, cores))
        except OSError:
            return (GONE,)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    message = await self.inbox.get()
                    if message[0] == STAGE and message[1] == job_id:
                        on_stage(message[2], message[3])
                    elif message[0] == GAVE_BACK and message[1] == job_id and on_given_back is not None:
                        on_given_back()
                    elif message[0] in (DONE, REJECTED, ERROR, GONE):
                        return message
        except TimeoutError:
            return (TIMED_OUT,)

    async def kill(self) -> None:
        """End the process at once and release its pipe (safe to call more than once)."""
        if self._reaped:
            return
        with contextlib.suppress(OSError):
            self.process.kill()
        await asyncio.to_thread(self._reap)

    async def stop(self) -> None:
        """Ask the process to exit after its current job; kill it if it has not within ``WORKER_STOP_TIMEOUT``."""
        if self._reaped:
            return
        with contextlib.suppress(OSError):
            self.conn.send(None)
        await asyncio.to_thread(self.process.join, WORKER_STOP_TIMEOUT)
        await self.kill()

    def _reap(self) -> None:
        if self._reaped:
            return
        self._reaped = True
        self.process.join()
        self._exitcode = self.process.exitcode
        self._reader.join(WORKER_STOP_TIMEOUT)
        self.conn.close()
        with contextlib.suppress(ValueError):
            self.process.close()
