"""Contrast equalisation from a whole clip's statistics, so a clip's frames are all treated alike.

A photo gets CLAHE computed on itself (``filters.equalize_contrast``). Done per frame, a clip flickers: a bright
object entering one tile changes that tile's curve for every pixel in it. Here the same contrast-limited tile
curves are built from the lightness histograms of every frame of the clip together, then applied to each frame.
Pure tensor functions; ``ClipCurves`` is the clip's statistics in a form that travels between processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.color import lab_to_rgb, rgb_to_lab
from torch import Tensor

from animegan.filters import CLAHE_CLIP_LIMIT, CLAHE_GRID_SIZE, LAB_LIGHTNESS_MAX

HISTOGRAM_BINS = 256
# Statistics are gathered on a copy this size: tile histograms hardly change with resolution.
STATISTICS_SIDE = 256
CURVE_DECIMALS = 4  # 1/10000 of the lightness range: far below one 8-bit step


@dataclass(frozen=True)
class ClipCurves:
    """A clip's tile curves: ``values[ty][tx][bin]`` is the equalised lightness in [0, 1] of that input bin."""

    values: list[list[list[float]]]

    def tensor(self) -> Tensor:
        """The curves as a (GH, GW, BINS) float32 tensor."""
        return torch.tensor(self.values, dtype=torch.float32)

    @classmethod
    def from_tensor(cls, curves: Tensor) -> ClipCurves:
        """Curves of shape (GH, GW, BINS), rounded to ``CURVE_DECIMALS`` (so they survive JSON unchanged)."""
        return cls(curves.round(decimals=CURVE_DECIMALS).tolist())


def lightness(image: Tensor) -> Tensor:
    """CIE L* scaled to [0, 1].

    Args:
        image: sRGB in [0, 1], shape (B, 3, H, W).
    Returns:
        shape (B, 1, H, W) in [0, 1].
    """
    _check_rgb(image)
    return (rgb_to_lab(image)[:, :1] / LAB_LIGHTNESS_MAX).clamp(0.0, 1.0)


def tile_histograms(light: Tensor, grid: tuple[int, int] = CLAHE_GRID_SIZE, bins: int = HISTOGRAM_BINS) -> Tensor:
    """Pixel counts per tile and lightness bin, summed over the batch.

    Args:
        light: lightness in [0, 1], shape (B, 1, H, W), H >= grid[0] and W >= grid[1].
        grid: tiles along (H, W); pixel row y is in tile ``y * GH // H``.
        bins: histogram bins over [0, 1].
    Returns:
        counts, shape (GH, GW, bins), float32.
    """
    if light.ndim != 4 or light.shape[1] != 1:
        raise ValueError(f"light must have shape (B, 1, H, W), got {tuple(light.shape)}")
    height, width = light.shape[-2:]
    rows = torch.arange(height) * grid[0] // height
    cols = torch.arange(width) * grid[1] // width
    tile = (rows[:, None] * grid[1] + cols[None, :]).expand_as(light[:, 0])
    level = (light[:, 0] * (bins - 1)).round().long().clamp(0, bins - 1)
    flat = torch.bincount((tile * bins + level).reshape(-1), minlength=grid[0] * grid[1] * bins)
    return flat.reshape(grid[0], grid[1], bins).float()


def clahe_curves(histograms: Tensor, clip_limit: float = CLAHE_CLIP_LIMIT) -> Tensor:
    """Contrast-limited equalisation curves of tile histograms.

    Each histogram is clipped at ``clip_limit`` times its mean bin height, the clipped excess is spread over all
    bins evenly (as kornia's and OpenCV's CLAHE do), and the curve is the normalised cumulative sum.

    Args:
        histograms: counts, shape (GH, GW, BINS); an empty tile gets the identity curve.
        clip_limit: the cap as a multiple of the mean bin height (0: no clipping).
    Returns:
        curves mapping bin -> lightness in [0, 1], shape (GH, GW, BINS), non-decreasing along the last axis.
    """
    if histograms.ndim != 3:
        raise ValueError(f"histograms must have shape (GH, GW, BINS), got {tuple(histograms.shape)}")
    bins = histograms.shape[-1]
    totals = histograms.sum(-1, keepdim=True)
    if clip_limit > 0:
        cap = clip_limit * totals / bins
        clipped = torch.minimum(histograms, cap)
        histograms = clipped + (totals - clipped.sum(-1, keepdim=True)) / bins
    cumulative = histograms.cumsum(-1) / totals.clamp(min=1e-12)
    identity = torch.linspace(0.0, 1.0, bins).expand_as(cumulative)
    return torch.where(totals > 0, cumulative, identity).clamp(0.0, 1.0)


def apply_tile_curves(light: Tensor, curves: Tensor) -> Tensor:
    """Map lightness through tile curves, interpolated bilinearly between tile centres (no seams at tile edges).

    Args:
        light: lightness in [0, 1], shape (B, 1, H, W).
        curves: shape (GH, GW, BINS), from ``clahe_curves``.
    Returns:
        mapped lightness, shape (B, 1, H, W), in [0, 1].
    """
    grid_h, grid_w, bins = curves.shape
    height, width = light.shape[-2:]
    level = (light * (bins - 1)).round().long().clamp(0, bins - 1)
    y0, y1, wy = _neighbours(height, grid_h)
    x0, x1, wx = _neighbours(width, grid_w)
    flat = curves.reshape(-1)

    def look_up(ty: Tensor, tx: Tensor) -> Tensor:
        return flat[(ty[:, None] * grid_w + tx[None, :]) * bins + level]

    top = torch.lerp(look_up(y0, x0), look_up(y0, x1), wx[None, :])
    bottom = torch.lerp(look_up(y1, x0), look_up(y1, x1), wx[None, :])
    return torch.lerp(top, bottom, wy[:, None])


def equalize_with_curves(image: Tensor, curves: Tensor, strength: float = 1.0) -> Tensor:
    """``filters.equalize_contrast`` with curves given from outside (a whole clip's) instead of the image's own.

    Args:
        image: sRGB in [0, 1], shape (B, 3, H, W).
        curves: shape (GH, GW, BINS).
        strength: 0 returns the input, 1 the equalised image, linear in between.
    Returns:
        shape (B, 3, H, W) in [0, 1]; only lightness changes, hues stay.
    """
    _check_rgb(image)
    if strength == 0.0:
        return image.clone()
    lab = rgb_to_lab(image)
    mapped = apply_tile_curves((lab[:, :1] / LAB_LIGHTNESS_MAX).clamp(0.0, 1.0), curves)
    equalized = lab_to_rgb(torch.cat([mapped * LAB_LIGHTNESS_MAX, lab[:, 1:]], dim=1), clip=True)
    return torch.lerp(image, equalized, strength)


def statistics_copy(image: Tensor, side: int = STATISTICS_SIDE) -> Tensor:
    """An area-averaged copy whose long side is ``side`` at most, for gathering histograms.

    Args:
        image: shape (B, 3, H, W).
    Returns:
        shape (B, 3, h, w).
    """
    height, width = image.shape[-2:]
    scale = side / max(height, width)
    if scale >= 1.0:
        return image
    return F.interpolate(image, size=(max(1, round(height * scale)), max(1, round(width * scale))), mode="area")


def _neighbours(length: int, tiles: int) -> tuple[Tensor, Tensor, Tensor]:
    """For each pixel along an axis: the tile centres either side and the weight of the second one."""
    centre = (torch.arange(length, dtype=torch.float32) + 0.5) * tiles / length - 0.5
    first = centre.floor().clamp(0, tiles - 1)
    second = (first + 1).clamp(max=tiles - 1)
    weight = (centre - first).clamp(0.0, 1.0)
    return first.long(), second.long(), weight


def _check_rgb(image: Tensor) -> None:
    if image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
        raise ValueError(f"image must be a float tensor of shape (B, 3, H, W), got {image.dtype} {tuple(image.shape)}")
