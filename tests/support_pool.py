"""Helpers for the pool and service tests: a scripted stand-in engine and small async utilities.

``ScriptedEngine`` is what the pool's workers build when a test passes ``SCRIPTED_ENGINE`` as the factory. The
"photo" bytes are a JSON script saying what the engine should do (sleep, crash, hang once, reject...). It
imports nothing heavy, so a worker process starts in well under a second.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.jobs import JobRequest

ENGINE_STAGES = ("decoding", "finding_faces", "stylizing", "finishing")
HANG_SECONDS = 60.0


@dataclass(frozen=True)
class ScriptedResult:
    """Shaped like ``animegan.pipeline.Stylized``; ``data`` is a JSON report of the run."""

    data: bytes
    mime: str
    width: int
    height: int
    notes: tuple[str, ...] = ()


class ScriptedEngine:
    """A stand-in engine whose every photo is a JSON script.

    Script keys (all optional): ``sleep`` seconds spent "stylizing" (in ``steps`` parts, each reported);
    ``crash`` kill this process with SIGKILL; ``hang_once`` a marker path: the first run writes its pid there and
    hangs (to be killed by the test), later runs go on normally; ``until`` a path: "stylize" until the test
    creates that file; ``reject`` raise ``UnsupportedImage`` with this message; ``raise`` raise ``RuntimeError``.
    The result's data is JSON with the pid, wall-clock start/end (and when the sleep ended), threads (as built,
    and as told by ``use_threads``) and CPU cores at the start and at the end, and style.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.threads_in_use: int | None = None

    def use_threads(self, threads: int) -> None:
        """What ``Engine.use_threads`` is told: kept for the report."""
        self.threads_in_use = threads

    def stylize_bytes(
        self,
        data: bytes,
        style: str | None = None,
        strength: float = 1.0,
        faces: bool = True,
        output_format: str | None = None,
        on_stage: Callable[[str, float], None] | None = None,
    ) -> ScriptedResult:
        """Follow the script in ``data``; reports each engine stage in order."""
        from animegan.errors import UnsupportedImage

        report = on_stage or (lambda stage, fraction: None)
        script = json.loads(data)
        start = time.time()
        cores_at_start, threads_at_start = sorted(os.sched_getaffinity(0)), self.threads_in_use
        report("decoding", 0.0)
        if "reject" in script:
            raise UnsupportedImage(script["reject"])
        if "raise" in script:
            raise RuntimeError(script["raise"])
        report("finding_faces", 0.0)
        report("stylizing", 0.0)
        if script.get("crash"):
            os.kill(os.getpid(), signal.SIGKILL)
        marker = script.get("hang_once")
        if marker and not Path(marker).exists():
            Path(marker).write_text(str(os.getpid()))
            time.sleep(HANG_SECONDS)
        steps = int(script.get("steps", 1))  # the sleep in this many parts, each after a "stylizing" report
        for step in range(steps):
            if step:
                report("stylizing", step / steps)
            time.sleep(script.get("sleep", 0.0) / steps)
        slept = time.time()
        released = script.get("until")
        deadline = time.monotonic() + HANG_SECONDS
        while released and not Path(released).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        report("finishing", 0.5)
        summary = {
            "pid": os.getpid(),
            "start": start,
            "end": time.time(),
            "threads": self.options.get("threads"),
            "threads_in_use": self.threads_in_use,
            "cores": sorted(os.sched_getaffinity(0)),
            "threads_at_start": threads_at_start,
            "cores_at_start": cores_at_start,
            "slept": slept,
            "omp_threads": os.environ.get("OMP_NUM_THREADS"),
            "style": style,
            "strength": strength,
        }
        return ScriptedResult(json.dumps(summary).encode(), "application/json", 1, 1, ("scripted",))


# The import path workers resolve: whatever name pytest gave this module (``support_pool`` or ``tests.…``).
SCRIPTED_ENGINE = f"{ScriptedEngine.__module__}:ScriptedEngine"


def script(**steps: Any) -> bytes:
    """A scripted "photo" (see ``ScriptedEngine``)."""
    return json.dumps(steps).encode()


def scripted(user: str, **steps: Any) -> JobRequest:
    """A job request (style "shinkai") for ``user`` whose photo is the script ``steps``."""
    return JobRequest(user=user, image=script(**steps), style="shinkai")


def report_of(image: bytes) -> dict[str, Any]:
    """The JSON report a scripted result carries."""
    report: dict[str, Any] = json.loads(image)
    return report


async def eventually(condition: Callable[[], bool], timeout: float = 20.0, step: float = 0.02) -> None:
    """Wait until ``condition()`` holds; fails the test with ``TimeoutError`` after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(step)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals (start, end) open at one instant."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, change in edges:
        open_now += change
        peak = max(peak, open_now)
    return peak


class FakeClock:
    """A monotonic clock tests move by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds
