"""The worker's side of a clip: run one step (plan, chunk, join, or the whole clip) on the engine.

Imported only inside worker processes (it brings PyAV in); ``bot/clips.py`` writes the tasks these read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from animegan.clip import ClipLimits, ClipPlan
from animegan.mp4 import VIDEO_MIME
from bot.jobs import JobKind, JobRequest

PLAN_MIME = "application/json"


@dataclass(frozen=True)
class StepResult:
    """Shaped like the engine's ``Stylized``: what a worker sends back."""

    data: bytes
    mime: str
    width: int
    height: int
    notes: tuple[str, ...] = ()


def run_clip_step(engine: Any, request: JobRequest, report: Callable[[str, float], None]) -> StepResult:
    """Run the clip step ``request`` asks for; raises the engine's typed errors for an unusable clip."""
    task = json.loads(request.task or "{}")
    options = {"style": request.style, "strength": request.strength, "faces": request.faces, "on_stage": report}
    if request.kind is JobKind.CLIP_PLAN:
        plan = engine.plan_clip(request.image, limits=ClipLimits(**task.get("limits", {})), **options)
        return StepResult(plan.to_json().encode(), PLAN_MIME, plan.width, plan.height, plan.notes)
    if request.kind is JobKind.CLIP_CHUNK:
        plan = ClipPlan.from_json(task["plan"])
        segment = engine.stylize_clip_chunk(request.image, plan, task["first"], task["stop"], **options)
        return StepResult(segment, VIDEO_MIME, plan.width, plan.height)
    if request.kind is JobKind.CLIP_JOIN:
        plan = ClipPlan.from_json(task["plan"])
        joined = engine.join_clip(request.image, plan, list(zip(task["firsts"], request.parts, strict=True)))
        return StepResult(joined.data, joined.mime, joined.width, joined.height, tuple(joined.notes))
    if request.kind is JobKind.CLIP:
        whole = engine.stylize_clip_bytes(request.image, limits=ClipLimits(**task.get("limits", {})), **options)
        return StepResult(whole.data, whole.mime, whole.width, whole.height, tuple(whole.notes))
    raise ValueError(f"not a clip step: {request.kind}")
