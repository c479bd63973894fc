"""The fast path keeps the picture: OpenVINO bf16 vs eager fp32 on real weights, any size, cached on disk."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from animegan.loading import build_generator
from animegan.manifest import load_manifest
from animegan.precision import fp32_runner, ir_path, optimize

MIN_PSNR_DB = 35.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of two [-1, 1] images."""
    return float(10 * torch.log10(4 / ((a - b) ** 2).mean()))


@pytest.mark.parametrize("model_name", ["animeganv3_shinkai", "animeganv2_hayao_int8"])
def test_fast_path_matches_fp32_at_any_size(
    model_name: str, weights_dir: Path, tmp_path: Path, astronaut: np.ndarray
) -> None:
    model = load_manifest().models[model_name]
    module = build_generator(model, weights_dir)
    fast = optimize(lambda: module, model_name, "auto", tmp_path)
    reference = fp32_runner(module)
    photo = torch.from_numpy(astronaut).permute(2, 0, 1)[None].float() / 127.5 - 1
    for height, width in [(256, 256), (200, 320)]:  # the converted graph keeps H and W dynamic
        image = torch.nn.functional.interpolate(photo, size=(height, width), mode="area")
        got, want = fast(image), reference(image)
        assert got.shape == want.shape == image.shape
        assert psnr(got, want) >= MIN_PSNR_DB


def test_converted_model_is_cached_on_disk(weights_dir: Path, tmp_path: Path) -> None:
    model = load_manifest().models["animeganv3_shinkai"]
    module = build_generator(model, weights_dir)
    start = time.perf_counter()
    optimize(lambda: module, "shinkai-key", "auto", tmp_path)
    first = time.perf_counter() - start
    cached = ir_path(tmp_path, "shinkai-key", "bf16")
    assert cached.is_file() and cached.with_suffix(".bin").is_file()
    stamp = cached.stat().st_mtime_ns
    start = time.perf_counter()
    runner = optimize(lambda: module, "shinkai-key", "auto", tmp_path)
    second = time.perf_counter() - start
    assert cached.stat().st_mtime_ns == stamp  # read, not rewritten
    assert second < first
    assert runner(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
