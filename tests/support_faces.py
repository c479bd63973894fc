"""Real face photos and the variants the face tests build from them (all bundled with scikit-image, no downloads)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from kornia.enhance import posterize
from kornia.geometry.transform import get_rotation_matrix2d, warp_affine
from skimage import data
from torch import Tensor

from animegan.faces import Face, canonical_landmarks
from animegan.quantize import calibration_photos, default_calibration_dir

POSTERIZE_BITS = 3


def licensed_face_photos(folder: Path | None = None) -> list[Path]:
    """The calibration photos their SOURCES.md marks as showing faces ("**Faces: ..."), in calibration order."""
    folder = folder or default_calibration_dir()
    sources = (folder / "SOURCES.md").read_text()
    marked = set(re.findall(r"^\| `([^`]+)` \|[^\n]*\*\*Faces", sources, flags=re.MULTILINE))
    return [photo for photo in calibration_photos(folder) if photo.name in marked]


def to_tensor(array: object) -> Tensor:
    """(H, W, 3) uint8 array -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.as_tensor(array).permute(2, 0, 1)[None].float() / 255.0


def astronaut() -> Tensor:
    """Eileen Collins, 512 x 512, one face. NASA photo, public domain."""
    return to_tensor(data.astronaut())


def coffee() -> Tensor:
    """A cup of coffee, 400 x 600, no face. Rachel Michetti for Pikolo Espresso Bar, CC0."""
    return to_tensor(data.coffee())


def rotated(image: Tensor, degrees: float) -> tuple[Tensor, Tensor]:
    """Rotate (1, 3, H, W) about its centre, counter-clockwise on screen; edges continue the border.

    Returns:
        the rotated image and the (2, 3) matrix taking old pixel positions to new ones.
    """
    height, width = image.shape[-2:]
    centre = torch.tensor([[(width - 1) / 2, (height - 1) / 2]])
    matrix = get_rotation_matrix2d(centre, torch.tensor([degrees]), torch.ones(1, 2))
    return warp_affine(image, matrix, (height, width), padding_mode="border", align_corners=True), matrix[0]


def flipped(image: Tensor) -> Tensor:
    """Mirror left-right."""
    return image.flip(-1)


def resized(image: Tensor, factor: float) -> Tensor:
    """Resize (1, 3, H, W) by factor (antialiased), like a phone would."""
    height, width = image.shape[-2:]
    size = (round(height * factor), round(width * factor))
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0.0, 1.0)


def side_by_side(left: Tensor, right: Tensor) -> Tensor:
    """Two images of the same height next to each other."""
    return torch.cat([left, right], dim=-1)


def checkerboard(height: int, width: int) -> Tensor:
    """Black and white 1 px squares, shape (1, 3, H, W): all detail, no structure; grey once smoothed."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((xs + ys) % 2).float().expand(1, 3, height, width).contiguous()


def dots(size: tuple[int, int], centres: Tensor, sigma: float) -> Tensor:
    """White Gaussian dots on black at (N, 2) centres, shape (1, 3, H, W)."""
    ys, xs = torch.meshgrid(torch.arange(size[0]).float(), torch.arange(size[1]).float(), indexing="ij")
    squared = (xs[..., None] - centres[:, 0]).square() + (ys[..., None] - centres[:, 1]).square()
    return torch.exp(-squared / (2 * sigma**2)).amax(-1).expand(1, 3, *size).contiguous()


def dot_centres(image: Tensor, near: Tensor, radius: float) -> Tensor:
    """Brightness-weighted centre of the dot within radius of each of the (N, 2) points, shape (N, 2)."""
    brightness = image[0].mean(0)
    ys, xs = torch.meshgrid(
        torch.arange(brightness.shape[0]).float(), torch.arange(brightness.shape[1]).float(), indexing="ij"
    )
    centres = []
    for x, y in near.tolist():
        window = brightness * ((xs - x).square() + (ys - y).square() <= radius**2)
        centres.append(torch.stack([(window * xs).sum(), (window * ys).sum()]) / window.sum())
    return torch.stack(centres)


def template_face(scale: float, angle: float, offset: tuple[float, float], size: int = 512) -> Face:
    """A face whose landmarks are the canonical ones for a size crop, turned, scaled and moved."""
    matrix = rotation_matrix(angle, scale, offset).float()
    landmarks = apply(matrix, canonical_landmarks(size))
    low, high = landmarks.min(0).values, landmarks.max(0).values
    return Face(box=(*low.tolist(), *high.tolist()), landmarks=landmarks, score=1.0)


def apply(matrix: Tensor, points: Tensor) -> Tensor:
    """Apply a (2, 3) affine matrix to (N, 2) points."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def rotation_matrix(angle: float, scale: float, translation: tuple[float, float]) -> Tensor:
    """The (2, 3) similarity with this rotation (radians), scale and translation, in float64."""
    cos, sin = scale * math.cos(angle), scale * math.sin(angle)
    return torch.tensor([[cos, -sin, translation[0]], [sin, cos, translation[1]]], dtype=torch.float64)


def posterized(crop: Tensor) -> Tensor:
    """A visible change that keeps a face's structure: POSTERIZE_BITS bits per channel."""
    return posterize(crop, POSTERIZE_BITS)


def inverted(crop: Tensor) -> Tensor:
    """Colour negative."""
    return 1.0 - crop


def white(crop: Tensor) -> Tensor:
    """All ones: painted over black, the result is the blend weight itself."""
    return torch.ones_like(crop)
