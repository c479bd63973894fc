"""The worker process's side of the pool: build the engine once, then stylize the jobs its pipe brings.

Runs in a spawned child; it speaks to ``bot/pool.py`` in plain tuples so the parent never imports the engine.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import pkgutil
import signal
import traceback
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from animegan.errors import AnimeganError
from bot.jobs import JobKind, JobRequest

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# Messages on a worker's pipe: tuples tagged by their first item.
READY, STAGE, DONE, REJECTED, ERROR, FATAL = "ready", "stage", "done", "rejected", "error", "fatal"
Message = tuple[Any, ...]


def run_worker(factory: str, options: Mapping[str, Any], threads: int, conn: Connection) -> None:
    """Entry point of a worker process: build the engine once, then stylize each job ``conn`` brings.

    Receives ``(job_id, JobRequest)`` tuples, or ``None`` to stop. Sends ``(READY, pid)`` once the engine is
    built (or ``(FATAL, traceback)``), then per job any number of ``(STAGE, job_id, stage, fraction)`` and one of
    ``(DONE, job_id, (data, mime, width, height, notes))``, ``(REJECTED, job_id, message)`` or
    ``(ERROR, job_id, traceback)``.
    """
    for name in THREAD_ENV_VARS:  # before the factory imports torch, so its thread pools are sized once
        os.environ[name] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us itself
    try:
        engine = pkgutil.resolve_name(factory)(**options)
        warm_up = getattr(engine, "load", None)
        if callable(warm_up):  # load the default style now, so the first person does not wait for it
            with contextlib.suppress(AnimeganError):  # its weights may be missing: jobs will say so plainly
                warm_up()
    except BaseException:
        conn.send((FATAL, traceback.format_exc()))
        return
    conn.send((READY, os.getpid()))
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the parent went away
            return
        if job is None:
            return
        job_id, request = job
        conn.send(_stylize(engine, job_id, request, conn))
        give_back_free_memory()


def give_back_free_memory() -> None:
    """Hand the heap's free pages back to the system between jobs (glibc only; elsewhere a no-op).

    A job's large temporary tensors leave free but mapped pages in glibc's arenas; an idle worker kept them
    (about 140 MB after a 1024 px photo). ``malloc_trim`` costs a few milliseconds.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _stylize(engine: Any, job_id: str, request: JobRequest, conn: Connection) -> Message:
    def report(stage: str, fraction: float) -> None:
        conn.send((STAGE, job_id, stage, fraction))

    try:
        if request.kind is JobKind.PHOTO:
            out = engine.stylize_bytes(
                request.image,
                request.style,
                strength=request.strength,
                faces=request.faces,
                output_format=request.output_format,
                on_stage=report,
            )
        else:
            from bot.clip_steps import run_clip_step  # imports PyAV: only in workers that get a clip

            out = run_clip_step(engine, request, report)
    except AnimeganError as error:
        return (REJECTED, job_id, error.message)
    except Exception:
        return (ERROR, job_id, traceback.format_exc())
    # Plain values only: unpickling the engine's own result type would import the engine here.
    return (DONE, job_id, (out.data, out.mime, out.width, out.height, tuple(out.notes)))
