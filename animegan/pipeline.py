"""The path of one photo through the engine, as plain functions: prepare, stylize, paint faces, finish, blend.

``Engine`` (engine.py) owns the loaded models and calls these; nothing here loads anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from animegan.faces import Face, paint_faces
from animegan.filters import blend, equalize_contrast, shinkai_finish
from animegan.heap import give_back_free_heap
from animegan.tiling import run_in_strips
from animegan.upsampling import generator_size, guided_upsample

ImageFn = Callable[[Tensor], Tensor]
StageCallback = Callable[[str, float], None]

MIN_LONG_SIDE = 256  # AnimeGAN needs some context: tiny photos are upscaled to this first
MAX_OUTPUT_SIDE = 4096
# A face is stylized at the smallest of these that holds it at its size in the output (see faces.crop_size_for).
FACE_CROP_SIZES = (256, 384, 512)
# Bigger pictures are equalised at this size and finished in strips, so memory stays bounded (see the functions).
STATISTICS_SIDE = 1024
FINISH_STRIP_ROWS = 256
FINISH_HALO_ROWS = 16  # the glow's 15x15 blur reads 7 rows each way


@dataclass(frozen=True)
class Stylized:
    """An encoded result, ready to send."""

    data: bytes
    mime: str
    width: int
    height: int
    notes: tuple[str, ...] = ()
    faces: int = 0


def no_stage_report(stage: str, fraction: float) -> None:
    """The default progress callback: ignores reports."""


def target_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(H, W) scaled so the long side is ``long_side`` at most (and at least ``MIN_LONG_SIDE``), aspect kept."""
    longest = max(height, width)
    goal = min(max(longest, MIN_LONG_SIDE), long_side, MAX_OUTPUT_SIDE)
    if goal == longest:
        return height, width
    scale = goal / longest
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Area-averaged downscale or bicubic upscale of (B, 3, H, W) in [0, 1] to ``size``."""
    if tuple(image.shape[-2:]) == size:
        return image
    shrinking = size[0] < image.shape[-2]
    if shrinking:
        return F.interpolate(image, size=size, mode="area")
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False).clamp(0, 1)


def to_generator_range(generator: ImageFn) -> ImageFn:
    """Wrap a generator working in [-1, 1] so it takes and returns [0, 1] images."""

    def run(image: Tensor) -> Tensor:
        return ((generator(image * 2 - 1) + 1) / 2).clamp(0, 1)

    return run


@torch.inference_mode()
def stylize_image(
    photo: Tensor,
    scene: ImageFn,
    *,
    faces: Sequence[Face] = (),
    face_model: ImageFn | None = None,
    finish: str = "shinkai",
    strength: float = 1.0,
    scene_side: int | None = None,
    report: StageCallback = no_stage_report,
    equalize: ImageFn | None = None,
    face_sizes: Sequence[int] = FACE_CROP_SIZES,
    trim_heap: bool = False,
) -> Tensor:
    """The style applied to one photo.

    Args:
        photo: RGB in [0, 1], shape (1, 3, H, W), already at working size.
        scene: whole-image generator, [0, 1] -> [0, 1], any H, W (tiling/padding is its business).
        faces: faces found in ``photo``; each is stylized aligned by ``face_model`` and blended back.
        finish: "shinkai" for the Shinkai grade and glow, "none" for the network's own colours.
        strength: 0 returns ``photo``, 1 the full style; both network output and filters fade in between.
        scene_side: when the photo's long side is larger, the scene generator runs at this long side and its result
            is brought up by ``guided_upsample`` (faces are still painted at their full size).
        equalize: the contrast equalisation before the generator (default: CLAHE on the photo's own statistics;
            a clip passes one built from the whole clip's, so its frames do not flicker).
        face_sizes: crop sides faces are stylized at (a clip uses one, so a face's crop never switches size).
        trim_heap: give freed heap pages back between the passes (``animegan.heap``): a lower peak for a photo,
            a few milliseconds a clip's frames need not pay.
    Returns:
        (1, 3, H, W) in [0, 1].
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if strength == 0.0:
        return photo
    if equalize is None:
        prepared = equalize_contrast(photo, strength=strength, max_side=STATISTICS_SIDE)
    else:
        prepared = equalize(photo)
    if trim_heap:  # the equalisation's temporaries, before the generator's buffers (see animegan.heap)
        give_back_free_heap()
    report("stylizing", 0.0)
    if scene_side and max(prepared.shape[-2:]) > scene_side:
        height, width = prepared.shape[-2:]
        small = resize(prepared, generator_size(height, width, scene_side))
        styled = guided_upsample(scene(small), prepared)
        del small
    else:
        styled = scene(prepared)
    if faces and face_model is not None:
        if trim_heap:  # the upsampling's temporaries, before the face pass grows the generator's buffers
            give_back_free_heap()
        report("stylizing", 0.7)
        styled = paint_faces(prepared, styled, faces, face_model, sizes=face_sizes)
    report("finishing", 0.0)
    del prepared
    if finish == "shinkai":
        styled = run_in_strips(
            lambda rows: shinkai_finish(rows, strength=strength), styled, FINISH_STRIP_ROWS, FINISH_HALO_ROWS
        )
    return blend(photo, styled, strength)
