"""``auto`` by measurement: the fastest faithful path wins, the decision is cached and keyed, a forced path holds.

Candidates are real OpenVINO models (small ones built here, and the real generator); nothing under test is mocked.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
import torch
import torch.nn.functional as F

from animegan import autotune, cpu
from animegan.autotune import Decision, Platform, choose, decide, decision_file, decision_key, load_decision
from animegan.engine import Engine
from animegan.loading import build_generator, converted_path
from animegan.manifest import load_manifest
from animegan.quantize import calibration_digest, calibration_photos, calibration_set, default_calibration_dir
from animegan.tiling import ImageFn

CHANNELS = 32
RNG = np.random.default_rng(0)
STEM = (RNG.normal(size=(3, 3, 3, 3)) * 0.3).astype(np.float32)
WIDE = np.zeros((CHANNELS, 3, 1, 1), np.float32)
WIDE[:3, :, 0, 0] = np.eye(3)
NARROW = np.ascontiguousarray(WIDE.transpose(1, 0, 2, 3))
IDENTITY = np.zeros((CHANNELS, CHANNELS, 3, 3), np.float32)
IDENTITY[np.arange(CHANNELS), np.arange(CHANNELS), 1, 1] = 1.0


def reference(image: torch.Tensor) -> torch.Tensor:
    """Eager fp32: tanh of a 3x3 convolution, (1, 3, H, W) -> (1, 3, H, W)."""
    return torch.tanh(F.conv2d(image, torch.from_numpy(STEM), padding=1))


def openvino_candidate(detour: int, offset: float = 0.0, scramble: bool = False) -> ImageFn:
    """A real OpenVINO model of ``reference``: the same maths after ``detour`` identity 3x3 convolutions over
    ``CHANNELS`` channels (exact, but they take time), ``offset`` added to the red channel, or (``scramble``) another
    convolution altogether."""
    image = ops.parameter([1, 3, -1, -1], ov.Type.f32)
    x = ops.convolution(image, WIDE, [1, 1], [0, 0], [0, 0], [1, 1])
    for _ in range(detour):
        x = ops.convolution(x, IDENTITY, [1, 1], [1, 1], [1, 1], [1, 1])
    x = ops.convolution(x, NARROW, [1, 1], [0, 0], [0, 0], [1, 1])
    kernel = STEM[::-1].copy() if scramble else STEM
    y = ops.tanh(ops.convolution(x, kernel, [1, 1], [1, 1], [1, 1], [1, 1]))
    if offset:
        y = ops.add(y, np.array([offset, 0, 0], np.float32).reshape(1, 3, 1, 1))
    compiled = ov.Core().compile_model(
        ov.Model([y], [image]), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}
    )

    def run(batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.array(compiled(batch.numpy())[0]))

    return run


def photos_of_two_shapes() -> list[torch.Tensor]:
    rng = np.random.default_rng(1)
    return [
        torch.from_numpy(rng.uniform(-1, 1, size=(1, 3, h, w)).astype(np.float32)) for h, w in ((96, 128), (120, 80))
    ]


def test_the_fastest_faithful_path_wins_and_faster_unfaithful_ones_lose() -> None:
    candidates = {
        "slow": openvino_candidate(detour=40),
        "fast": openvino_candidate(detour=4),
        "colour cast": openvino_candidate(detour=0, offset=2 * 2 / 255),  # +2 steps of red: ~47 dB, but a cast
        "wrong": openvino_candidate(detour=0, scramble=True),
    }
    decision = choose(candidates, reference, photos_of_two_shapes())
    by_path = {m.path: m for m in decision.measurements}
    assert by_path["slow"].ms > by_path["fast"].ms > max(by_path["colour cast"].ms, by_path["wrong"].ms)
    assert by_path["colour cast"].min_db > autotune.MIN_PSNR_DB and by_path["colour cast"].colour_shift > 1.5
    assert by_path["wrong"].min_db < autotune.MIN_PSNR_DB
    assert by_path["slow"].faithful and by_path["fast"].faithful and by_path["slow"].min_db > 60
    assert decision.path == "fast"
    assert decision.summary().startswith("fast (measured: ")


def test_without_a_faithful_candidate_eager_fp32_runs() -> None:
    decision = choose({"wrong": openvino_candidate(detour=0, scramble=True)}, reference, photos_of_two_shapes())
    assert decision.path == "fp32"


def test_decision_is_cached_and_keyed_by_cpu_and_openvino(weights_dir: Path) -> None:
    """The real generator at a small size; a platform whose only candidate is OpenVINO fp32 keeps it quick."""
    model = load_manifest().models["animeganv3_shinkai"]
    key = converted_path(model, weights_dir).stem
    photos = calibration_photos(default_calibration_dir())
    samples = [autotune.Sample(photos[1], 128, False, "small")]
    here = Platform.this_machine()
    without_avx2 = dataclasses.replace(here, flags=())  # candidates: OpenVINO fp32 alone

    def decided(platform: Platform) -> Decision:
        return decide(
            lambda: build_generator(model, weights_dir),
            key,
            weights_dir,
            lambda: calibration_set(photos),
            calibration_digest(photos),
            lambda: [sample.load(8) for sample in samples],
            "small",
            platform,
        )

    first = decided(without_avx2)
    assert first.source == "measured"
    assert [m.path for m in first.measurements] == ["openvino-fp32"]
    assert first.path in ("openvino-fp32", "fp32")
    path = decision_file(weights_dir, key, first.key)
    written = json.loads(path.read_text())
    assert written["key"]["openvino"] == here.openvino and written["key"]["weights"] == key
    stamp = path.stat().st_mtime_ns

    again = decided(without_avx2)
    assert again.source == "cached" and again.path == first.path and again.measurements == first.measurements
    assert path.stat().st_mtime_ns == stamp

    calibration = calibration_digest(photos)
    for other in (
        dataclasses.replace(without_avx2, flags=("avx2",)),
        dataclasses.replace(without_avx2, openvino="2099.1.0"),
        dataclasses.replace(without_avx2, cpu_model="Another CPU"),
        dataclasses.replace(without_avx2, isa_limit="AVX2"),
    ):
        other_key = decision_key(other, key, calibration, "small")
        assert decision_file(weights_dir, key, other_key) != path
        assert load_decision(path, other_key) is None  # a file made under another key is never taken


def test_auto_engine_measures_once_then_reads_the_decision(weights_dir: Path) -> None:
    """The Shinkai model (scene and face): the chosen path is a faithful candidate of this CPU; a second engine
    (a later start, another worker) reads the decision instead of measuring again."""
    engine = Engine(weights_dir, precision="auto")
    engine.load("shinkai")
    report = engine.precision_report()["animeganv3_shinkai"]
    chosen = report.split(" ", 1)[0]
    assert chosen in cpu.candidate_paths()
    assert "(measured" in report or "(cached" in report
    decisions = sorted((weights_dir / "compiled").glob("animeganv3_shinkai-*-auto-*.json"))
    stamps = [path.stat().st_mtime_ns for path in decisions]
    written = [Decision.from_json(path.read_text()) for path in decisions]
    shinkai = next(d for d in written if "face:" in d.key["samples"])
    assert {m.path for m in shinkai.measurements} == set(cpu.candidate_paths())
    winner = next(m for m in shinkai.measurements if m.path == chosen)
    assert winner.faithful and winner.ms == min(m.ms for m in shinkai.measurements if m.faithful)

    later = Engine(weights_dir, precision="auto")
    later.load("shinkai")
    assert later.precision_report()["animeganv3_shinkai"].startswith(f"{chosen} (cached")
    assert [path.stat().st_mtime_ns for path in decisions] == stamps


@pytest.mark.parametrize("forced", ["int8", "bf16"])
def test_a_forced_precision_is_honoured_and_measures_nothing(forced: str, weights_dir: Path) -> None:
    before = set((weights_dir / "compiled").glob("*.json"))
    engine = Engine(weights_dir, precision=forced)  # type: ignore[arg-type]
    engine.load("shinkai")
    assert engine.precision_report() == {"animeganv3_shinkai": f"{forced} (forced)"}
    assert set((weights_dir / "compiled").glob("*.json")) == before


def test_isa_cap_limits_the_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cpu.ISA_LIMIT_VARIABLE, "AVX2")
    assert cpu.cpu_flags() <= {"avx2"}
    assert not cpu.has_native_bf16()
    assert "bf16" not in cpu.candidate_paths() and "int8-bf16" not in cpu.candidate_paths()
    assert Platform.this_machine().isa_limit == "AVX2"
