"""A clip through the style: plan it (statistics and face tracks over the whole clip), stylize chunks of frames,
join them. Plain functions over the engine's pieces; ``Engine`` (engine.py) wires its models in.

Nothing here depends on the frame being stylized alone: a frame's contrast curves come from the whole clip and
its faces from smoothed tracks, and nothing is random, so the same input frame always gives the same output.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
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
from animegan.faces import Face, align_face, crop_size_for
from animegan.facetracks import track_faces
from animegan.filters import equalize_contrast
from animegan.images import to_tensor, to_uint8
from animegan.pipeline import STATISTICS_SIDE, ImageFn, StageCallback, no_stage_report, resize, stylize_image
from animegan.upsampling import generator_size

# One crop size for every face of a clip: a face whose size hovers at a threshold would otherwise switch crops.
CLIP_FACE_SIZES = (256,)
# Frames (and their faces) through the generators per call: a batch amortises each call's fixed costs.
FRAME_BATCH = 4
# OpenVINO computes a batch of one with other kernels than a batch of two or more (0.6/255 apart on average, the
# same for every larger batch): a clip's last lone frame is run twice over, so it does not flicker against the rest.
MIN_GENERATOR_BATCH = 2
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
    batch: int = FRAME_BATCH,
) -> Iterator[np.ndarray]:
    """Stylize output frames ``first``, ``first + 1``... of a planned clip, in order.

    ``batch`` frames at a time go through the scene generator together, and their faces (one crop size for the
    clip) through the face generator together; each frame is then put together by ``stylize_image`` exactly as
    alone, so a frame's pixels do not depend on its neighbours beyond the generator's own batch arithmetic.

    Args:
        frames: (H, W, 3) uint8 frames from ``clip.read_frames``.
        plan: the clip's plan; its curves and face tracks are used for every frame.
        total: frames expected, for the progress fraction reported after each one.
        batch: frames per generator call (1: one by one).
    Yields:
        (H, W, 3) uint8 stylized frames.
    """
    curves = torch.tensor(plan.curves, dtype=torch.float32) if plan.curves is not None else None
    index = first
    for pixels in _batches(frames, max(1, batch)):
        photos = [to_tensor(frame) for frame in pixels]
        prepared = [_equalize(photo, curves, strength) for photo in photos]
        faces = [_faces_of(plan, index + offset) if face_model is not None else [] for offset in range(len(photos))]
        ahead = strength > 0  # at strength 0 stylize_image returns the photo and runs no generator
        scene_run = _BatchRun.of(scene, [_scene_input(image, scene_side) for image in prepared] if ahead else [])
        face_run = None
        if face_model is not None:
            crops = [_face_inputs(image, found) for image, found in zip(prepared, faces, strict=True)] if ahead else []
            face_run = _BatchRun.of(face_model, [crop for frame in crops for crop in frame])
        for photo, ready, found in zip(photos, prepared, faces, strict=True):
            result = stylize_image(
                photo,
                scene_run,
                faces=found,
                face_model=face_run,
                finish=finish,
                strength=strength,
                scene_side=scene_side,
                equalize=_given(ready),
                face_sizes=CLIP_FACE_SIZES,
            )
            index += 1
            if total:
                report("stylizing", (index - first) / total)
            yield to_uint8(result)


def _batches(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """``frames`` in lists of ``size`` (the last one shorter), read lazily; ``frames`` is closed when this is (a
    reader running ahead in a thread stops then, not whenever it is collected)."""
    source = iter(frames)
    try:
        while chunk := list(itertools.islice(source, size)):
            yield chunk
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _faces_of(plan: ClipPlan, index: int) -> list[Face]:
    """The faces the plan paints in output frame ``index``."""
    return [face_from_record(record) for record in plan.faces[index]] if index < len(plan.faces) else []


def _equalize(photo: Tensor, curves: Tensor | None, strength: float) -> Tensor:
    """A frame equalised with the clip's curves, or with its own (as a photo is) when the plan has none."""
    if curves is None:
        return equalize_contrast(photo, strength=strength, max_side=STATISTICS_SIDE)
    return equalize_with_curves(photo, curves, strength)


def _given(prepared: Tensor) -> ImageFn:
    """An ``equalize`` for ``stylize_image`` that hands back the frame equalised already."""
    return lambda photo: prepared


def _scene_input(prepared: Tensor, scene_side: int | None) -> Tensor:
    """What ``stylize_image`` gives the scene generator for a frame (shrunk to ``scene_side`` when larger)."""
    if scene_side and max(prepared.shape[-2:]) > scene_side:
        height, width = prepared.shape[-2:]
        return resize(prepared, generator_size(height, width, scene_side))
    return prepared


def _face_inputs(prepared: Tensor, faces: Sequence[Face]) -> list[Tensor]:
    """What ``paint_faces`` gives the face generator for a frame: its crops stacked, one stack per crop size."""
    if not faces:
        return []
    crops = [align_face(prepared, face, crop_size_for(face, CLIP_FACE_SIZES))[0] for face in faces]
    sides = sorted({crop.shape[-1] for crop in crops})
    return [torch.cat([crop for crop in crops if crop.shape[-1] == side]) for side in sides]


def _run_batched(generator: ImageFn, images: Tensor) -> Tensor:
    """``generator`` on (N, 3, H, W) with N at least ``MIN_GENERATOR_BATCH`` (a single image runs twice)."""
    if images.shape[0] >= MIN_GENERATOR_BATCH:
        return generator(images)
    repeated = images.repeat(MIN_GENERATOR_BATCH, 1, 1, 1)
    return generator(repeated)[: images.shape[0]]


@dataclass(frozen=True)
class _BatchRun:
    """A generator run ahead on a batch of inputs: a call with one of those inputs gets its output back; any other
    input runs the generator (so the result never depends on the batch having guessed right).

    Attributes:
        generator: [0, 1] -> [0, 1], (N, 3, H, W).
        inputs, outputs: each input (Ni, 3, H, W) and the generator's output for it.
    """

    generator: ImageFn
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]

    @classmethod
    def of(cls, generator: ImageFn, inputs: Sequence[Tensor]) -> _BatchRun:
        """Run ``generator`` once per shape over every input of that shape, stacked along the batch."""
        outputs: list[Tensor | None] = [None] * len(inputs)
        for shape in dict.fromkeys(tuple(image.shape[1:]) for image in inputs):
            chosen = [index for index, image in enumerate(inputs) if tuple(image.shape[1:]) == shape]
            result = _run_batched(generator, torch.cat([inputs[index] for index in chosen]))
            edges = list(itertools.accumulate((inputs[index].shape[0] for index in chosen), initial=0))
            for index, (start, stop) in zip(chosen, itertools.pairwise(edges), strict=True):
                outputs[index] = result[start:stop]
        assert all(output is not None for output in outputs)  # every input's shape was run above
        return cls(generator, tuple(inputs), tuple(cast("list[Tensor]", outputs)))

    def __call__(self, image: Tensor) -> Tensor:
        for seen, output in zip(self.inputs, self.outputs, strict=True):
            if seen.shape == image.shape and torch.equal(seen, image):
                return output
        return self.generator(image)
