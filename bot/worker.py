"""The worker process's side of the pool: build the engine once, then stylize the jobs its pipe brings.

Runs in a spawned child; it speaks to ``bot/pool.py`` in plain tuples so the parent never imports the engine.
A worker counts as alive only once it has warmed up (``Engine.warm_up``: one photo through the whole path, so the
first person's photo is not the one paying for first imports and allocations); it warms the other installed
styles afterwards, one at a time and only once no job has come for a while, and gives its freed heap back only
after a longer while. The pool may lend one worker every core for a job that comes alone (``LentCores``).
"""

from __future__ import annotations

import contextlib
import os
import pkgutil
import signal
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from typing import Any

from animegan.errors import AnimeganError
from animegan.heap import give_back_free_heap
from bot.jobs import JobKind, JobRequest

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# Messages on a worker's pipe: tuples tagged by their first item.
READY, STAGE, DONE, REJECTED, ERROR, FATAL = "ready", "stage", "done", "rejected", "error", "fatal"
GAVE_BACK = "gave_back"  # a lone job's worker is back on its own cores; the job goes on
Message = tuple[Any, ...]
QUIET_BEFORE_WARMING_SECONDS = 5.0  # no job for this long: warm the next of the other styles
QUIET_BEFORE_TRIMMING_SECONDS = 30.0  # no job for this long: give the heap's free pages back


def run_worker(
    factory: str,
    options: Mapping[str, Any],
    threads: int,
    conn: Connection,
    cores: Sequence[int] = (),
    lent_cores: Sequence[int] = (),
    give_back: EventType | None = None,
) -> None:
    """Entry point of a worker process: build and warm the engine once, then stylize each job ``conn`` brings.

    ``cores``: the CPU cores this worker runs on alone (empty: wherever the system puts it). ``lent_cores``: all the
    pool's cores, for the one worker the pool lends them to when a job comes while every worker is idle (empty:
    never lent); it warms up on them as well as on its own, and goes back to its own at the next stage of a job
    once the pool sets ``give_back`` (another job is waiting), saying ``(GAVE_BACK, job_id)``.

    Receives ``(job_id, JobRequest, job_cores)`` tuples (``job_cores``: where to run that job, empty: on
    ``cores``), or ``None`` to stop. Sends ``(READY, pid, details)`` once the engine is built and warm
    (``details``: plain strings for ``/readyz``, see ``ready_details``), or ``(FATAL, traceback)``; then per job
    any number of ``(STAGE, job_id, stage, fraction)`` and one of ``(DONE, job_id, (data, mime, width, height,
    notes))``, ``(REJECTED, job_id, message)`` or ``(ERROR, job_id, traceback)``.
    """
    if cores or lent_cores:  # before torch starts its threads: they inherit the mask
        os.sched_setaffinity(0, lent_cores or cores)
    for name in THREAD_ENV_VARS:  # before the factory imports torch, so its thread pools are sized once
        os.environ[name] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us itself
    layouts = [tuple(lent_cores), tuple(cores)] if lent_cores else [tuple(cores)]
    try:
        engine = pkgutil.resolve_name(factory)(**options)
        for layout in layouts:  # the lent layout first: its thread pools are made while every core is in the mask
            move_to(engine, layout)
            warm_up(engine)
    except BaseException:
        conn.send((FATAL, traceback.format_exc()))
        return
    conn.send((READY, os.getpid(), ready_details(engine, cores, lent_cores)))
    later = deque(other_styles(engine))
    heap_to_trim = True
    while True:
        # Only after a quiet while, so a burst of jobs is never held up; a job that comes in during a step waits for
        # that one step (reading and compiling one cached model, a tiny inference: a fraction of a second).
        while later and not conn.poll(QUIET_BEFORE_WARMING_SECONDS):
            style = later.popleft()
            for layout in layouts:
                move_to(engine, layout)
                warm_up(engine, style, whole_photo=False)
        # Freed heap pages given back must be faulted in again by the next job: about 90 ms of a 1024 px photo's
        # 450 ms on 2 cores. So only a worker that has had nothing to do for a while gives them back.
        if heap_to_trim and not conn.poll(QUIET_BEFORE_TRIMMING_SECONDS):
            give_back_free_memory()
            heap_to_trim = False
        try:
            job = conn.recv()
        except EOFError:  # the parent went away
            return
        if job is None:
            return
        job_id, request, job_cores = job
        hold = LentCores(engine, cores, job_cores, give_back, partial(conn.send, (GAVE_BACK, job_id)))
        conn.send(_stylize(engine, job_id, request, conn, hold.give_back_if_asked))
        hold.give_back()
        heap_to_trim = True


class LentCores:
    """A job's hold on cores lent to it (none: it runs on the worker's own), given back between its stages as soon
    as the pool asks (``asked`` set) or when it ends."""

    def __init__(
        self,
        engine: Any,
        own: Sequence[int],
        lent: Sequence[int],
        asked: EventType | None,
        say_given_back: Callable[[], None],
    ) -> None:
        self.engine = engine
        self.own = own
        self.held = bool(lent)
        self.asked = asked
        self.say_given_back = say_given_back
        if self.held:
            move_to(engine, lent)

    def give_back_if_asked(self) -> None:
        if self.held and self.asked is not None and self.asked.is_set():
            self.give_back()
            self.say_given_back()

    def give_back(self) -> None:
        if self.held:
            move_to(self.engine, self.own)
            self.held = False


def move_to(engine: Any, cores: Sequence[int]) -> None:
    """Run every thread of this process on ``cores`` and size the engine's thread pools to them (``use_threads``,
    if it has that); nothing for no cores (an unpinned worker)."""
    if not cores:
        return
    tasks = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
    for task in tasks:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task), cores)
    use_threads = getattr(engine, "use_threads", None)
    if callable(use_threads):
        use_threads(len(cores))


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


def ready_details(engine: Any, cores: Sequence[int], lent_cores: Sequence[int] = ()) -> dict[str, str]:
    """What ``/readyz`` shows of this worker: its cores (and those it is lent for a lone job), and each loaded
    model's precision path and why (from ``Engine.precision_report``, when the engine has one), all plain strings."""
    details = {"cores": ",".join(map(str, cores)) if cores else "any"}
    if lent_cores:
        details["cores for a lone job"] = ",".join(map(str, lent_cores))
    report = getattr(engine, "precision_report", None)
    if callable(report):
        details.update({f"precision {name}": str(summary) for name, summary in report().items()})
    return details


def give_back_free_memory() -> None:
    """Hand the heap's free pages back to the system between jobs: an idle worker kept a job's freed temporaries
    mapped (about 140 MB after a 1024 px photo). See ``animegan.heap``."""
    give_back_free_heap()


def _stylize(
    engine: Any, job_id: str, request: JobRequest, conn: Connection, between_stages: Callable[[], None]
) -> Message:
    def report(stage: str, fraction: float) -> None:
        between_stages()
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
