"""MTCNN (Zhang et al. 2016) with facenet-pytorch's trained weights, without importing facenet-pytorch.

facenet-pytorch's package imports torchvision for one function (``batched_nms``), and torchvision 0.29 imports
``torch._dynamo`` and sympy on the way: 79 MB of a worker's private memory for a detector whose three networks
hold 0.5 MB of weights. So the networks are rebuilt here under the names of the package's weight files
(``facenet_pytorch/data/{pnet,rnet,onet}.pt``, found without running the package's ``__init__``), and the
cascade of ``facenet_pytorch.models.utils.detect_face`` is followed step by step for one image, with a plain
greedy non-maximum suppression instead of torchvision's. Its boxes, landmarks and scores match the package's
(tests/test_faces.py checks them against it on the licensed face photos).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

WEIGHTS_PACKAGE = "facenet_pytorch"
PROPOSAL_CELL = 12  # PNet looks at 12 x 12 windows, two pixels apart
PROPOSAL_STRIDE = 2
REFINE_SIDE = 24
OUTPUT_SIDE = 48
PYRAMID_FACTOR = 0.709
PIXEL_CENTRE, PIXEL_SCALE = 127.5, 0.0078125  # the networks take (pixel - 127.5) / 128
# Overlaps above which the weaker box goes: within one pyramid scale, across scales, after each later stage.
SCALE_OVERLAP, PROPOSAL_OVERLAP, REFINE_OVERLAP, OUTPUT_OVERLAP = 0.5, 0.7, 0.7, 0.7


class ProposalNet(nn.Module):
    """PNet: a face score and a box correction for every 12 x 12 window of an image, fully convolutional."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, H, W) normalised pixels -> box corrections (B, 4, h, w) and face probability (B, h, w)."""
        x = self.pool1(self.prelu1(self.conv1(image)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)[:, 1]


class RefineNet(nn.Module):
    """RNet: re-scores 24 x 24 crops of the proposals and corrects their boxes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, crops: Tensor) -> tuple[Tensor, Tensor]:
        """(N, 3, 24, 24) normalised pixels -> box corrections (N, 4) and face probability (N,)."""
        x = self.pool1(self.prelu1(self.conv1(crops)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The weights were trained (in Caffe) on the map flattened as (W, H, C).
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)[:, 1]


class OutputNet(nn.Module):
    """ONet: the final score, box correction and 5 landmarks from 48 x 48 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, crops: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(N, 3, 48, 48) normalised pixels -> box corrections (N, 4), landmarks (N, 10) as 5 x then 5 y in
        fractions of the box, and face probability (N,)."""
        x = self.pool1(self.prelu1(self.conv1(crops)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)[:, 1]


def weights_folder() -> Path:
    """facenet-pytorch's ``data`` folder, located without importing the package (its ``__init__`` pulls in
    torchvision)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{WEIGHTS_PACKAGE} is not installed: its MTCNN weights are needed to find faces")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _loaded(network: nn.Module, name: str) -> nn.Module:
    network.load_state_dict(torch.load(weights_folder() / f"{name}.pt", map_location="cpu", weights_only=True))
    network.eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network


@dataclass(frozen=True)
class Detections:
    """MTCNN's faces in one image, the largest box first.

    Attributes:
        boxes: (N, 4) float32 (x0, y0, x1, y1) in pixels.
        landmarks: (N, 5, 2) float32 (x, y) of the eyes, the nose and the mouth corners.
        scores: (N,) float32 final-stage probabilities.
    """

    boxes: Tensor
    landmarks: Tensor
    scores: Tensor


class MTCNN:
    """The three-stage cascade of facenet-pytorch's ``MTCNN.detect`` for one image at a time.

    Args:
        thresholds: the probability each stage needs (PNet, RNet, ONet).
    """

    def __init__(self, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)) -> None:
        self.thresholds = thresholds
        self.pnet = _loaded(ProposalNet(), "pnet")
        self.rnet = _loaded(RefineNet(), "rnet")
        self.onet = _loaded(OutputNet(), "onet")

    @torch.inference_mode()
    def detect(self, pixels: Tensor, min_face_size: int = 20) -> Detections:
        """Faces of at least about ``min_face_size`` px.

        Args:
            pixels: RGB in 0..255, float, shape (1, 3, H, W).
            min_face_size: the smallest face side looked for (the pyramid's first scale is 12 / min_face_size).
        """
        if pixels.ndim != 4 or pixels.shape[:2] != (1, 3):
            raise ValueError(f"pixels must have shape (1, 3, H, W), got {tuple(pixels.shape)}")
        image = pixels.float()
        boxes = self._propose(image, min_face_size)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if not len(boxes):
            return Detections(torch.zeros(0, 4), torch.zeros(0, 5, 2), torch.zeros(0))
        boxes, landmarks = self._output(image, boxes)
        order = torch.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), descending=True, stable=True)
        return Detections(boxes[order, :4], landmarks[order], boxes[order, 4])

    def _propose(self, image: Tensor, min_face_size: int) -> Tensor:
        """PNet over the image pyramid: (N, 5) square candidate boxes (x0, y0, x1, y1, score)."""
        height, width = image.shape[-2:]
        kept = []
        for scale in pyramid_scales(height, width, min_face_size):
            scaled = F.interpolate(image, size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
            corrections, probability = self.pnet((scaled - PIXEL_CENTRE) * PIXEL_SCALE)
            candidates = proposal_boxes(corrections[0], probability[0], scale, self.thresholds[0])
            kept.append(candidates[nms(candidates[:, :4], candidates[:, 4], SCALE_OVERLAP)])
        boxes = torch.cat(kept) if kept else torch.zeros(0, 9)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], PROPOSAL_OVERLAP)]
        width_, height_ = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        corrected = torch.stack(
            [
                boxes[:, 0] + boxes[:, 5] * width_,
                boxes[:, 1] + boxes[:, 6] * height_,
                boxes[:, 2] + boxes[:, 7] * width_,
                boxes[:, 3] + boxes[:, 8] * height_,
                boxes[:, 4],
            ],
            dim=1,
        )
        return square(corrected)

    def _refine(self, image: Tensor, boxes: Tensor) -> Tensor:
        """RNet on 24 px crops: the boxes it keeps, corrected and squared, (M, 5)."""
        boxes = boxes[inside(boxes, image)]
        if not len(boxes):
            return boxes
        corrections, probability = self.rnet(crops(image, boxes, REFINE_SIDE))
        passed = probability > self.thresholds[1]
        boxes = torch.cat([boxes[passed, :4], probability[passed, None]], dim=1)
        corrections = corrections[passed]
        pick = nms(boxes[:, :4], boxes[:, 4], REFINE_OVERLAP)
        return square(apply_corrections(boxes[pick], corrections[pick]))

    def _output(self, image: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
        """ONet on 48 px crops: the final boxes (K, 5) and their landmarks (K, 5, 2)."""
        boxes = boxes[inside(boxes, image)]
        if not len(boxes):
            return boxes, torch.zeros(0, 5, 2)
        corrections, points, probability = self.onet(crops(image, boxes, OUTPUT_SIDE))
        passed = probability > self.thresholds[2]
        boxes = torch.cat([boxes[passed, :4], probability[passed, None]], dim=1)
        corrections, points = corrections[passed], points[passed]
        box_width = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        box_height = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        landmarks = torch.stack(
            [box_width * points[:, :5] + boxes[:, 0:1] - 1, box_height * points[:, 5:] + boxes[:, 1:2] - 1], dim=2
        )
        boxes = apply_corrections(boxes, corrections)
        pick = nms_by_smaller_area(boxes[:, :4], boxes[:, 4], OUTPUT_OVERLAP)
        return boxes[pick], landmarks[pick]


@cache
def shared_detector(thresholds: tuple[float, float, float]) -> MTCNN:
    """One loaded cascade per set of thresholds for the whole process."""
    return MTCNN(thresholds)


def pyramid_scales(height: int, width: int, min_face_size: int) -> list[float]:
    """The image scales PNet runs at: a face of ``min_face_size`` px first fills its 12 px window, then each scale
    is 0.709 of the last while the image's short side stays at least 12 px."""
    scale = PROPOSAL_CELL / min_face_size
    short_side = min(height, width) * scale
    scales = []
    while short_side >= PROPOSAL_CELL:
        scales.append(scale)
        scale *= PYRAMID_FACTOR
        short_side *= PYRAMID_FACTOR
    return scales


def proposal_boxes(corrections: Tensor, probability: Tensor, scale: float, threshold: float) -> Tensor:
    """The windows PNet scored at least ``threshold``, in pixels of the unscaled image.

    Args:
        corrections: (4, h, w) box corrections.
        probability: (h, w) face probabilities.
    Returns:
        (N, 9): x0, y0, x1, y1, score, then the 4 corrections.
    """
    mask = probability >= threshold
    cells = mask.nonzero().to(corrections.dtype).flip(1)  # (x, y) of each window
    first = ((PROPOSAL_STRIDE * cells + 1) / scale).floor()
    last = ((PROPOSAL_STRIDE * cells + PROPOSAL_CELL) / scale).floor()
    return torch.cat([first, last, probability[mask][:, None], corrections[:, mask].T], dim=1)


def apply_corrections(boxes: Tensor, corrections: Tensor) -> Tensor:
    """Move each box's edges by its corrections, in fractions of its (inclusive) width and height; (N, 5)."""
    width = boxes[:, 2] - boxes[:, 0] + 1
    height = boxes[:, 3] - boxes[:, 1] + 1
    sides = torch.stack([width, height, width, height], dim=1)
    return torch.cat([boxes[:, :4] + corrections * sides, boxes[:, 4:]], dim=1)


def square(boxes: Tensor) -> Tensor:
    """Each (N, 5+) box grown to a square about its centre, side = its longer side."""
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(width, height)
    result = boxes.clone()
    result[:, 0] = boxes[:, 0] + width * 0.5 - side * 0.5
    result[:, 1] = boxes[:, 1] + height * 0.5 - side * 0.5
    result[:, 2:4] = result[:, :2] + side[:, None]
    return result


def clipped_corners(boxes: Tensor, image: Tensor) -> Tensor:
    """(N, 4) integer x0, y0, x1, y1 of the boxes clipped to the image, 1-based and inclusive as MTCNN counts."""
    height, width = image.shape[-2:]
    corners = boxes[:, :4].trunc().int()
    low = corners[:, :2].clamp(min=1)
    high = torch.stack([corners[:, 2].clamp(max=width), corners[:, 3].clamp(max=height)], dim=1)
    return torch.cat([low, high], dim=1)


def inside(boxes: Tensor, image: Tensor) -> Tensor:
    """(N,) bool: the box keeps at least one pixel once clipped to the image."""
    corners = clipped_corners(boxes, image)
    return (corners[:, 2] > corners[:, 0] - 1) & (corners[:, 3] > corners[:, 1] - 1)


def crops(image: Tensor, boxes: Tensor, side: int) -> Tensor:
    """Each box's pixels (clipped to the image, see ``clipped_corners``), area-resized to side x side.

    Returns:
        (N, 3, side, side) normalised pixels.
    """
    resized = [
        F.interpolate(image[:, :, top - 1 : bottom, left - 1 : right], size=(side, side), mode="area")
        for left, top, right, bottom in clipped_corners(boxes, image).tolist()
    ]
    return (torch.cat(resized) - PIXEL_CENTRE) * PIXEL_SCALE


def nms(boxes: Tensor, scores: Tensor, overlap: float) -> Tensor:
    """Greedy non-maximum suppression by intersection over union, as ``torchvision.ops.nms``.

    Args:
        boxes: (N, 4) x0, y0, x1, y1.
        scores: (N,).
        overlap: a box whose IoU with a kept, higher-scoring box exceeds this is dropped.
    Returns:
        indices of the kept boxes, highest score first.
    """
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = torch.argsort(scores, descending=True, stable=True)
    keep = []
    while order.numel():
        best, others = order[0], order[1:]
        keep.append(int(best))
        width = torch.minimum(boxes[best, 2], boxes[others, 2]) - torch.maximum(boxes[best, 0], boxes[others, 0])
        height = torch.minimum(boxes[best, 3], boxes[others, 3]) - torch.maximum(boxes[best, 1], boxes[others, 1])
        inter = width.clamp(min=0) * height.clamp(min=0)
        order = others[inter / (areas[best] + areas[others] - inter) <= overlap]
    return torch.tensor(keep, dtype=torch.long)


def nms_by_smaller_area(boxes: Tensor, scores: Tensor, overlap: float) -> Tensor:
    """Greedy suppression by intersection over the smaller box's area (pixel-inclusive sides), MTCNN's last step.

    Done in numpy as facenet-pytorch does: its final boxes often tie at a score of 1.0, and which of them survives
    depends on the order ``np.argsort`` gives ties.
    """
    corners, values = boxes.numpy(), scores.numpy()
    x0, y0, x1, y1 = (corners[:, i] for i in range(4))
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(values)  # ascending: the best box is the last
    keep = []
    while order.size:
        best, others = order[-1], order[:-1]
        keep.append(int(best))
        width = np.maximum(0.0, np.minimum(x1[best], x1[others]) - np.maximum(x0[best], x0[others]) + 1)
        height = np.maximum(0.0, np.minimum(y1[best], y1[others]) - np.maximum(y0[best], y0[others]) + 1)
        inter = width * height
        order = others[inter / np.minimum(areas[best], areas[others]) <= overlap]
    return torch.tensor(keep, dtype=torch.long)
