"""Helpers for the AnimeGANv2 tests: the reference weight layout, running the TFLite model, image metrics."""

from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from skimage import transform

TFLITE_HAYAO = "animeganv2_hayao_256_int8.tflite"
TFLITE_SIZE = 256
PIXEL_HALF_RANGE = 127.5
TANH_RANGE = 2.0  # peak-to-peak of [-1, 1], the PSNR peak

# Written down by hand from bryandlee/animegan2-pytorch model.py (``Generator``): ConvNormLReLU children are
# 0 pad, 1 conv, 2 GroupNorm, 3 LeakyReLU; InvertedResBlock.layers are 0 expand ConvNormLReLU, 1 depthwise
# ConvNormLReLU (conv with bias), 2 project conv, 3 GroupNorm; out_layer is 0 conv, 1 tanh.
REFERENCE_STATE_DICT_LAYOUT: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("block_a.0.1.weight", (32, 3, 7, 7)),
    ("block_a.0.2.weight", (32,)),
    ("block_a.0.2.bias", (32,)),
    ("block_a.1.1.weight", (64, 32, 3, 3)),
    ("block_a.1.2.weight", (64,)),
    ("block_a.1.2.bias", (64,)),
    ("block_a.2.1.weight", (64, 64, 3, 3)),
    ("block_a.2.2.weight", (64,)),
    ("block_a.2.2.bias", (64,)),
    ("block_b.0.1.weight", (128, 64, 3, 3)),
    ("block_b.0.2.weight", (128,)),
    ("block_b.0.2.bias", (128,)),
    ("block_b.1.1.weight", (128, 128, 3, 3)),
    ("block_b.1.2.weight", (128,)),
    ("block_b.1.2.bias", (128,)),
    ("block_c.0.1.weight", (128, 128, 3, 3)),
    ("block_c.0.2.weight", (128,)),
    ("block_c.0.2.bias", (128,)),
    ("block_c.1.layers.0.1.weight", (256, 128, 1, 1)),
    ("block_c.1.layers.0.2.weight", (256,)),
    ("block_c.1.layers.0.2.bias", (256,)),
    ("block_c.1.layers.1.1.weight", (256, 1, 3, 3)),
    ("block_c.1.layers.1.1.bias", (256,)),
    ("block_c.1.layers.1.2.weight", (256,)),
    ("block_c.1.layers.1.2.bias", (256,)),
    ("block_c.1.layers.2.weight", (256, 256, 1, 1)),
    ("block_c.1.layers.3.weight", (256,)),
    ("block_c.1.layers.3.bias", (256,)),
    ("block_c.2.layers.0.1.weight", (512, 256, 1, 1)),
    ("block_c.2.layers.0.2.weight", (512,)),
    ("block_c.2.layers.0.2.bias", (512,)),
    ("block_c.2.layers.1.1.weight", (512, 1, 3, 3)),
    ("block_c.2.layers.1.1.bias", (512,)),
    ("block_c.2.layers.1.2.weight", (512,)),
    ("block_c.2.layers.1.2.bias", (512,)),
    ("block_c.2.layers.2.weight", (256, 512, 1, 1)),
    ("block_c.2.layers.3.weight", (256,)),
    ("block_c.2.layers.3.bias", (256,)),
    ("block_c.3.layers.0.1.weight", (512, 256, 1, 1)),
    ("block_c.3.layers.0.2.weight", (512,)),
    ("block_c.3.layers.0.2.bias", (512,)),
    ("block_c.3.layers.1.1.weight", (512, 1, 3, 3)),
    ("block_c.3.layers.1.1.bias", (512,)),
    ("block_c.3.layers.1.2.weight", (512,)),
    ("block_c.3.layers.1.2.bias", (512,)),
    ("block_c.3.layers.2.weight", (256, 512, 1, 1)),
    ("block_c.3.layers.3.weight", (256,)),
    ("block_c.3.layers.3.bias", (256,)),
    ("block_c.4.layers.0.1.weight", (512, 256, 1, 1)),
    ("block_c.4.layers.0.2.weight", (512,)),
    ("block_c.4.layers.0.2.bias", (512,)),
    ("block_c.4.layers.1.1.weight", (512, 1, 3, 3)),
    ("block_c.4.layers.1.1.bias", (512,)),
    ("block_c.4.layers.1.2.weight", (512,)),
    ("block_c.4.layers.1.2.bias", (512,)),
    ("block_c.4.layers.2.weight", (256, 512, 1, 1)),
    ("block_c.4.layers.3.weight", (256,)),
    ("block_c.4.layers.3.bias", (256,)),
    ("block_c.5.1.weight", (128, 256, 3, 3)),
    ("block_c.5.2.weight", (128,)),
    ("block_c.5.2.bias", (128,)),
    ("block_d.0.1.weight", (128, 128, 3, 3)),
    ("block_d.0.2.weight", (128,)),
    ("block_d.0.2.bias", (128,)),
    ("block_d.1.1.weight", (128, 128, 3, 3)),
    ("block_d.1.2.weight", (128,)),
    ("block_d.1.2.bias", (128,)),
    ("block_e.0.1.weight", (64, 128, 3, 3)),
    ("block_e.0.2.weight", (64,)),
    ("block_e.0.2.bias", (64,)),
    ("block_e.1.1.weight", (64, 64, 3, 3)),
    ("block_e.1.2.weight", (64,)),
    ("block_e.1.2.bias", (64,)),
    ("block_e.2.1.weight", (32, 64, 7, 7)),
    ("block_e.2.2.weight", (32,)),
    ("block_e.2.2.bias", (32,)),
    ("out_layer.0.weight", (3, 32, 1, 1)),
)


def generator_input_256(photo: np.ndarray) -> np.ndarray:
    """An RGB uint8 photo (H, W, 3) resized to 256x256 and scaled to float32 [-1, 1], shape (256, 256, 3)."""
    pixels = transform.resize(photo, (TFLITE_SIZE, TFLITE_SIZE), anti_aliasing=True, preserve_range=True).astype(
        np.float32
    )
    return pixels / PIXEL_HALF_RANGE - 1.0


def run_tflite(interpreter: Interpreter, image: np.ndarray) -> np.ndarray:
    """Run a single-input TFLite image model on one (H, W, 3) float32 image; returns its (H, W, 3) output."""
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]


def dequantized_activation(interpreter: Interpreter, index: int) -> tuple[np.ndarray, float]:
    """A tensor the interpreter kept, as float32, and its quantization step (0.0 when it is float)."""
    (detail,) = [detail for detail in interpreter.get_tensor_details() if detail["index"] == index]
    scale, zero_point = detail["quantization"]
    values = interpreter.get_tensor(index).astype(np.float32)
    return ((values - zero_point) * scale if scale else values), float(scale)


def psnr(actual: np.ndarray, expected: np.ndarray, peak: float = TANH_RANGE) -> float:
    """Peak signal-to-noise ratio in dB of two same-shaped arrays."""
    mse = float(np.mean((actual.astype(np.float64) - expected.astype(np.float64)) ** 2))
    return 10.0 * np.log10(peak**2 / mse)


def correlation(actual: np.ndarray, expected: np.ndarray) -> float:
    """Pearson correlation of two same-shaped arrays, flattened."""
    return float(np.corrcoef(actual.ravel(), expected.ravel())[0, 1])
