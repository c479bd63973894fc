"""Helpers for the AnimeGANv3 tests: the released file names, a photo as input, onnxruntime as the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from skimage import transform
from torch import Tensor

V3_ONNX_FILES = (
    "animeganv3_shinkai_37_fp16.onnx",
    "animeganv3_hayao_36_fp16.onnx",
    "animeganv3_jp_face_v1.0_fp16.onnx",
    "animeganv3_portrait_sketch_fp16.onnx",
)
PIXEL_MAX = 255.0


def generator_input(photo: np.ndarray, height: int, width: int) -> Tensor:
    """An RGB uint8 (h, w, 3) photo resized to (1, 3, height, width), float32 in [-1, 1]."""
    image = transform.resize(photo, (height, width), anti_aliasing=True)
    return torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] * 2 - 1


def run_onnxruntime(path: Path, image: Tensor) -> Tensor:
    """Run a released fp16 ONNX file as its README says (float16 NHWC in and out), on one thread.

    Args:
        image: (1, 3, H, W) in [-1, 1].
    Returns:
        (1, 3, H, W) float32.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: image.permute(0, 2, 3, 1).numpy().astype(np.float16)}
    (output,) = session.run(None, feed)
    return torch.from_numpy(output.astype(np.float32)).permute(0, 3, 1, 2)


def to_pixels(output: Tensor) -> np.ndarray:
    """A generator output in [-1, 1] as the float64 pixel values in 0..255 it becomes (not rounded)."""
    return ((output.double().clamp(-1, 1) + 1) * (PIXEL_MAX / 2)).numpy()
