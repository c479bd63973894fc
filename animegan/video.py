"""A clip through the style: plan it (statistics and face tracks over the whole clip), stylize chunks of frames,
join them. Plain functions over the engine's pieces; ``Engine`` (engine.py) wires its models in.

Nothing here depends on the frame being stylized alone: a frame's contrast curves come from the whole clip and
its faces from smoothed tracks, and nothing is random, so the same input frame always gives the same output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import cast

import numpy as np
import torch
from torch import Tensor

from animegan.clip import ClipLimits, ClipPlan, scan
from animegan.clipstats import (
    ClipCurves,
    clahe_curves,
    equalize_with_curves,
    lightness,
    statistics_copy,
    tile_histograms,
)
from animegan.faces import Face
from animegan.facetracks import track_faces
from animegan.images import to_tensor, to_uint8
from animegan.pipeline import ImageFn, StageCallback, no_stage_report, stylize_image

# One crop size for every face of a clip: a face whose size hovers at a threshold would otherwise switch crops.
CLIP_FACE_SIZES = (256,)
# Faces are detected on every other frame: the tracks are interpolated and smoothed over 5 frames anyway, and
# detection is about a fifth of a frame's cost.
FACE_DETECT_EVERY = 2

Detect = Callable[[Tensor], list[Face]]


def plan_clip(
    data: bytes, limits: ClipLimits, detect: Detect | None = None, report: StageCallback = no_stage_report
) -> ClipPlan:
    """Read a clip once: its plan (``clip.scan``) with the clip's contrast curves and, with ``detect``, face tracks.

    Raises:
        UnsupportedClip, ImageTooLarge: the clip can't be used (the message says why).
    """
    histograms: list[Tensor] = []
    detections: list[list[Face]] = []

    def look(pixels: np.ndarray) -> None:
        image = to_tensor(pixels)
        counts = tile_histograms(lightness(statistics_copy(image)))
        if histograms:
            histograms[0] += counts
        else:
            histograms.append(counts)
        if detect is not None:
            detections.append(detect(image) if len(detections) % FACE_DETECT_EVERY == 0 else [])
            report("finding_faces", 0.0)

    report("decoding", 0.0)
    plan = scan(data, limits, look)
    tracks = track_faces(detections, every=FACE_DETECT_EVERY) if detect is not None else []
    return replace(
        plan,
        curves=ClipCurves.from_tensor(clahe_curves(histograms[0])).values,
        faces=[[face_record(face) for face in frame] for frame in tracks],
    )


def face_record(face: Face) -> dict[str, list[float] | list[list[float]]]:
    """A face as the plan's JSON holds it."""
    return {"box": [float(value) for value in face.box], "landmarks": face.landmarks.tolist()}


def face_from_record(record: dict[str, list[float] | list[list[float]]]) -> Face:
    """The face a plan's JSON record holds."""
    x0, y0, x1, y1 = cast("list[float]", record["box"])  # face_record writes the box as four numbers
    box = (float(x0), float(y0), float(x1), float(y1))
    return Face(box=box, landmarks=torch.tensor(record["landmarks"], dtype=torch.float32), score=1.0)


def stylize_frames(
    frames: Iterable[np.ndarray],
    plan: ClipPlan,
    first: int,
    scene: ImageFn,
    *,
    face_model: ImageFn | None = None,
    finish: str = "shinkai",
    strength: float = 1.0,
    scene_side: int | None = None,
    report: StageCallback = no_stage_report,
    total: int | None = None,
) -> Iterator[np.ndarray]:
    """Stylize output frames ``first``, ``first + 1``... of a planned clip, one at a time.

    Args:
        frames: (H, W, 3) uint8 frames from ``clip.read_frames``.
        plan: the clip's plan; its curves and face tracks are used for every frame.
        total: frames expected, for the progress fraction reported after each one.
    Yields:
        (H, W, 3) uint8 stylized frames.
    """
    curves = torch.tensor(plan.curves, dtype=torch.float32) if plan.curves is not None else None
    equalize: ImageFn | None = None
    if curves is not None:
        equalize = partial(equalize_with_curves, curves=curves, strength=strength)
    for index, pixels in enumerate(frames, start=first):
        faces: Sequence[Face] = ()
        if face_model is not None and index < len(plan.faces):
            faces = [face_from_record(record) for record in plan.faces[index]]
        result = stylize_image(
            to_tensor(pixels),
            scene,
            faces=faces,
            face_model=face_model,
            finish=finish,
            strength=strength,
            scene_side=scene_side,
            equalize=equalize,
            face_sizes=CLIP_FACE_SIZES,
        )
        if total:
            report("stylizing", (index - first + 1) / total)
        yield to_uint8(result)
