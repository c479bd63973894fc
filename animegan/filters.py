"""The Shinkai look: colour grade, glow and contrast pre-processing, as pure tensor functions.

Every function takes and returns float tensors of shape (B, 3, H, W) with values in [0, 1], checks the shape,
and treats ``strength=0`` as the identity (1 = the full effect).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from kornia.color import lab_to_rgb, rgb_to_grayscale, rgb_to_lab
from kornia.enhance import equalize_clahe
from kornia.filters import gaussian_blur2d
from torch import Tensor

# Colour grade after the generator: deeper blue skies, slightly lusher greens, a little more mid-tone contrast.
SHINKAI_BLUE_GAIN = 1.1
SHINKAI_GREEN_GAIN = 1.05
# Slope of the contrast curve at mid-grey (1 leaves the image alone).
SHINKAI_CONTRAST_GAIN = 1.2

# Glow: highlights of a blurred copy added back, the bloom of Shinkai's skies and windows.
GLOW_THRESHOLD = 0.8
GLOW_WEIGHT = 0.3
GLOW_KERNEL_SIZE = 15
GLOW_SIGMA = 2.0

# CLAHE before the generator. 2.0 caps each tile's mapping slope at twice the plain one: enough to lift a flat,
# hazy photo, while the large smooth areas the style is made of (sky, walls) do not get their noise and JPEG
# blocks amplified into banding as OpenCV's default of 40 would.
CLAHE_CLIP_LIMIT = 2.0
CLAHE_GRID_SIZE = (8, 8)

# kornia's L* runs over [0, 100]; CLAHE wants [0, 1].
LAB_LIGHTNESS_MAX = 100.0

RGB_CHANNELS = 3
GREEN_INDEX = 1
BLUE_INDEX = {"rgb": 2, "bgr": 0}

ChannelOrder = Literal["rgb", "bgr"]


def _check_image(image: Tensor, name: str = "image") -> None:
    if not isinstance(image, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != RGB_CHANNELS:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {image.dtype}")


def _check_strength(strength: float) -> None:
    # Written so that NaN fails too.
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")


def _towards(full: float, strength: float, identity: float = 1.0) -> float:
    """A parameter moved from its identity value towards ``full`` by ``strength``."""
    return identity + strength * (full - identity)


def equalize_contrast(
    image: Tensor,
    clip_limit: float = CLAHE_CLIP_LIMIT,
    grid_size: tuple[int, int] = CLAHE_GRID_SIZE,
    strength: float = 1.0,
    max_side: int | None = None,
) -> Tensor:
    """Local contrast equalisation (CLAHE) of the lightness only, so hues do not shift.

    The image goes to CIE Lab, ``kornia.enhance.equalize_clahe`` runs on L*, and the result goes back to sRGB.
    With ``max_side``, a bigger image is equalised on a copy whose long side is ``max_side`` and the change is
    upsampled back: the Lab round trip and CLAHE need about ten full-size copies of the image (over a gigabyte at
    4096 px), while CLAHE's per-tile statistics barely change with resolution.

    Args:
        image: sRGB in [0, 1], shape (B, 3, H, W); H and W must each be larger than the grid.
        clip_limit: CLAHE contrast limit (0 disables clipping).
        grid_size: number of tiles along (H, W).
        strength: 0 returns the input, 1 the equalised image, linear in between.
        max_side: largest long side CLAHE itself runs at (None: always full size).

    Returns:
        the equalised image, shape (B, 3, H, W), in [0, 1].
    """
    _check_image(image)
    _check_strength(strength)
    if strength == 0.0:
        return image.clone()
    height, width = image.shape[-2:]
    if max_side is not None and max(height, width) > max_side:
        scale = max_side / max(height, width)
        small = F.interpolate(image, size=(round(height * scale), round(width * scale)), mode="area")
        change = equalize_contrast(small, clip_limit, grid_size, strength) - small
        return (image + F.interpolate(change, size=(height, width), mode="bilinear")).clamp(0.0, 1.0)
    lab = rgb_to_lab(image)
    lightness = lab[:, :1] / LAB_LIGHTNESS_MAX
    equalized = equalize_clahe(lightness.clamp(0.0, 1.0), clip_limit=clip_limit, grid_size=grid_size)
    lab = torch.cat([equalized * LAB_LIGHTNESS_MAX, lab[:, 1:]], dim=1)
    return torch.lerp(image, lab_to_rgb(lab, clip=True), strength)


def sigmoid_contrast(image: Tensor, gain: float) -> Tensor:
    """A logistic contrast curve normalised so that 0, 0.5 and 1 stay exactly where they are.

    ``y = sigmoid(gain * logit(x)) = x**gain / (x**gain + (1 - x)**gain)``: the logistic function in log-odds
    space. Its slope at mid-grey is ``gain``; it is symmetric (``y(1 - x) = 1 - y(x)``) and the fixed points
    are exact by construction (no rounding of a separate normalising constant can move black or white).

    Args:
        image: values in [0, 1] (clamped first), any shape (B, C, H, W).
        gain: 1 is the identity, above 1 adds contrast, between 0 and 1 removes it.

    Returns:
        the curved image, same shape, in [0, 1].
    """
    if image.ndim != 4:
        raise ValueError(f"image must have shape (B, C, H, W), got {tuple(image.shape)}")
    if not gain > 0.0:
        raise ValueError(f"gain must be positive, got {gain}")
    x = image.clamp(0.0, 1.0)
    if gain == 1.0:
        return x
    dark = x.pow(gain)
    light = (1.0 - x).pow(gain)
    return dark / (dark + light)


def grade_colors(
    image: Tensor,
    blue_gain: float = SHINKAI_BLUE_GAIN,
    green_gain: float = SHINKAI_GREEN_GAIN,
    contrast_gain: float = SHINKAI_CONTRAST_GAIN,
    channel_order: ChannelOrder = "rgb",
    strength: float = 1.0,
) -> Tensor:
    """The Shinkai colour grade: boost blue and green, then an S-shaped contrast curve.

    The blue channel is multiplied by ``blue_gain`` and the green one by ``green_gain`` (clamped to [0, 1]),
    then every channel goes through :func:`sigmoid_contrast` with ``contrast_gain``.

    ``strength`` moves each parameter from its neutral value (gain 1) towards the full one, rather than
    blending the finished image with the input: so strength 0.5 is itself a real, milder grade (blue x1.05,
    contrast slope 1.1) with the same exact black, mid-grey and white, clipped once, and the result changes
    smoothly with strength.

    Args:
        image: values in [0, 1], shape (B, 3, H, W), channels in ``channel_order``.
        blue_gain: multiplier of the blue channel at full strength.
        green_gain: multiplier of the green channel at full strength.
        contrast_gain: slope of the contrast curve at mid-grey at full strength (1 = no curve).
        channel_order: "rgb" or "bgr": which end of the channel axis holds blue.
        strength: 0 is the identity, 1 the full grade.

    Returns:
        the graded image, same shape and channel order, in [0, 1].
    """
    _check_image(image)
    _check_strength(strength)
    if channel_order not in BLUE_INDEX:
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    gains = torch.ones(RGB_CHANNELS, dtype=image.dtype, device=image.device)
    gains[BLUE_INDEX[channel_order]] = _towards(blue_gain, strength)
    gains[GREEN_INDEX] = _towards(green_gain, strength)
    tinted = image * gains.view(1, RGB_CHANNELS, 1, 1)
    return sigmoid_contrast(tinted, _towards(contrast_gain, strength))  # which clamps to [0, 1] first


def add_glow(
    image: Tensor,
    threshold: float = GLOW_THRESHOLD,
    weight: float = GLOW_WEIGHT,
    kernel_size: int = GLOW_KERNEL_SIZE,
    sigma: float = GLOW_SIGMA,
    strength: float = 1.0,
) -> Tensor:
    """Add the highlights of a blurred copy back onto the image.

    The copy is blurred with a ``kernel_size`` x ``kernel_size`` gaussian of standard deviation ``sigma``
    (borders replicated). Its highlights are the blurred copy multiplied, pixel by pixel, by
    ``clamp((L - threshold) / (1 - threshold), 0, 1)``, where L is the blurred copy's luma (BT.601 weights
    0.299, 0.587, 0.114): zero where L <= threshold, the whole blurred colour where L = 1, linear in between.
    The ramp, rather than a hard cut at the threshold, keeps a sky that brightens through the threshold free of
    a visible band. The output is ``clamp(image + strength * weight * highlights, 0, 1)``.

    Args:
        image: RGB in [0, 1], shape (B, 3, H, W).
        threshold: luma above which the blurred copy starts to glow, in [0, 1).
        weight: how much of the highlights is added at full strength.
        kernel_size: odd size of the gaussian kernel.
        sigma: standard deviation of the gaussian, in pixels.
        strength: 0 is the identity, 1 the full glow (it scales ``weight``).

    Returns:
        the glowing image, same shape, clamped to [0, 1].
    """
    _check_image(image)
    _check_strength(strength)
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
    blurred = gaussian_blur2d(image, (kernel_size, kernel_size), (sigma, sigma), border_type="replicate")
    ramp = ((rgb_to_grayscale(blurred) - threshold) / (1.0 - threshold)).clamp(0.0, 1.0)
    return (image + (strength * weight) * blurred * ramp).clamp(0.0, 1.0)


def shinkai_finish(image: Tensor, strength: float = 1.0) -> Tensor:
    """The post-processing after the generator: :func:`grade_colors`, then :func:`add_glow`, clamped.

    Args:
        image: RGB in [0, 1], shape (B, 3, H, W).
        strength: 0 is the identity, 1 the full Shinkai finish.

    Returns:
        the finished image, same shape, in [0, 1].
    """
    graded = grade_colors(image, strength=strength)
    return add_glow(graded, strength=strength).clamp(0.0, 1.0)


def blend(photo: Tensor, stylized: Tensor, strength: float) -> Tensor:
    """Linear blend of the photo and its stylized version.

    Args:
        photo: RGB in [0, 1], shape (B, 3, H, W).
        stylized: RGB in [0, 1], same shape as ``photo``.
        strength: 0 gives the photo, 1 the stylized image (both exactly), linear in between.

    Returns:
        the blend, shape (B, 3, H, W).
    """
    _check_image(photo, "photo")
    _check_image(stylized, "stylized")
    _check_strength(strength)
    if photo.shape != stylized.shape:
        raise ValueError(f"photo {tuple(photo.shape)} and stylized {tuple(stylized.shape)} differ in shape")
    return torch.lerp(photo, stylized, strength)


__all__ = [
    "CLAHE_CLIP_LIMIT",
    "CLAHE_GRID_SIZE",
    "GLOW_KERNEL_SIZE",
    "GLOW_SIGMA",
    "GLOW_THRESHOLD",
    "GLOW_WEIGHT",
    "SHINKAI_BLUE_GAIN",
    "SHINKAI_CONTRAST_GAIN",
    "SHINKAI_GREEN_GAIN",
    "add_glow",
    "blend",
    "equalize_contrast",
    "grade_colors",
    "shinkai_finish",
    "sigmoid_contrast",
]
