"""Face2paint: stylize each face upright at the face model's size and blend it back into the stylized photo.

A scene generator stylizes the whole photo once; faces come out better from a pass that sees them upright and
large. So each face MTCNN finds is mapped by a least-squares similarity (5 landmarks onto a template) into a
square crop, stylized there by a callable the caller passes in, warped back with the inverse transform and blended
under a feathered elliptical mask.

The template is the FFHQ 5-point alignment used by GFPGAN and CodeFormer (facexlib, MIT): in a 512 x 512 crop the
eyes sit 126 px apart at 47% of the height and the mouth at 72%, which keeps hair above and chin below inside the
square.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import overload

import torch
import torch.nn.functional as F
from kornia.geometry.transform import invert_affine_transform, warp_affine
from torch import Tensor

from animegan.mtcnn import MTCNN

# facexlib's FFHQ template for a 512 x 512 crop, in MTCNN's order: the eye, then the mouth corner, on the image's
# left before the one on its right; the nose between.
FFHQ_TEMPLATE_SIZE = 512
FFHQ_TEMPLATE = (
    (192.98138, 239.94708),
    (318.90277, 240.19360),
    (256.63416, 314.01935),
    (201.26117, 371.41043),
    (313.08905, 371.15118),
)
LANDMARK_COUNT = len(FFHQ_TEMPLATE)
LEFT_EYE, RIGHT_EYE = 0, 1

DEFAULT_FACE_SIZE = 512
# Width of the mask's soft edge as a fraction of the crop side: about 50 px at 512.
DEFAULT_FEATHER = 0.1
# The mask ellipse in fractions of the crop side (x, y). It reaches 0 before the crop's edge, so the crop's
# border never shows; it sits a little low because the neck matters more than the top of the hair.
MASK_CENTRE = (0.5, 0.52)
MASK_RADII = (0.40, 0.46)

# MTCNN's proposal net looks at 12 px windows; asking for smaller faces only makes it upsample the image.
MTCNN_SMALLEST_FACE = 12
# Thresholds of MTCNN's first two stages (its defaults); the caller's threshold is the last stage's.
MTCNN_EARLY_THRESHOLDS = (0.6, 0.7)
PIXEL_RANGE = 255.0
# Extra source pixels around a sampled region so that bilinear taps at its edge read real pixels.
SAMPLING_MARGIN = 2


@dataclass(frozen=True, eq=False)  # eq=False: == on a Tensor field is ambiguous, so faces compare by identity
class Face:
    """One detected face, in pixels of the image it was detected on (x right, y down, pixel centres on integers).

    Attributes:
        box: (x0, y0, x1, y1) of the face.
        landmarks: (5, 2) float32 (x, y) of the left eye, right eye, nose, left and right mouth corner, where
            left and right are as seen in the image.
        score: detector confidence in [0, 1].
    """

    box: tuple[float, float, float, float]
    landmarks: Tensor
    score: float

    def __post_init__(self) -> None:
        if tuple(self.landmarks.shape) != (LANDMARK_COUNT, 2):
            raise ValueError(f"landmarks must have shape (5, 2), got {tuple(self.landmarks.shape)}")

    @property
    def eye_distance(self) -> float:
        """Distance between the eye centres in pixels."""
        return float(torch.linalg.vector_norm(self.landmarks[RIGHT_EYE] - self.landmarks[LEFT_EYE]))

    @property
    def box_side(self) -> float:
        """The shorter side of the box in pixels."""
        x0, y0, x1, y1 = self.box
        return min(x1 - x0, y1 - y0)

    def scaled(self, factor_x: float, factor_y: float | None = None) -> Face:
        """The same face in an image resized by (factor_x, factor_y); factor_y defaults to factor_x."""
        factors = (factor_x, factor_x if factor_y is None else factor_y)
        x0, y0, x1, y1 = self.box
        box = (_rescale(x0, factors[0]), _rescale(y0, factors[1]), _rescale(x1, factors[0]), _rescale(y1, factors[1]))
        landmarks = _rescale(self.landmarks, torch.tensor(factors, dtype=self.landmarks.dtype))
        return Face(box=box, landmarks=landmarks, score=self.score)


@overload
def _rescale(coordinate: float, factor: float) -> float: ...
@overload
def _rescale(coordinate: Tensor, factor: Tensor | float) -> Tensor: ...
def _rescale(coordinate: Tensor | float, factor: Tensor | float) -> Tensor | float:
    # Pixel centres move with the image: the centre of pixel 0 is at 0.5 in continuous coordinates.
    return (coordinate + 0.5) * factor - 0.5


class FaceDetector:
    """Finds faces and their 5 landmarks with MTCNN and facenet-pytorch's weights (``animegan.mtcnn``).

    Args:
        min_face_size: faces whose box's shorter side is below this many pixels (of the image given to
            ``detect``) are skipped. On images larger than ``detect_long_side`` the floor is in effect at least
            ``12 * long side / detect_long_side`` px, MTCNN's smallest window.
        threshold: MTCNN's final-stage confidence a face needs, in (0, 1).
        detect_long_side: detection runs on a copy downscaled to this long side, for speed.
    """

    def __init__(self, min_face_size: int = 40, threshold: float = 0.9, detect_long_side: int = 640) -> None:
        if min_face_size < 1 or detect_long_side < MTCNN_SMALLEST_FACE or not 0.0 < threshold < 1.0:
            raise ValueError("need min_face_size >= 1, detect_long_side >= 12 and 0 < threshold < 1")
        self.min_face_size = min_face_size
        self.threshold = threshold
        self.detect_long_side = detect_long_side
        self._mtcnn: MTCNN | None = None

    def _model(self) -> MTCNN:
        if self._mtcnn is None:
            self._mtcnn = MTCNN((*MTCNN_EARLY_THRESHOLDS, self.threshold))
        return self._mtcnn

    def detect(self, image: Tensor) -> list[Face]:
        """Find every face at least ``min_face_size`` px and ``threshold`` sure, the largest first.

        Args:
            image: RGB in [0, 1], shape (1, 3, H, W) or (3, H, W).
        Returns:
            the faces, landmarks in pixels of ``image``; empty if there is none.
        """
        batch = image[None] if image.ndim == 3 else image
        _check_image(batch, "image")
        height, width = batch.shape[-2:]
        scale = min(1.0, self.detect_long_side / max(height, width))
        small_size = (max(1, round(height * scale)), max(1, round(width * scale)))
        # The smallest face worth scanning for depends on how much this image was shrunk.
        smallest = max(MTCNN_SMALLEST_FACE, math.floor(self.min_face_size * scale))
        with torch.inference_mode():
            small = batch.float()
            if small_size != (height, width):
                small = F.interpolate(small, size=small_size, mode="bilinear", antialias=True, align_corners=False)
            found = self._model().detect(small.clamp(0.0, 1.0) * PIXEL_RANGE, smallest)
        back_x, back_y = width / small_size[1], height / small_size[0]
        faces = [
            Face(box=(x0, y0, x1, y1), landmarks=landmarks.clone(), score=score).scaled(back_x, back_y)
            for (x0, y0, x1, y1), landmarks, score in zip(
                found.boxes.tolist(), found.landmarks, found.scores.tolist(), strict=True
            )
        ]
        return [face for face in faces if face.box_side >= self.min_face_size]


def similarity_transform(src: Tensor, dst: Tensor) -> Tensor:
    """Least-squares similarity (rotation, uniform scale, translation; never a reflection) taking src onto dst.

    Umeyama (1991), "Least-squares estimation of transformation parameters between two point patterns".

    Args:
        src: points (N, 2), N >= 2, not all equal.
        dst: points (N, 2).
    Returns:
        M of shape (2, 3), dtype of ``src``, minimising sum ||M[:, :2] @ src_i + M[:, 2] - dst_i||^2.
    """
    if src.ndim != 2 or src.shape[-1] != 2 or src.shape != dst.shape or src.shape[0] < 2:
        raise ValueError(f"need two (N, 2) point sets with N >= 2, got {tuple(src.shape)} and {tuple(dst.shape)}")
    source, target = src.double(), dst.double()
    source_mean, target_mean = source.mean(0), target.mean(0)
    source_centred, target_centred = source - source_mean, target - target_mean
    source_variance = source_centred.square().sum(1).mean()
    if source_variance <= 0:
        raise ValueError("the source points all coincide")
    covariance = target_centred.T @ source_centred / source.shape[0]
    u, singular, vh = torch.linalg.svd(covariance)
    # Flipping the weakest axis when the best orthogonal map is a reflection keeps the rotation proper.
    signs = torch.ones(2, dtype=torch.float64)
    if torch.linalg.det(u) * torch.linalg.det(vh) < 0:
        signs[1] = -1.0
    rotation = u @ torch.diag(signs) @ vh
    scale = (singular * signs).sum() / source_variance
    translation = target_mean - scale * rotation @ source_mean
    return torch.cat([scale * rotation, translation[:, None]], dim=1).to(src.dtype)


def canonical_landmarks(size: int = DEFAULT_FACE_SIZE) -> Tensor:
    """Where the 5 landmarks go in a size x size crop (the FFHQ template, scaled).

    Returns:
        (5, 2) float32 (x, y) in pixels of the crop.
    """
    return _rescale(torch.tensor(FFHQ_TEMPLATE), size / FFHQ_TEMPLATE_SIZE)


def align_face(image: Tensor, face: Face, size: int = DEFAULT_FACE_SIZE) -> tuple[Tensor, Tensor]:
    """Cut the face out upright: its landmarks land (in the least-squares sense) on ``canonical_landmarks(size)``.

    Only the part of the image the crop covers is read; when the face is shrunk, that part is first resized with
    an antialiasing filter, so the crop does not alias. Outside the image the crop mirrors the image.

    Args:
        image: RGB in [0, 1], shape (1, 3, H, W).
        face: a face in pixels of ``image``.
        size: side of the crop.
    Returns:
        the crop, shape (1, 3, size, size), and M of shape (2, 3) mapping image pixels to crop pixels.
    """
    _check_image(image, "image")
    height, width = image.shape[-2:]
    matrix = similarity_transform(face.landmarks.to(image.dtype), canonical_landmarks(size).to(image.dtype))
    # The antialiasing filter reaches 1 / scale source pixels out.
    margin = SAMPLING_MARGIN + math.ceil(1.0 / min(1.0, _scale_of(matrix)))
    region = _covered_region(invert_affine_transform(matrix[None])[0], size, height, width, margin)
    if region is None:
        raise ValueError("the face lies outside the image")
    x0, y0, x1, y1 = region
    patch, into_crop = _shrink_for_warp(image[..., y0:y1, x0:x1], _compose(matrix, _translation(x0, y0, matrix)))
    crop = warp_affine(patch, into_crop[None], (size, size), padding_mode="reflection", align_corners=True)
    return crop.clamp(0.0, 1.0), matrix


def face_mask(size: int = DEFAULT_FACE_SIZE, feather: float = DEFAULT_FEATHER) -> Tensor:
    """Soft ellipse over the face, hair and chin of an aligned crop: 1 inside, falling smoothly to 0 at its rim.

    The fall is a smoothstep over ``feather * size`` pixels inward from the rim (the shape of a blurred edge
    without the cost of a blur); the rim stays inside the crop, so the crop's border never shows.

    Args:
        size: side of the crop.
        feather: width of the soft edge as a fraction of ``size``, in (0, 0.4].
    Returns:
        (1, 1, size, size) float32 in [0, 1].
    """
    if not 0.0 < feather <= min(MASK_RADII):
        raise ValueError(f"feather must be in (0, {min(MASK_RADII)}], got {feather}")
    coordinates = torch.arange(size, dtype=torch.float32)
    centre_x, centre_y = (fraction * (size - 1) for fraction in MASK_CENTRE)
    radius_x, radius_y = (fraction * size for fraction in MASK_RADII)
    across = ((coordinates - centre_x) / radius_x).square()
    down = ((coordinates - centre_y) / radius_y).square()
    radius = torch.sqrt(across[None, :] + down[:, None])  # 1 on the rim
    depth = (1.0 - radius) * min(radius_x, radius_y)  # pixels inside the rim, close enough for a soft edge
    ramp = (depth / (feather * size)).clamp(0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp))[None, None]


def crop_side_in_image(face: Face) -> float:
    """How many image pixels the side of the face's aligned crop spans (the crop's footprint in the image)."""
    template_eye_span = FFHQ_TEMPLATE[RIGHT_EYE][0] - FFHQ_TEMPLATE[LEFT_EYE][0]
    return face.eye_distance * FFHQ_TEMPLATE_SIZE / template_eye_span


# A crop may be this much smaller than the face's footprint in the picture: a 20 % upscale on the warp back does not
# show, and a big face in a portrait then costs a 256 px pass instead of a 384 px one.
CROP_UNDERSIZE = 0.8


def crop_size_for(face: Face, sizes: Sequence[int]) -> int:
    """The smallest of ``sizes`` that holds the face at about its size in the image (the largest if none does).

    Stylizing a face bigger than it will be shown costs time for pixels the warp back throws away.
    """
    footprint = crop_side_in_image(face) * CROP_UNDERSIZE
    return next((size for size in sorted(sizes) if size >= footprint), max(sizes))


def paint_faces(
    photo: Tensor,
    stylized: Tensor,
    faces: Sequence[Face],
    stylize_face: Callable[[Tensor], Tensor],
    size: int = DEFAULT_FACE_SIZE,
    feather: float = DEFAULT_FEATHER,
    sizes: Sequence[int] | None = None,
) -> Tensor:
    """Replace each face of the stylized photo by the face stylized upright, blended under a feathered mask.

    Faces whose crops have the same size are stylized in one batch. Each face is warped back only into the image
    region its crop covers, so memory stays bounded on big photos. Faces are painted in the given order; where two
    overlap, the later one is on top.

    Args:
        photo: the original, RGB in [0, 1], shape (1, 3, H, W); faces are cut from it.
        stylized: the whole photo already stylized, same shape; it shows wherever there is no face.
        faces: faces in pixels of ``photo``; none gives ``stylized`` back unchanged.
        stylize_face: takes and returns (N, 3, s, s) in [0, 1], s one of the crop sizes.
        size: side of the aligned crop, when ``sizes`` is not given.
        feather: width of the soft edge as a fraction of the crop side (see ``face_mask``).
        sizes: crop sides to choose from per face (``crop_size_for``), e.g. (256, 384, 512).
    Returns:
        a new tensor, shape (1, 3, H, W), in [0, 1].
    """
    _check_image(photo, "photo")
    if stylized.shape != photo.shape:
        raise ValueError(f"stylized must have the photo's shape {tuple(photo.shape)}, got {tuple(stylized.shape)}")
    choices = tuple(sizes) if sizes else (size,)
    crops = [align_face(photo, face, crop_size_for(face, choices)) for face in faces]
    painted: list[Tensor | None] = [None] * len(faces)
    for side in sorted({crop.shape[-1] for crop, _ in crops}):
        batch = [index for index, (crop, _) in enumerate(crops) if crop.shape[-1] == side]
        stacked = torch.cat([crops[index][0] for index in batch])
        result = stylize_face(stacked)
        if result.shape != stacked.shape:
            raise ValueError(f"stylize_face must return shape {tuple(stacked.shape)}, got {tuple(result.shape)}")
        for position, index in enumerate(batch):
            painted[index] = result[position : position + 1]
    result = stylized.clone()
    for (crop, matrix), face_pixels in zip(crops, painted, strict=True):
        assert face_pixels is not None
        _paste_face(result, face_pixels.to(photo), matrix, face_mask(crop.shape[-1], feather).to(photo))
    return result


def _paste_face(result: Tensor, painted: Tensor, matrix: Tensor, mask: Tensor) -> None:
    """Warp a stylized crop back by the inverse of ``matrix`` and blend it into ``result`` in place."""
    height, width = result.shape[-2:]
    back = invert_affine_transform(matrix[None])[0]
    region = _covered_region(back, painted.shape[-1], height, width, SAMPLING_MARGIN)
    if region is None:
        return
    x0, y0, x1, y1 = region
    layers = torch.cat([painted.clamp(0.0, 1.0), mask], dim=1)
    layers, into_region = _shrink_for_warp(layers, _compose(_translation(-x0, -y0, back), back))
    warped = warp_affine(layers, into_region[None], (y1 - y0, x1 - x0), padding_mode="zeros", align_corners=True)
    face_pixels, alpha = warped[:, :3].clamp(0.0, 1.0), warped[:, 3:].clamp(0.0, 1.0)
    result[..., y0:y1, x0:x1] = torch.lerp(result[..., y0:y1, x0:x1], face_pixels, alpha)


def _check_image(image: Tensor, name: str) -> None:
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError(f"{name} must have shape (1, 3, H, W), got {tuple(image.shape)}")


def _scale_of(matrix: Tensor) -> float:
    """How much a (2, 3) similarity enlarges lengths."""
    return math.sqrt(abs(float(torch.linalg.det(matrix[:, :2].double()))))


def _translation(dx: float, dy: float, like: Tensor) -> Tensor:
    """The (2, 3) matrix moving points by (dx, dy), dtype of ``like``."""
    return torch.tensor([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=like.dtype)


def _compose(outer: Tensor, inner: Tensor) -> Tensor:
    """The (2, 3) matrix applying ``inner`` then ``outer``."""
    return torch.cat([outer[:, :2] @ inner[:, :2], outer[:, :2] @ inner[:, 2:] + outer[:, 2:]], dim=1)


def _shrink_for_warp(image: Tensor, matrix: Tensor) -> tuple[Tensor, Tensor]:
    """Ready (B, C, H, W) for a bilinear warp by ``matrix`` (its pixels to the destination's).

    A bilinear warp that shrinks skips source pixels and aliases; so when ``matrix`` shrinks, the image is first
    resized by about that much with an antialiasing filter (bicubic, as Pillow shrinks), and the warp left to do is
    close to 1:1. Bicubic can overshoot [0, 1] a little; callers clamp.

    Returns:
        the image to warp and the matrix from its pixels to the destination's.
    """
    scale = _scale_of(matrix)
    if scale >= 1.0:
        return image, matrix
    height, width = image.shape[-2:]
    size = (max(1, math.ceil(height * scale)), max(1, math.ceil(width * scale)))
    small = F.interpolate(image, size=size, mode="bicubic", antialias=True, align_corners=False)
    factor_x, factor_y = size[1] / width, size[0] / height
    # Where a pixel of the small image sits in the original (see _rescale).
    enlarge = torch.tensor(
        [[1.0 / factor_x, 0.0, 0.5 / factor_x - 0.5], [0.0, 1.0 / factor_y, 0.5 / factor_y - 0.5]], dtype=matrix.dtype
    )
    return small, _compose(matrix, enlarge)


def _covered_region(
    crop_to_image: Tensor, size: int, height: int, width: int, margin: int
) -> tuple[int, int, int, int] | None:
    """The (x0, y0, x1, y1) slice of a H x W image that a size x size crop covers, grown by margin, clipped."""
    last = float(size - 1)
    corners = torch.tensor([[0.0, 0.0], [last, 0.0], [0.0, last], [last, last]], dtype=crop_to_image.dtype)
    mapped = corners @ crop_to_image[:, :2].T + crop_to_image[:, 2]
    low, high = mapped.min(0).values, mapped.max(0).values
    x0 = max(0, math.floor(float(low[0])) - margin)
    y0 = max(0, math.floor(float(low[1])) - margin)
    x1 = min(width, math.ceil(float(high[0])) + 1 + margin)
    y1 = min(height, math.ceil(float(high[1])) + 1 + margin)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1
