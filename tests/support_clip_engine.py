"""A real ``Engine`` whose generators are a photographic negative: every clip step (PyAV decoding, the plan,
chunks, segments, the join with sound) is the real code, only the network is replaced, so the bot's and the front
ends' clip tests run in seconds. Workers build it with ``ANIMEBOT_ENGINE_FACTORY=tests.support_clip_engine:NegativeEngine``.
"""

from __future__ import annotations

from torch import Tensor

from animegan.engine import Engine
from animegan.manifest import ModelFile
from animegan.pipeline import ImageFn

NEGATIVE_ENGINE = "tests.support_clip_engine:NegativeEngine"


def negative(image: Tensor) -> Tensor:
    """(B, 3, H, W) in [0, 1] -> its negative."""
    return 1.0 - image


class NegativeEngine(Engine):
    """``Engine`` with the generator swapped for ``negative`` (nothing is converted or loaded)."""

    def generator(self, model: ModelFile) -> ImageFn:
        return negative
