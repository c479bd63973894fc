"""AnimeGANv2 generator: bryandlee weight layout, TF upsampling, and the int8 TFLite converter on real weights."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from ai_edge_litert import schema_py_generated as tflite_schema
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.tools import flatbuffer_utils
from safetensors.torch import save_file

from animegan.errors import WeightsCorrupt, WeightsMissing
from animegan.v2 import (
    AnimeGANv2Generator,
    load_generator,
    resize_bilinear_tf_legacy,
    state_dict_from_tflite,
)
from tests.support_v2 import (
    REFERENCE_STATE_DICT_LAYOUT,
    TFLITE_HAYAO,
    correlation,
    dequantized_activation,
    generator_input_256,
    psnr,
    run_tflite,
)

UPSAMPLINGS = ("align_corners", "half_pixel", "tf_legacy")


def reference_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights laid out exactly as bryandlee's model.py saves them."""
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) * 0.1 for key, shape in REFERENCE_STATE_DICT_LAYOUT}


def as_nchw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None]


def as_hwc(batch: torch.Tensor) -> np.ndarray:
    return batch[0].permute(1, 2, 0).numpy()


# ---- weight layout and loading -----------------------------------------------------------------------------------


def test_state_dict_has_the_keys_and_shapes_of_bryandlee_model_py() -> None:
    layout = [(key, tuple(value.shape)) for key, value in AnimeGANv2Generator().state_dict().items()]
    assert layout == list(REFERENCE_STATE_DICT_LAYOUT)


def test_bryandlee_layout_loads_strictly_and_drives_the_output() -> None:
    generator = AnimeGANv2Generator().eval()
    generator.load_state_dict(reference_state_dict(seed=1), strict=True)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        first = generator(image)
        generator.load_state_dict(reference_state_dict(seed=2), strict=True)
        second = generator(image)
    assert not torch.allclose(first, second)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".safetensors"])
def test_load_generator_reads_a_saved_state_dict(tmp_path: Path, suffix: str) -> None:
    weights = reference_state_dict()
    path = tmp_path / f"face_paint{suffix}"
    if suffix == ".safetensors":
        save_file(weights, path)
    else:
        torch.save(weights, path)

    generator = load_generator(path)

    assert generator.upsampling == "align_corners"
    assert not generator.training
    for key, value in generator.state_dict().items():
        assert torch.equal(value, weights[key]), key


def test_load_generator_lets_the_caller_choose_the_upsampling(tmp_path: Path) -> None:
    path = tmp_path / "paprika.pt"
    torch.save(reference_state_dict(), path)
    assert load_generator(path, upsampling="half_pixel").upsampling == "half_pixel"


def test_load_generator_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissing) as caught:
        load_generator(tmp_path / "face_paint_512_v2.pt")
    assert "face_paint_512_v2.pt" in caught.value.message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("weights.bin", b"\x00" * 64),
        ("damaged.pt", b"not a pickle at all"),
        ("damaged.safetensors", b"\x00\x01\x02"),
        ("damaged.tflite", b"\x00" * 64),
    ],
)
def test_load_generator_reports_unreadable_files(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(WeightsCorrupt) as caught:
        load_generator(path)
    assert name in caught.value.message


def test_load_generator_rejects_a_state_dict_of_another_network(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(WeightsCorrupt):
        load_generator(path)


# ---- the network -------------------------------------------------------------------------------------------------


def test_tf_legacy_resize_samples_at_i_times_in_over_out() -> None:
    row = torch.tensor([0.0, 2.0, 4.0]).view(1, 1, 1, 3)
    # Width 3 -> 6 samples x = 0, 0.5, 1, 1.5, 2, 2.5; x = 2.5 clamps to the last pixel. Height 1 -> 2 repeats.
    expected = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 4.0]).expand(1, 1, 2, 6)
    assert torch.allclose(resize_bilinear_tf_legacy(row, (2, 6)), expected)


def test_tf_legacy_resize_shrinks_on_the_same_grid() -> None:
    column = torch.arange(5.0).view(1, 1, 5, 1)
    # Height 5 -> 2 samples y = 0 and 2.5.
    expected = torch.tensor([0.0, 2.5]).view(1, 1, 2, 1)
    assert torch.allclose(resize_bilinear_tf_legacy(column, (2, 1)), expected)


@pytest.mark.parametrize("upsampling", UPSAMPLINGS)
@pytest.mark.parametrize("size", [(32, 48), (37, 50)])
def test_forward_keeps_the_size_and_the_tanh_range(upsampling: str, size: tuple[int, int]) -> None:
    generator = AnimeGANv2Generator(upsampling).eval()
    generator.load_state_dict(reference_state_dict())
    image = torch.rand(2, 3, *size) * 2 - 1
    with torch.no_grad():
        out = generator(image)
    assert out.shape == image.shape
    assert out.abs().max() <= 1.0


def test_upsampling_modes_give_different_pictures() -> None:
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    outputs = []
    for upsampling in UPSAMPLINGS:
        generator = AnimeGANv2Generator(upsampling).eval()
        generator.load_state_dict(reference_state_dict())
        with torch.no_grad():
            outputs.append(generator(image))
    assert not torch.allclose(outputs[0], outputs[1])
    assert not torch.allclose(outputs[1], outputs[2])


def test_forward_rejects_a_batch_that_is_not_rgb() -> None:
    with pytest.raises(ValueError):
        AnimeGANv2Generator()(torch.zeros(1, 4, 32, 32))


def test_unknown_upsampling_is_refused() -> None:
    with pytest.raises(ValueError):
        AnimeGANv2Generator("nearest")  # type: ignore[arg-type]


# ---- the real int8 TFLite AnimeGANv2 Hayao -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def hayao_tflite(weights_mirror: Path) -> Path:
    """The real int8 AnimeGANv2 Hayao file (the mirror fixture skips locally, fails on CI, without it)."""
    return weights_mirror / TFLITE_HAYAO


@pytest.fixture(scope="module")
def astronaut_input(astronaut: np.ndarray) -> np.ndarray:
    return generator_input_256(astronaut)


@pytest.fixture(scope="module")
def converted(hayao_tflite: Path) -> dict[str, torch.Tensor]:
    return state_dict_from_tflite(hayao_tflite)


@pytest.fixture(scope="module")
def tflite_run(hayao_tflite: Path, astronaut_input: np.ndarray) -> tuple[Interpreter, np.ndarray]:
    """The interpreter after one run on the astronaut (all intermediate tensors kept) and its output."""
    with warnings.catch_warnings():
        # Keeping intermediates is what the per-layer comparison needs; the "debugging only" warning is moot.
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(str(hayao_tflite), num_threads=1, experimental_preserve_all_tensors=True)
    return interpreter, run_tflite(interpreter, astronaut_input)


def test_converted_weights_fill_every_key(converted: dict[str, torch.Tensor]) -> None:
    assert [(key, tuple(value.shape)) for key, value in converted.items()] == list(REFERENCE_STATE_DICT_LAYOUT)
    assert all(value.dtype == torch.float32 and torch.isfinite(value).all() for value in converted.values())


def test_every_converted_conv_reproduces_the_int8_conv(
    hayao_tflite: Path, converted: dict[str, torch.Tensor], tflite_run: tuple[Interpreter, np.ndarray]
) -> None:
    # Feed each float conv the int8 graph's own (dequantized) input: the only difference left is the int8
    # rounding of the output, at most half a quantization step, except where the output saturates the int8
    # range. Measured: 99.94% to 100% of outputs within half a step for all 25 convs; a wrong layout,
    # scale or bias puts most of them many steps off.
    interpreter, _ = tflite_run
    generator = AnimeGANv2Generator("tf_legacy")
    generator.load_state_dict(converted)
    convs = [module for module in generator.modules() if isinstance(module, torch.nn.Conv2d)]
    model = flatbuffer_utils.read_model(str(hayao_tflite))
    graph = model.subgraphs[0]
    conv_codes = (tflite_schema.BuiltinOperator.CONV_2D, tflite_schema.BuiltinOperator.DEPTHWISE_CONV_2D)
    conv_ops = [
        operator
        for operator in graph.operators
        if flatbuffer_utils.get_builtin_code_from_operator_code(model.operatorCodes[operator.opcodeIndex]) in conv_codes
    ]
    assert len(conv_ops) == len(convs)
    for index, (conv, operator) in enumerate(zip(convs, conv_ops, strict=True)):
        layer_input, _ = dequantized_activation(interpreter, operator.inputs[0])
        expected, step = dequantized_activation(interpreter, operator.outputs[0])
        with torch.no_grad():
            actual = as_hwc(conv(as_nchw(layer_input[0])))
        within_rounding = np.abs(actual - expected[0]) <= 0.5 * step * (1 + 1e-3)
        assert within_rounding.mean() >= 0.999, f"conv {index}: {within_rounding.mean():.4f} within rounding"


def test_converted_generator_matches_the_int8_model_on_a_photo(
    converted: dict[str, torch.Tensor], tflite_run: tuple[Interpreter, np.ndarray], astronaut_input: np.ndarray
) -> None:
    # The float network differs from the int8 one by the int8 activations of 25 convs and 24 layer norms,
    # and mostly by their calibrated ranges clipping: e.g. the first norm's variance saturates at 0.19
    # while this photo gives 0.47, so the int8 model normalises by too small a deviation. Emulating those
    # variance ceilings in the float model alone lifts PSNR from 24.4 to 26.2 dB. Measured here:
    # 24.35 dB, r = 0.979 with TF's upsampling; bryandlee's align_corners gives 18.98 dB, r = 0.85.
    # The bounds leave about 2 dB for other runtimes' rounding and catch a wrong conversion or grid.
    _, expected = tflite_run
    image = as_nchw(astronaut_input)
    scores = {}
    for upsampling in ("tf_legacy", "align_corners"):
        generator = AnimeGANv2Generator(upsampling).eval()
        generator.load_state_dict(converted)
        with torch.no_grad():
            actual = as_hwc(generator(image))
        scores[upsampling] = (psnr(actual, expected), correlation(actual, expected))
    print(f"\nfloat vs int8 TFLite on astronaut 256: {scores}")
    tf_psnr, tf_correlation = scores["tf_legacy"]
    assert tf_psnr >= 22.0
    assert tf_correlation >= 0.97
    assert tf_psnr >= scores["align_corners"][0] + 3.0


def test_load_generator_converts_a_tflite_file_for_tf_upsampling(hayao_tflite: Path) -> None:
    generator = load_generator(hayao_tflite)
    assert generator.upsampling == "tf_legacy"
    assert not generator.training


def test_a_tflite_graph_missing_a_layer_is_rejected(hayao_tflite: Path, tmp_path: Path) -> None:
    model = flatbuffer_utils.read_model(str(hayao_tflite))
    operators = model.subgraphs[0].operators
    last_conv = max(
        position
        for position, operator in enumerate(operators)
        if flatbuffer_utils.get_builtin_code_from_operator_code(model.operatorCodes[operator.opcodeIndex])
        == tflite_schema.BuiltinOperator.CONV_2D
    )
    del operators[last_conv]
    path = tmp_path / "no_out_layer.tflite"
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    with pytest.raises(WeightsCorrupt) as caught:
        state_dict_from_tflite(path)
    assert "not the AnimeGANv2 generator graph" in caught.value.message


def test_a_truncated_tflite_file_is_rejected(hayao_tflite: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.tflite"
    path.write_bytes(hayao_tflite.read_bytes()[:50_000])
    with pytest.raises(WeightsCorrupt):
        state_dict_from_tflite(path)
