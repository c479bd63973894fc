"""animegan: photos to anime pictures (AnimeGANv2/v3 generators, face2paint, Shinkai filters) on a plain CPU.

``import animegan`` is cheap: the torch-backed parts load on first use.

    >>> stylizer = animegan.load("shinkai")
    >>> anime = stylizer(Image.open("me.jpg"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from animegan.errors import (
    AnimeganError,
    ImageTooLarge,
    UnknownStyle,
    UnsupportedClip,
    UnsupportedImage,
    WeightsCorrupt,
    WeightsMissing,
)
from animegan.manifest import Style, installed_styles, list_styles

if TYPE_CHECKING:
    from animegan.engine import Engine, Stylizer, load

__all__ = [
    "AnimeganError",
    "Engine",
    "ImageTooLarge",
    "Style",
    "Stylizer",
    "UnknownStyle",
    "UnsupportedClip",
    "UnsupportedImage",
    "WeightsCorrupt",
    "WeightsMissing",
    "installed_styles",
    "list_styles",
    "load",
]

_LAZY = {"Engine", "Stylizer", "load"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from animegan import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'animegan' has no attribute {name!r}")
