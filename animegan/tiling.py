"""Running a fully convolutional generator on any size: padding to its size multiple and overlapping tiles.

Tiles bound the memory a big picture needs; their overlaps are blended with linear ramps so no seam shows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

ImageFn = Callable[[Tensor], Tensor]


def _check_image(image: Tensor) -> None:
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an image of shape (B, 3, H, W), got {tuple(image.shape)}")


def pad_to_multiple(image: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Reflect-pad the bottom and right edges so H and W are multiples of ``multiple``.

    Args:
        image: (B, C, H, W).
    Returns:
        the padded image and the original (H, W), to crop back with ``image[..., :H, :W]``.
    """
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
    return image, (height, width)


def run_padded(generator: ImageFn, image: Tensor, multiple: int) -> Tensor:
    """``generator`` on ``image`` padded to its size multiple, cropped back.

    Args:
        image: (B, 3, H, W) of any H, W.
    Returns:
        (B, 3, H, W).
    """
    padded, (height, width) = pad_to_multiple(image, multiple)
    return generator(padded)[..., :height, :width]


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> Tensor:
    """Blend weights along one axis of a tile: ramps up/down over ``overlap`` px where a neighbour overlaps."""
    weight = torch.ones(length)
    ramp = torch.linspace(0.0, 1.0, overlap + 2)[1:-1]
    if overlap and not at_start:
        weight[:overlap] = ramp
    if overlap and not at_end:
        weight[-overlap:] = ramp.flip(0)
    return weight


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def run_tiled(generator: ImageFn, image: Tensor, tile: int = 512, overlap: int = 64, multiple: int = 8) -> Tensor:
    """``generator`` over overlapping tiles of ``image``, blended with linear ramps in the overlaps.

    Memory is bounded by the tile size (plus the output canvas), whatever the image size. An image that fits in one
    tile runs whole.

    Args:
        image: (1, 3, H, W).
        tile: tile side in px, a multiple of ``multiple``.
        overlap: px shared by neighbouring tiles, less than ``tile // 2``.
    Returns:
        (1, 3, H, W).
    """
    _check_image(image)
    if tile % multiple or not 0 <= overlap < tile // 2:
        raise ValueError(f"tile {tile} must be a multiple of {multiple} and overlap {overlap} < tile / 2")
    height, width = image.shape[-2:]
    if height <= tile and width <= tile:
        return run_padded(generator, image, multiple)
    out = torch.zeros_like(image)
    total = torch.zeros((1, 1, height, width), dtype=image.dtype)
    stride = tile - overlap
    ys, xs = _starts(height, tile, stride), _starts(width, tile, stride)
    for y in ys:
        for x in xs:
            patch = image[..., y : y + tile, x : x + tile]
            result = run_padded(generator, patch, multiple)
            h, w = patch.shape[-2:]
            weight = (
                _ramp(h, overlap, y == ys[0], y == ys[-1])[:, None]
                * _ramp(w, overlap, x == xs[0], x == xs[-1])[None, :]
            ).to(image.dtype)
            out[..., y : y + h, x : x + w] += result * weight
            total[..., y : y + h, x : x + w] += weight
    return out / total


def run_in_strips(operation: ImageFn, image: Tensor, strip: int = 256, halo: int = 16) -> Tensor:
    """A local operation (each output pixel depends on input pixels at most ``halo`` px away) run on horizontal
    strips, so its temporaries are strip-sized; the result equals running it on the whole image.

    Edge handling matches the whole-image run only where the operation's own border mode does (replicate pads
    give the same values at the image's top and bottom; inside, each strip sees ``halo`` real rows around it).

    Args:
        image: (B, C, H, W).
    Returns:
        (B, C, H, W).
    """
    height = image.shape[-2]
    if height <= strip:
        return operation(image)
    out = torch.empty_like(image)
    for top in range(0, height, strip):
        bottom = min(top + strip, height)
        start, stop = max(top - halo, 0), min(bottom + halo, height)
        out[..., top:bottom, :] = operation(image[..., start:stop, :])[..., top - start : top - start + bottom - top, :]
    return out
