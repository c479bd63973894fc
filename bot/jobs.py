"""What a front end hands the service and what it gets back: the contract between adapters and the pool.

Nothing here imports torch or Pillow: adapters and the web server depend on this module only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from bot.i18n import N_, Text

if TYPE_CHECKING:
    from bot.charges import Charge


class JobStage(StrEnum):
    """Where a job is; the engine's own stages are reported between ``QUEUED`` and ``DONE``."""

    QUEUED = "queued"
    DECODING = "decoding"
    FINDING_FACES = "finding_faces"
    STYLIZING = "stylizing"
    FINISHING = "finishing"
    DONE = "done"
    FAILED = "failed"


# English msgids; a front end shows them through its translator.
STAGE_LABELS: dict[JobStage, str] = {
    JobStage.QUEUED: N_("Queued"),
    JobStage.DECODING: N_("Reading the photo"),
    JobStage.FINDING_FACES: N_("Finding faces"),
    JobStage.STYLIZING: N_("Stylizing"),
    JobStage.FINISHING: N_("Finishing"),
    JobStage.DONE: N_("Done"),
    JobStage.FAILED: N_("Failed"),
}


class JobKind(StrEnum):
    """What a job is: a photo, a whole clip, or one step of a clip (the service splits a clip into steps)."""

    PHOTO = "photo"
    CLIP = "clip"
    CLIP_PLAN = "clip_plan"  # read the clip once: size, frame rate, frames, contrast curves, face tracks
    CLIP_CHUNK = "clip_chunk"  # stylize frames [first, stop) into an MP4 segment
    CLIP_JOIN = "clip_join"  # the segments (``parts``) in order with the clip's sound


@dataclass(frozen=True)
class JobRequest:
    """One photo to stylize.

    ``user`` identifies the person for fairness and rate limits, namespaced by front end
    (``"telegram:123"``, ``"discord:456"``, ``"web:127.0.0.1"``).
    """

    user: str
    image: bytes
    style: str
    strength: float = 1.0
    faces: bool = True
    output_format: str | None = None  # "jpeg" | "png" | "webp"; None: PNG when the photo has transparency, else JPEG
    kind: JobKind = JobKind.PHOTO  # for a clip, ``image`` holds the clip's bytes
    task: str = ""  # a clip step's parameters, JSON (see bot/clips.py)
    parts: tuple[bytes, ...] = ()  # a clip join's segments
    place: str = ""  # a clip's id: its steps share the one place in the queue the clip holds (bot/clips.py)
    charge: Charge | None = None  # daily budgets a queue that applies them charges on admission (bot/charges.py)


@dataclass(frozen=True)
class JobProgress:
    """A progress event: ``position`` is the 1-based place in the queue while queued; a clip's also counts frames."""

    stage: JobStage
    position: int | None = None
    fraction: float = 0.0
    frame: int | None = None  # a clip: frames drawn so far...
    frames: int | None = None  # ...of this many
    wait_seconds: float | None = None  # while queued: the estimated wait for a worker (bot/eta.py); None: unknown


@dataclass(frozen=True)
class JobResult:
    """The stylized image, ready to send."""

    image: bytes
    mime: str
    width: int
    height: int
    style: str
    strength: float
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)


class JobError(Exception):
    """A job that could not be done; ``message`` is the plain sentence to show the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QueueFull(JobError):
    """The queue is at its bound: the person is asked to try again shortly."""


class PersonQueueFull(QueueFull):
    """This person already has as many photos waiting as one person may: their own limit, not a full server."""


class RateLimited(JobError):
    """This person sent too many photos too quickly; ``retry_after`` is the wait in seconds, when known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobRejected(JobError):
    """The input itself is unusable (not an image, too large, unknown style...)."""


class JobFailed(JobError):
    """The job crashed its worker twice, or failed for another internal reason."""


class JobTimedOut(JobError):
    """The job ran past its time limit and was cancelled."""


def progress_label(progress: JobProgress) -> str:
    """The stage's words, with the frame count for a clip: "Stylizing frame 37 of 120".

    A msgid or a ``Text``, so a front end says it in the person's language with ``Translator.say``.
    """
    if progress.frames and progress.stage is JobStage.STYLIZING:
        return Text("Stylizing frame {frame} of {frames}", frame=progress.frame or 0, frames=progress.frames)
    return STAGE_LABELS[progress.stage]


class JobHandle(Protocol):
    """A submitted job: its place in the queue, its progress, its one outcome."""

    id: str

    @property
    def position(self) -> int:
        """1-based position in the queue at submission (0 once running)."""
        ...

    def progress(self) -> AsyncIterator[JobProgress]:
        """Progress events, ending after ``DONE`` or ``FAILED``."""
        ...

    async def result(self) -> JobResult:
        """The outcome; raises a ``JobError`` subclass on failure."""
        ...


class JobQueue(Protocol):
    """Anything that runs jobs: the in-process pool today, a Redis-backed queue later."""

    async def submit(self, request: JobRequest) -> JobHandle:
        """Queue a job; raises ``QueueFull`` (``PersonQueueFull`` for one person's cap) or ``RateLimited`` at once
        when it can't be accepted.

        A request with a ``place`` (a clip's step) takes that place with its first step, admitted like a photo; the
        place then counts as one waiting job of the person (against the queue's bound and their cap) until
        ``release``, and the later steps with that place are never refused and not counted again.
        """
        ...

    async def release(self, user: str, place: str) -> None:
        """Give back the place ``user``'s clip held (it has ended); nothing when it holds none."""
        ...
