"""A real ``Engine`` whose generators are a photographic negative: every clip step (PyAV decoding, the plan,
chunks, segments, the join with sound) is the real code, only the network is replaced, so the bot's and the front
ends' clip tests run in seconds. Workers build it with
``ANIMEBOT_ENGINE_FACTORY=tests.support_clip_engine:NegativeEngine``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from torch import Tensor

from animegan.clip import ClipPlan
from animegan.engine import Engine
from animegan.manifest import ModelFile
from animegan.pipeline import ImageFn

NEGATIVE_ENGINE = "tests.support_clip_engine:NegativeEngine"


def negative(image: Tensor) -> Tensor:
    """(B, 3, H, W) in [0, 1] -> its negative."""
    return 1.0 - image


class NegativeEngine(Engine):
    """``Engine`` with the generator swapped for ``negative`` (nothing is converted or loaded), and no face
    detection in a clip's plan (MTCNN on every other frame is most of a plan's time; faces are not the point of the
    tests that use this engine)."""

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
        return super().plan_clip(data, style, strength, False, *args, **kwargs)


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
