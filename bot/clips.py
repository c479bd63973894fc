"""A clip as a job: planned once, stylized in chunks of frames on every worker, joined with its sound.

``ClipJob`` is a ``JobHandle`` built on any ``JobQueue``: it submits the clip's steps as ordinary jobs of the same
person, so they run on every worker of the pool (or every worker host through Redis), and a clip weighs in the
round-robin as its chunks do: someone sending one photo meanwhile waits for one chunk at most, not the clip.
Nothing here decodes video (that is the workers' business, see ``bot/clip_steps.py``); the plan is read as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from bot.i18n import N_, Text
from bot.joblog import JobLog
from bot.jobs import (
    JobError,
    JobFailed,
    JobHandle,
    JobKind,
    JobProgress,
    JobQueue,
    JobRequest,
    JobResult,
    JobStage,
    QueueFull,
)

RESUBMIT_DELAY = 0.5  # seconds between tries when the queue is full for a chunk
MAX_CHUNK_WAIT = 120.0  # seconds a chunk may wait for a place in a full queue before the clip gives up
CLIP_BUSY_MESSAGE = N_("The bot got too busy to finish your video. Please try again in a few minutes.")

# Sniffed from the first bytes: which uploads are clips (the photo decoder takes a GIF's first frame otherwise).
ISO_MEDIA_BRANDS = (b"ftyp",)  # MP4, MOV, 3GP: "ftyp" at offset 4
EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # WebM, Matroska
GIF_MAGIC = (b"GIF87a", b"GIF89a")
GIF_FRAME_CONTROL = b"\x21\xf9\x04"  # a graphic control extension: one before each frame of an animation

OnPlanned = Callable[[int], Awaitable[None]]  # called with the number of frames a clip will draw


@dataclass(frozen=True)
class ClipSettings:
    """How clips are cut and split: the limits given to the workers and the size of a chunk."""

    max_seconds: float = 20.0
    max_fps: float = 15.0
    long_side: int = 512
    chunk_frames: int = 12
    chunks_in_flight: int = 2

    def limits(self) -> dict[str, float | int]:
        """The limits as the worker's ``ClipLimits`` takes them."""
        return {"max_seconds": self.max_seconds, "max_fps": self.max_fps, "long_side": self.long_side}


def looks_like_clip(data: bytes) -> bool:
    """True for MP4/MOV/WebM/Matroska and animated GIFs (a GIF of one frame is a photo)."""
    head = data[:16]
    if head[4:8] in ISO_MEDIA_BRANDS and not head[8:12].startswith((b"heic", b"heix", b"mif1", b"avif", b"msf1")):
        return True
    if head.startswith(EBML_MAGIC):
        return True
    return head.startswith(GIF_MAGIC) and data.count(GIF_FRAME_CONTROL) > 1


def chunk_ranges(frames: int, size: int) -> list[tuple[int, int]]:
    """[first, stop) of each chunk of ``size`` frames (the last one shorter)."""
    return [(first, min(first + size, frames)) for first in range(0, frames, max(1, size))]


class ClipJob(JobLog):
    """One clip through the queue as plan -> chunks -> join; a ``JobHandle``. Use ``ClipJob.start``."""

    def __init__(
        self, queue: JobQueue, request: JobRequest, settings: ClipSettings, on_planned: OnPlanned | None = None
    ) -> None:
        super().__init__()
        self._on_planned = on_planned
        self.id = secrets.token_hex(6)
        self.request = request
        self._queue = queue
        self._settings = settings
        self._began = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, queue: JobQueue, request: JobRequest, settings: ClipSettings, on_planned: OnPlanned | None = None
    ) -> ClipJob:
        """Submit the clip's first step (so a full queue refuses the clip at once, as it would a photo) and run
        the rest in the background. The clip holds one place in the queue (its id) for its whole life, so clips
        count against the queue's bound and the person's cap like photos; it gives the place back when it ends.
        ``on_planned(frames)`` is awaited once the frames to draw are known, before any is drawn: a ``JobError``
        it raises (the daily budget, ``bot/budgets.py``) ends the clip with its sentence."""
        job = cls(queue, request, settings, on_planned)
        plan_job = await queue.submit(job._step(JobKind.CLIP_PLAN, {"limits": settings.limits()}))
        job._position = plan_job.position
        job._wait_seconds = plan_job.wait_seconds if isinstance(plan_job, JobLog) else None
        job._task = asyncio.create_task(job._run(plan_job))
        return job

    def _step(self, kind: JobKind, task: dict[str, object], parts: tuple[bytes, ...] = ()) -> JobRequest:
        return replace(self.request, kind=kind, task=json.dumps(task), parts=parts, place=self.id)

    async def _run(self, plan_job: JobHandle) -> None:
        try:
            outcome: JobResult | JobError = await self._steps(plan_job)
        except JobError as error:
            outcome = error
        except Exception as error:  # never leave a person without an answer
            outcome = JobFailed(
                Text("Sorry, something went wrong while drawing your video. ({error})", error=type(error).__name__)
            )
        finally:
            with contextlib.suppress(Exception):  # a place the queue can't hear of expires there (Redis)
                await self._queue.release(self.request.user, self.id)
        self._finish(outcome)

    async def _steps(self, plan_job: JobHandle) -> JobResult:
        await self._relay(plan_job, lambda progress: progress)
        planned = await plan_job.result()
        plan = json.loads(planned.image)
        frames = int(plan["frames"])
        if self._on_planned is not None:
            await self._on_planned(frames)
        self._report(JobProgress(JobStage.STYLIZING, fraction=0.0, frame=0, frames=frames))
        segments = await self._chunks(planned.image.decode(), frames)
        self._report(JobProgress(JobStage.FINISHING, fraction=0.0, frame=frames, frames=frames))
        join = await self._submit(
            self._step(
                JobKind.CLIP_JOIN,
                {"plan": planned.image.decode(), "firsts": [first for first, _ in segments]},
                tuple(segment for _, segment in segments),
            )
        )
        joined = await join.result()
        request = self.request
        return JobResult(
            joined.image,
            joined.mime,
            joined.width,
            joined.height,
            request.style,
            request.strength,
            time.monotonic() - self._began,
            tuple(dict.fromkeys(planned.notes + joined.notes)),
        )

    async def _chunks(self, plan: str, frames: int) -> list[tuple[int, bytes]]:
        """Every chunk's segment, in order; at most ``chunks_in_flight`` submitted at a time."""
        ranges = chunk_ranges(frames, self._settings.chunk_frames)
        drawn = dict.fromkeys(range(len(ranges)), 0.0)  # frames done per chunk, fractional while running
        window = asyncio.Semaphore(max(1, self._settings.chunks_in_flight))

        def count(index: int, size: int) -> Callable[[JobProgress], JobProgress | None]:
            def on_progress(progress: JobProgress) -> JobProgress | None:
                if progress.stage is JobStage.STYLIZING:
                    drawn[index] = progress.fraction * size
                    done = int(sum(drawn.values()))
                    return JobProgress(JobStage.STYLIZING, fraction=done / frames, frame=done, frames=frames)
                return None

            return on_progress

        async def one(index: int, first: int, stop: int) -> tuple[int, bytes]:
            async with window:
                job = await self._submit(self._step(JobKind.CLIP_CHUNK, {"plan": plan, "first": first, "stop": stop}))
                await self._relay(job, count(index, stop - first))
                segment = await job.result()
                drawn[index] = stop - first
                return first, segment.image

        tasks = [asyncio.create_task(one(index, *span)) for index, span in enumerate(ranges)]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()

    async def _submit(self, request: JobRequest) -> JobHandle:
        """Submit a step; while the queue is full, wait and try again (the clip was accepted already)."""
        deadline = time.monotonic() + MAX_CHUNK_WAIT
        while True:
            try:
                return await self._queue.submit(request)
            except QueueFull:
                if time.monotonic() > deadline:
                    raise JobFailed(Text(CLIP_BUSY_MESSAGE)) from None
                await asyncio.sleep(RESUBMIT_DELAY)

    async def _relay(self, job: JobHandle, translate: Callable[[JobProgress], JobProgress | None]) -> None:
        """Pass a step's progress on (translated), up to its end; its outcome is read by the caller."""
        async for progress in job.progress():
            if progress.stage in (JobStage.DONE, JobStage.FAILED):
                return
            if progress.stage is JobStage.QUEUED and self._events and self._events[-1].stage is not JobStage.QUEUED:
                continue  # a later chunk waiting its turn: the clip itself is under way
            event = translate(progress)
            if event is not None:
                self._report(event)
