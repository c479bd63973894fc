"""The fast paths keep the picture: OpenVINO INT8 and bf16/fp32 against eager fp32 on real weights and photos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from animegan import cpu
from animegan.cpu import PRECISION_HELP, PRECISIONS
from animegan.engine import Engine
from animegan.loading import build_generator, converted_path
from animegan.manifest import load_manifest
from animegan.precision import compile_config, fp32_runner, ir_path, optimize
from animegan.quantize import (
    calibration_digest,
    calibration_photos,
    calibration_set,
    default_calibration_dir,
    load_calibration_image,
)

MIN_PSNR_DB = 35.0
# The mean of a channel may move by at most two steps of 8-bit colour: invisible (the first INT8 model, blue and
# dark to the eye, moved a channel's mean by about 17 steps).
MAX_COLOUR_SHIFT = 2.0 / 255
# Held-out photos (odd positions are never calibrated on), in four different shapes.
CHECK_PHOTOS = (
    "animal_dogs_window.jpg",
    "city_skyline_dusk.jpg",
    "flower_yellow_closeup.jpg",
    "portrait_astronaut.jpg",
    "group_friends_bar_night.jpg",
    "portrait_young_man_spiky_hair.jpg",
)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of two [-1, 1] images."""
    return float(10 * torch.log10(4 / ((a - b) ** 2).mean()))


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx2"}, ("openvino-fp32", "int8")),
        ({"avx2", "avx512f", "avx512_vnni"}, ("openvino-fp32", "int8")),
        ({"avx2", "avx_vnni"}, ("openvino-fp32", "int8")),
        ({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}, ("bf16", "int8-bf16", "int8")),
        ({"avx2", "amx_bf16", "amx_int8"}, ("bf16", "int8-bf16", "int8")),
        (set(), ("openvino-fp32",)),
    ],
)
def test_candidate_paths_by_cpu(flags: set[str], expected: tuple[str, ...]) -> None:
    """What ``auto`` times: bf16 paths only where bf16 is native, INT8 wherever AVX2 is."""
    assert cpu.candidate_paths(frozenset(flags)) == expected


def test_this_cpu_is_described_and_every_path_has_its_maths() -> None:
    assert ";" in cpu.describe()
    assert set(PRECISIONS) == set(PRECISION_HELP)
    assert compile_config("int8")["INFERENCE_PRECISION_HINT"] == "f32"  # the fp32 remainder, even on a bf16 CPU
    assert compile_config("openvino-fp32")["INFERENCE_PRECISION_HINT"] == "f32"
    native = "bf16" if cpu.has_native_bf16() else "f32"
    assert compile_config("int8-bf16")["INFERENCE_PRECISION_HINT"] == native
    assert compile_config("bf16")["INFERENCE_PRECISION_HINT"] == native
    with pytest.raises(ValueError, match="measured"):
        optimize(lambda: torch.nn.Identity(), "m", "auto", Path("."))


ISA_PROBE = """
import numpy as np, openvino as ov, openvino.opset13 as ops
image = ops.parameter([1, 32, 16, 16], ov.Type.f32)
conv = ops.convolution(image, np.ones((32, 32, 3, 3), np.float32), [1, 1], [1, 1], [1, 1], [1, 1])
compiled = ov.Core().compile_model(ov.Model([conv], [image]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
info = [op.get_rt_info() for op in compiled.get_runtime_model().get_ordered_ops()]
print(*[i["primitiveType"].astype(str) for i in info if i["layerType"].astype(str) == "Convolution"])
"""


def test_openvino_honours_the_isa_cap_the_bench_emulates_avx2_with() -> None:
    """bench/engine.py measures the AVX2 class in a child with ONEDNN_MAX_CPU_ISA=AVX2: OpenVINO must obey it."""
    import os
    import subprocess
    import sys

    capped = subprocess.run(
        [sys.executable, "-c", ISA_PROBE],
        env={**os.environ, cpu.ISA_LIMIT_VARIABLE: "AVX2"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "avx2" in capped and "avx512" not in capped, capped


def test_calibration_photos_ship_with_their_sources() -> None:
    folder = default_calibration_dir()
    photos = calibration_photos(folder)
    sources = (folder / "SOURCES.md").read_text()
    assert len(photos) >= 30
    assert all(f"`{photo.name}`" in sources for photo in photos)
    assert not any(name in {p.name for p in photos[0::2]} for name in CHECK_PHOTOS)  # never calibrated on


@pytest.mark.parametrize("model_name", ["animeganv3_shinkai", "animeganv2_hayao_int8"])
@pytest.mark.parametrize("precision", ["int8", "int8-bf16", "bf16"])
def test_fast_path_keeps_the_picture_at_any_shape(model_name: str, precision: str, weights_dir: Path) -> None:
    """Held-out photos of several shapes through one compiled model: at least 35 dB and no colour cast."""
    model = load_manifest().models[model_name]
    module = build_generator(model, weights_dir)
    photos = calibration_photos(default_calibration_dir())
    multiple = 4 if model.architecture == "animeganv2" else 8
    fast = optimize(
        lambda: module,
        converted_path(model, weights_dir).stem,
        precision,
        weights_dir,
        lambda: calibration_set(photos, multiple),
        calibration_digest(photos),
    )
    reference = fp32_runner(module)
    shapes = set()
    for name in CHECK_PHOTOS:
        image = torch.from_numpy(load_calibration_image(default_calibration_dir() / name, 384, multiple))
        got, want = fast(image), reference(image)
        shapes.add(tuple(image.shape))
        assert got.shape == want.shape == image.shape
        assert psnr(got, want) >= MIN_PSNR_DB, name
        assert (got - want).mean(dim=(0, 2, 3)).abs().max() / 2 <= MAX_COLOUR_SHIFT, name
    assert len(shapes) >= 4


def test_converted_model_is_cached_on_disk(weights_dir: Path, tmp_path: Path) -> None:
    model = load_manifest().models["animeganv3_shinkai"]
    module = build_generator(model, weights_dir)
    built: list[torch.nn.Module] = []

    def build() -> torch.nn.Module:
        built.append(module)
        return module

    optimize(build, "shinkai-key", "bf16", tmp_path)
    cached = ir_path(tmp_path, "shinkai-key", "bf16")
    assert cached.is_file() and cached.with_suffix(".bin").is_file()
    stamp = cached.stat().st_mtime_ns
    runner = optimize(build, "shinkai-key", "bf16", tmp_path)
    assert cached.stat().st_mtime_ns == stamp  # read, not rewritten
    assert len(built) == 1  # the second call never built the PyTorch module: it converted nothing
    assert runner(torch.zeros(2, 3, 64, 96)).shape == (2, 3, 64, 96)  # batch, height and width are all dynamic


def test_int8_cache_is_keyed_by_the_calibration_photos(weights_dir: Path, tmp_path: Path) -> None:
    photos = calibration_photos(default_calibration_dir())
    assert calibration_digest(photos) != calibration_digest(photos[:-1])
    assert ir_path(tmp_path, "m", "int8", calibration_digest(photos)) != ir_path(tmp_path, "m", "int8", "other")


def test_int8_engine_takes_any_photo_shape(weights_dir: Path) -> None:
    """The int8 path through the public Engine on photos that are not square (this used to fail inside OpenVINO)."""
    engine = Engine(weights_dir, precision="int8", working_size=320)
    for name in ("water_beach_jetty.jpg", "interior_living_room.jpg"):
        result = engine.stylize_bytes((default_calibration_dir() / name).read_bytes())
        assert max(result.width, result.height) == 320 and result.width != result.height


def test_int8_without_calibration_photos_says_so(weights_dir: Path, tmp_path: Path) -> None:
    engine = Engine(weights_dir, precision="int8", calibration_dir=tmp_path)
    with pytest.raises(ValueError, match="calibration photos"):
        engine.load("shinkai")


def _padded_convolution_model() -> object:
    """(1, 3, H, W) -> edge pad -> reflect pad -> quantizer -> 3x3 conv, and a reflect pad that a second op also
    reads (its quantizer must stay where it is)."""
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    image = ops.parameter([1, 3, -1, -1], ov.Type.f32)
    edge = ops.pad(image, np.array([0, 0, 0, 0]), np.array([0, 0, 1, 1]), "edge")
    reflect = ops.pad(edge, np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1]), "reflect")
    low, high = np.array(-0.8, np.float32), np.array(0.9, np.float32)
    quantized = ops.fake_quantize(reflect, low, high, low, high, 256)
    weights = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)
    convolved = ops.convolution(quantized, weights, [1, 1], [0, 0], [0, 0], [1, 1])
    shared = ops.pad(image, np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1]), "reflect")
    kept = ops.convolution(
        ops.fake_quantize(shared, low, high, low, high, 256), weights, [1, 1], [0, 0], [0, 0], [1, 1]
    )
    return ov.Model([convolved, kept, ops.relu(shared)], [image])


def _quantizers_reading_pads(model: object) -> int:
    return sum(
        op.get_type_name() == "FakeQuantize" and op.input_value(0).get_node().get_type_name() == "Pad"
        for op in model.get_ordered_ops()
    )  # type: ignore[attr-defined]


def test_quantizers_move_above_pads_and_the_output_stays_the_same() -> None:
    import numpy as np
    import openvino as ov

    from animegan.quantize import hoist_quantizers_above_pads

    model = _padded_convolution_model()
    before = ov.Core().compile_model(model.clone(), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})  # type: ignore[attr-defined]
    assert hoist_quantizers_above_pads(model) == 1
    assert _quantizers_reading_pads(model) == 1  # the pad with two readers keeps its quantizer
    after = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    rng = np.random.default_rng(1)
    for height, width in ((17, 30), (40, 24)):
        image = rng.uniform(-1.2, 1.2, size=(1, 3, height, width)).astype(np.float32)
        want, got = before(image), after(image)
        assert got[0].shape == (1, 4, height + 1, width + 1)
        for index in range(3):  # float convolutions, fused differently: equal to rounding (the real one is exact)
            np.testing.assert_allclose(got[index], want[index], rtol=0, atol=1e-5)


def test_int8_generator_quantizes_before_its_pads(weights_dir: Path) -> None:
    from animegan.precision import openvino_model

    model = load_manifest().models["animeganv3_shinkai"]
    photos = calibration_photos(default_calibration_dir())
    quantized = openvino_model(
        lambda: build_generator(model, weights_dir),
        converted_path(model, weights_dir).stem,
        "int8",
        weights_dir,
        lambda: calibration_set(photos),
        calibration_digest(photos),
    )
    kinds = [op.get_type_name() for op in quantized.get_ordered_ops()]  # type: ignore[attr-defined]
    assert kinds.count("FakeQuantize") >= 10 and kinds.count("Pad") >= 10
    assert _quantizers_reading_pads(quantized) == 0


def test_subsamples_fold_into_strided_projections_and_the_output_stays_the_same(weights_dir: Path) -> None:
    """Each LADE's ``x[:, :, ::2, ::2]`` before its 1x1 projection becomes the projection's stride: no Slice left,
    the same numbers at even and odd map sizes."""
    import numpy as np
    import openvino as ov

    from animegan.precision import fold_samples_into_projections, to_openvino
    from animegan.v3 import sample_lade_statistics

    model = load_manifest().models["animeganv3_shinkai"]
    sliced = to_openvino(sample_lade_statistics(build_generator(model, weights_dir)))
    folded = sliced.clone()
    assert fold_samples_into_projections(folded) == 13  # the 13 LADE norms
    assert not any(op.get_type_name() == "Slice" for op in folded.get_ordered_ops())
    core, config = ov.Core(), {"INFERENCE_PRECISION_HINT": "f32"}
    before, after = core.compile_model(sliced, "CPU", config), core.compile_model(folded, "CPU", config)
    for name, side in (("city_skyline_dusk.jpg", 256), ("portrait_astronaut.jpg", 200)):  # 200: odd deep maps
        image = load_calibration_image(default_calibration_dir() / name, side)
        np.testing.assert_array_equal(after(image)[0], before(image)[0])
