"""How jobs, progress events and outcomes are written in Redis: flat hashes and stream entries of bytes.

Pure functions, no I/O: the one place that knows the field names, so front ends and worker hosts agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from bot.jobs import (
    JobError,
    JobFailed,
    JobKind,
    JobProgress,
    JobRejected,
    JobRequest,
    JobResult,
    JobStage,
    JobTimedOut,
)

# What Redis answers for a hash or a stream entry: bytes both ways (connections use decode_responses=False).
Fields = Mapping[bytes, bytes]
StreamReplies = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]  # XREAD: (stream, [(id, fields)])

DONE, REJECTED, FAILED, TIMED_OUT = "done", "rejected", "failed", "timed_out"
ERROR_OUTCOMES: dict[type[JobError], str] = {JobRejected: REJECTED, JobTimedOut: TIMED_OUT, JobFailed: FAILED}
ERROR_TYPES: dict[str, type[JobError]] = {name: kind for kind, name in ERROR_OUTCOMES.items()}


def request_fields(request: JobRequest) -> list[bytes | str]:
    """The job's hash fields as name/value pairs (the photo itself included)."""
    return [
        "user",
        request.user,
        "image",
        request.image,
        "style",
        request.style,
        "strength",
        repr(request.strength),
        "faces",
        "1" if request.faces else "0",
        "format",
        request.output_format or "",
        "kind",
        request.kind.value,
        "task",
        request.task,
        "parts",
        str(len(request.parts)),
        *[item for index, part in enumerate(request.parts) for item in (f"part{index}", part)],
    ]


def request_from_fields(fields: Fields) -> JobRequest:
    """The ``JobRequest`` a job's hash holds."""
    return JobRequest(
        user=fields[b"user"].decode(),
        image=fields[b"image"],
        style=fields[b"style"].decode(),
        strength=float(fields[b"strength"]),
        faces=fields[b"faces"] == b"1",
        output_format=fields[b"format"].decode() or None,
        kind=JobKind(fields.get(b"kind", b"photo").decode()),
        task=fields.get(b"task", b"").decode(),
        parts=tuple(fields[f"part{index}".encode()] for index in range(int(fields.get(b"parts", b"0")))),
    )


def outcome_fields(outcome: JobResult | JobError) -> tuple[str, list[bytes | str]]:
    """The outcome's name (``done``, ``rejected``, ``failed``, ``timed_out``) and its result hash fields."""
    if isinstance(outcome, JobError):
        return ERROR_OUTCOMES.get(type(outcome), FAILED), ["message", outcome.message]
    return DONE, [
        "image",
        outcome.image,
        "mime",
        outcome.mime,
        "width",
        str(outcome.width),
        "height",
        str(outcome.height),
        "style",
        outcome.style,
        "strength",
        repr(outcome.strength),
        "seconds",
        repr(outcome.seconds),
        "notes",
        json.dumps(list(outcome.notes)),
    ]


def outcome_from_fields(fields: Fields) -> JobResult | JobError:
    """The ``JobResult`` or ``JobError`` a result hash holds."""
    outcome = fields[b"outcome"].decode()
    if outcome != DONE:
        return ERROR_TYPES.get(outcome, JobFailed)(fields[b"message"].decode())
    return JobResult(
        image=fields[b"image"],
        mime=fields[b"mime"].decode(),
        width=int(fields[b"width"]),
        height=int(fields[b"height"]),
        style=fields[b"style"].decode(),
        strength=float(fields[b"strength"]),
        seconds=float(fields[b"seconds"]),
        notes=tuple(json.loads(fields[b"notes"])),
    )


def progress_fields(progress: JobProgress) -> dict[str, str]:
    """A progress event as a stream entry."""
    fields = {"stage": progress.stage.value, "fraction": repr(progress.fraction)}
    if progress.position is not None:
        fields["position"] = str(progress.position)
    return fields


def progress_from_fields(fields: Fields) -> JobProgress | None:
    """The progress event of a stream entry (``None`` for a stage this version does not know)."""
    try:
        stage = JobStage(fields[b"stage"].decode())
    except ValueError:
        return None
    position = fields.get(b"position")
    fraction = float(fields.get(b"fraction", b"1.0" if stage == JobStage.DONE else b"0.0"))
    return JobProgress(stage, position=int(position) if position else None, fraction=fraction)
