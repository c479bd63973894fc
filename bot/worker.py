"""The worker process's side of the pool: build the engine once, then stylize the jobs its pipe brings.

Runs in a spawned child; it speaks to ``bot/pool.py`` in plain tuples so the parent never imports the engine.
A worker counts as alive only once it has warmed up (``Engine.warm_up``: one photo through the whole path, so the
first person's photo is not the one paying for first imports and allocations); it warms the other installed
styles afterwards, one at a time and only once no job has come for a while.
"""

from __future__ import annotations

import contextlib
import os
import pkgutil
import signal
import traceback
from collections import deque
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from animegan.errors import AnimeganError
from animegan.heap import give_back_free_heap
from bot.jobs import JobKind, JobRequest

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# Messages on a worker's pipe: tuples tagged by their first item.
READY, STAGE, DONE, REJECTED, ERROR, FATAL = "ready", "stage", "done", "rejected", "error", "fatal"
Message = tuple[Any, ...]
QUIET_BEFORE_WARMING_SECONDS = 5.0  # no job for this long: warm the next of the other styles


def run_worker(
    factory: str, options: Mapping[str, Any], threads: int, conn: Connection, cores: Sequence[int] = ()
) -> None:
    """Entry point of a worker process: build and warm the engine once, then stylize each job ``conn`` brings.

    ``cores``: the CPU cores this worker runs on alone (empty: wherever the system puts it). Receives
    ``(job_id, JobRequest)`` tuples, or ``None`` to stop. Sends ``(READY, pid, details)`` once the engine is built
    and warm (``details``: plain strings for ``/readyz``, see ``ready_details``), or ``(FATAL, traceback)``; then
    per job any number of ``(STAGE, job_id, stage, fraction)`` and one of
    ``(DONE, job_id, (data, mime, width, height, notes))``, ``(REJECTED, job_id, message)`` or
    ``(ERROR, job_id, traceback)``.
    """
    if cores:  # before torch starts its threads: they inherit the mask
        os.sched_setaffinity(0, cores)
    for name in THREAD_ENV_VARS:  # before the factory imports torch, so its thread pools are sized once
        os.environ[name] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us itself
    try:
        engine = pkgutil.resolve_name(factory)(**options)
        warm_up(engine)
    except BaseException:
        conn.send((FATAL, traceback.format_exc()))
        return
    give_back_free_memory()
    conn.send((READY, os.getpid(), ready_details(engine, cores)))
    later = deque(other_styles(engine))
    while True:
        # Only after a quiet while, so a burst of jobs is never held up; a job that comes in during a step waits for
        # that one step (reading and compiling one cached model, a tiny inference: a fraction of a second).
        while later and not conn.poll(QUIET_BEFORE_WARMING_SECONDS):
            warm_up(engine, later.popleft(), whole_photo=False)
        try:
            job = conn.recv()
        except EOFError:  # the parent went away
            return
        if job is None:
            return
        job_id, request = job
        conn.send(_stylize(engine, job_id, request, conn))
        give_back_free_memory()


def warm_up(engine: Any, style: str | None = None, whole_photo: bool = True) -> None:
    """Warm ``engine`` for ``style`` (``Engine.warm_up``; an engine without it: ``load``, if it has that).

    A style whose weights are missing is left cold: its jobs will say so plainly.
    """
    warm = getattr(engine, "warm_up", None)
    with contextlib.suppress(AnimeganError):
        if callable(warm):
            warm(style, whole_photo=whole_photo)
        elif callable(load := getattr(engine, "load", None)):
            load(style)


def other_styles(engine: Any) -> list[str]:
    """The installed styles but the default one, which ``warm_up`` has already warmed (none for a plain engine)."""
    styles = getattr(engine, "styles", None)
    if not callable(styles):
        return []
    return [style.name for style in styles()[1:] if style.installed]


def ready_details(engine: Any, cores: Sequence[int]) -> dict[str, str]:
    """What ``/readyz`` shows of this worker: its cores, and each loaded model's precision path and why (from
    ``Engine.precision_report``, when the engine has one), all plain strings."""
    details = {"cores": ",".join(map(str, cores)) if cores else "any"}
    report = getattr(engine, "precision_report", None)
    if callable(report):
        details.update({f"precision {name}": str(summary) for name, summary in report().items()})
    return details


def give_back_free_memory() -> None:
    """Hand the heap's free pages back to the system between jobs: an idle worker kept a job's freed temporaries
    mapped (about 140 MB after a 1024 px photo). See ``animegan.heap``."""
    give_back_free_heap()


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
