"""A real ``Engine`` whose generators are a photographic negative: every clip step (PyAV decoding, the plan,
chunks, segments, the join with sound) is the real code, only the network is replaced, so the bot's and the front
ends' clip tests run in seconds. Workers build it with
``ANIMEBOT_ENGINE_FACTORY=tests.support_clip_engine:NegativeEngine``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from animegan.clip import ClipPlan
from animegan.engine import Engine
from animegan.manifest import ModelFile, Style
from animegan.pipeline import ImageFn

NEGATIVE_ENGINE = "tests.support_clip_engine:NegativeEngine"


def negative(image: Tensor) -> Tensor:
    """(B, 3, H, W) in [0, 1] -> its negative."""
    return 1.0 - image


class NegativeEngine(Engine):
    """``Engine`` with the generator swapped for ``negative`` (nothing is converted or loaded), and no face
    detection in a clip's plan (MTCNN on every other frame is most of a plan's time; faces are not the point of the
    tests that use this engine; ``FaceMarkingEngine`` turns it back on)."""

    finds_faces_in_plan = False

    def generator(self, model: ModelFile) -> ImageFn:
        return negative

    def plan_clip(
        self,
        data: bytes,
        style: str | None = None,
        strength: float = 1.0,
        faces: bool = True,
        *args: Any,
        **kwargs: Any,
    ) -> ClipPlan:
        return super().plan_clip(data, style, strength, faces and self.finds_faces_in_plan, *args, **kwargs)


CHUNK_LOG_ENV = "ANIMEBOT_TEST_CHUNK_LOG"  # a file each chunk appends "pid first stop" to
FRAME_DELAY_ENV = "ANIMEBOT_TEST_FRAME_DELAY"  # seconds added per frame, to make a clip take a while


class LoggingNegativeEngine(NegativeEngine):
    """``NegativeEngine`` that logs which process drew each chunk, and may draw slowly (see the two variables)."""

    def stylize_clip_chunk(
        self, data: bytes, plan: ClipPlan, first: int, stop: int, *args: Any, **kwargs: Any
    ) -> bytes:
        time.sleep(float(os.environ.get(FRAME_DELAY_ENV, "0")) * (min(stop, plan.frames) - first))
        log = os.environ.get(CHUNK_LOG_ENV)
        if log:
            with open(log, "a") as out:
                out.write(f"{os.getpid()} {first} {stop}\n")
        return super().stylize_clip_chunk(data, plan, first, stop, *args, **kwargs)


LOGGING_NEGATIVE_ENGINE = "tests.support_clip_engine:LoggingNegativeEngine"


GREEN = (0.0, 1.0, 0.0)
GREEN_MARGIN = 80  # a pixel is "green" when G beats both R and B by this much (out of 255)


def paint_green(image: Tensor) -> Tensor:
    """(B, 3, H, W) -> the same shape, pure green: what the face pass of ``FaceMarkingEngine`` paints."""
    return torch.tensor(GREEN, dtype=image.dtype).view(1, 3, 1, 1).expand_as(image).clone()


class FaceMarkingEngine(LoggingNegativeEngine):
    """Faces on, as people send clips: the plan finds and tracks faces with the real MTCNN, and the face pass
    paints each face pure green over the negative scene, so a front end's test sees its clip's faces were drawn."""

    finds_faces_in_plan = True

    def face_generator(self, style: Style) -> ImageFn | None:
        return paint_green if style.face_model else None


FACE_MARKING_ENGINE = "tests.support_clip_engine:FaceMarkingEngine"


def green_fraction(frame: np.ndarray) -> float:
    """The share of an (H, W, 3) uint8 frame's pixels that ``paint_green`` painted (after H.264's rounding)."""
    pixels = frame.astype(np.int16)
    return float(((pixels[..., 1] - np.maximum(pixels[..., 0], pixels[..., 2])) > GREEN_MARGIN).mean())


def portrait_frames(size: tuple[int, int] = (320, 240)) -> Callable[[int], np.ndarray]:
    """A still clip's frames of the astronaut portrait (NASA, public domain; scikit-image), cut to 4:3: one face."""
    from skimage import data

    from tests.support_clips import still_frames

    return still_frames(data.astronaut()[32:416], size)


PHOTO_DELAY_ENV = "ANIMEBOT_TEST_PHOTO_DELAY"  # seconds added to every photo, to keep a load in flight a while


class SlowPhotosNegativeEngine(NegativeEngine):
    """``NegativeEngine`` whose photos take ``ANIMEBOT_TEST_PHOTO_DELAY`` seconds more: photos and clips through the
    real code, slow enough that a load is still in flight while the chaos test injects its faults."""

    def stylize_bytes(self, data: bytes, *args: Any, **kwargs: Any) -> Any:
        time.sleep(float(os.environ.get(PHOTO_DELAY_ENV, "0")))
        return super().stylize_bytes(data, *args, **kwargs)


SLOW_PHOTOS_NEGATIVE_ENGINE = "tests.support_clip_engine:SlowPhotosNegativeEngine"
