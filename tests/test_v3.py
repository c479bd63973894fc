"""AnimeGANv3 in PyTorch against onnxruntime on the released files, and the converter's refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from animegan.errors import WeightsCorrupt, WeightsMissing
from animegan.v3 import (
    LADE,
    AnimeGANv3Generator,
    GeneratorConfig,
    load_generator,
    sample_lade_statistics,
    state_dict_from_onnx,
    upsample_2x,
)
from tests.support_v2 import TFLITE_HAYAO, psnr
from tests.support_v3 import PIXEL_MAX, V3_ONNX_FILES, generator_input, run_onnxruntime, to_pixels

MIN_PSNR_DB = 40.0
PHOTO_SIZES = ((256, 256), (264, 200))  # (H, W): square, and non-square with H != W
SMALL_SIZE = 64
JP_FACE = GeneratorConfig(depth=3, norm="layer", norm_eps=1e-7, attention_norm="instance", last_kernel=7, out_kernel=3)
SKETCH = GeneratorConfig(norm_eps=1e-7, attention_norm="layer", attention_norm_eps=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("size", PHOTO_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("file_name", V3_ONNX_FILES)
def test_matches_onnxruntime_on_a_photo(
    weights_mirror: Path, astronaut: np.ndarray, file_name: str, size: tuple[int, int]
) -> None:
    path = weights_mirror / file_name
    photo = generator_input(astronaut, *size)

    with torch.inference_mode():
        ours = load_generator(path)(photo)
    reference = run_onnxruntime(path, photo)

    assert ours.shape == photo.shape
    assert psnr(to_pixels(ours), to_pixels(reference), peak=PIXEL_MAX) >= MIN_PSNR_DB


def test_batch_items_do_not_mix(weights_mirror: Path, astronaut: np.ndarray) -> None:
    model = load_generator(weights_mirror / V3_ONNX_FILES[0])
    photo = generator_input(astronaut, SMALL_SIZE, SMALL_SIZE)
    batch = torch.cat([photo, photo.flip(-1)])

    with torch.inference_mode():
        together = model(batch)
        alone = model(photo.flip(-1))

    torch.testing.assert_close(together[1:], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("config", [GeneratorConfig(), SKETCH, JP_FACE], ids=["shinkai", "sketch", "jp_face"])
def test_from_state_dict_rebuilds_the_same_variant(config: GeneratorConfig) -> None:
    torch.manual_seed(0)
    original = AnimeGANv3Generator(config).eval()
    x = torch.rand(1, 3, SMALL_SIZE, SMALL_SIZE) * 2 - 1

    rebuilt = AnimeGANv3Generator.from_state_dict(original.state_dict()).eval()

    assert rebuilt.config == config
    with torch.inference_mode():
        torch.testing.assert_close(rebuilt(x), original(x), atol=0, rtol=0)


def test_from_state_dict_refuses_a_foreign_dict() -> None:
    wrong_shape = AnimeGANv3Generator().state_dict()
    wrong_shape["encoder.1.0.norm.proj.weight"] = torch.zeros(16, 16, 1, 1)
    with pytest.raises(ValueError):
        AnimeGANv3Generator.from_state_dict({"conv.weight": torch.zeros(1)})
    with pytest.raises(ValueError):
        AnimeGANv3Generator.from_state_dict(wrong_shape)


def test_rejects_sizes_that_are_not_multiples_of_8() -> None:
    with pytest.raises(ValueError):
        AnimeGANv3Generator()(torch.zeros(1, 3, 260, 256))


def test_config_rejects_a_layout_it_cannot_build() -> None:
    with pytest.raises(ValueError):
        replace(GeneratorConfig(), depth=1)
    with pytest.raises(ValueError):
        replace(GeneratorConfig(), widths=(32, 64, 128))


def test_upsample_2x_samples_at_half_the_output_index() -> None:
    x = torch.tensor([[0.0, 2.0], [4.0, 6.0]])[None, None]
    # output (i, j) reads input (i / 2, j / 2); the last row and column repeat the edge
    expected = torch.tensor(
        [
            [0.0, 1.0, 2.0, 2.0],
            [2.0, 3.0, 4.0, 4.0],
            [4.0, 5.0, 6.0, 6.0],
            [4.0, 5.0, 6.0, 6.0],
        ]
    )[None, None]
    torch.testing.assert_close(upsample_2x(x), expected)


def test_lade_with_identity_projection_returns_its_input() -> None:
    torch.manual_seed(0)
    channels = 4
    lade = LADE(channels, eps=1e-5)
    with torch.no_grad():
        lade.proj.weight.copy_(torch.eye(channels)[:, :, None, None])
    x = torch.randn(2, channels, 8, 8) * 3 + 1
    # normalised by x's own statistics, then given them back
    torch.testing.assert_close(lade(x), x, atol=1e-5, rtol=1e-5)


def test_lade_takes_mean_and_spread_from_its_projection() -> None:
    lade = LADE(1, eps=0.0)
    with torch.no_grad():
        lade.proj.weight.fill_(2.0)
    x = torch.tensor([1.0, 3.0, 1.0, 3.0]).view(1, 1, 2, 2)  # mean 2, std 1
    # the projection 2x has mean 4 and std 2: (x - 2) / 1 * 2 + 4
    expected = torch.tensor([2.0, 6.0, 2.0, 6.0]).view(1, 1, 2, 2)
    torch.testing.assert_close(lade(x), expected)


def test_sampled_lade_statistics_come_from_every_second_row_and_column() -> None:
    lade = sample_lade_statistics(LADE(1, eps=0.0))
    with torch.no_grad():
        lade.proj.weight.fill_(1.0)
    # the sampled positions (even rows, even columns) hold 1 and 3: mean 2, std 1; all of x has mean 3
    x = torch.tensor([[1.0, 9.0, 3.0, 9.0], [9.0, 9.0, 9.0, 9.0], [3.0, 9.0, 1.0, 9.0], [9.0, 9.0, 9.0, 9.0]])
    x = x.view(1, 1, 4, 4)
    normalised = (x - x.mean()) / x.std(correction=0)
    torch.testing.assert_close(lade(x), normalised * 1.0 + 2.0)


def test_sampled_lade_statistics_keep_the_picture(weights_mirror: Path, astronaut: np.ndarray) -> None:
    """What the compiled generators run: close to exact statistics on a photo, but not the same computation."""
    model = load_generator(weights_mirror / V3_ONNX_FILES[0])
    photo = generator_input(astronaut, 256, 192)
    with torch.inference_mode():
        exact = model(photo)
        sampled = sample_lade_statistics(model)(photo)

    assert not torch.equal(exact, sampled)
    assert psnr(to_pixels(sampled), to_pixels(exact), peak=PIXEL_MAX) >= MIN_PSNR_DB


# ------------------------------------------------------------------------------- converter refusals


def test_missing_file_is_reported_as_missing(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissing):
        state_dict_from_onnx(tmp_path / "absent.onnx")


def test_tflite_file_is_not_a_v3_generator(weights_mirror: Path) -> None:
    with pytest.raises(WeightsCorrupt, match="not a readable ONNX"):
        state_dict_from_onnx(weights_mirror / TFLITE_HAYAO)


def test_truncated_onnx_file_is_corrupt(weights_mirror: Path, tmp_path: Path) -> None:
    original = (weights_mirror / V3_ONNX_FILES[0]).read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(original[: len(original) // 2])
    with pytest.raises(WeightsCorrupt):
        state_dict_from_onnx(truncated)


def test_small_foreign_onnx_graph_is_not_a_v3_generator(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "generator/base/Conv/w:0")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", weight.name], ["y"]), helper.make_node("Tanh", ["y"], ["z"])],
        "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 8, 6, 6])],
        initializer=[weight],
    )
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), path)

    with pytest.raises(WeightsCorrupt, match="not an AnimeGANv3 generator"):
        state_dict_from_onnx(path)


def edited_shinkai(shinkai: Path, folder: Path, weight_name: str, edit: str) -> Path:
    """The Shinkai graph with the conv that reads ``weight_name`` given stride 1 or a narrower weight,
    or with its output activation made a sigmoid, saved in ``folder``."""
    model = onnx.load(shinkai)
    node = next(n for n in model.graph.node if n.op_type == "Conv" and n.input[1] == weight_name)
    if edit == "stride":
        next(a for a in node.attribute if a.name == "strides").ints[:] = [1, 1]
    elif edit == "narrower":
        init = next(i for i in model.graph.initializer if i.name == weight_name)
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init)[:, :-1], weight_name))
    else:
        next(n for n in model.graph.node if n.op_type == "Tanh").op_type = "Sigmoid"
    path = folder / f"shinkai_{edit}.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("edit", ["stride", "narrower", "sigmoid"])
def test_changed_architecture_is_refused(weights_mirror: Path, tmp_path: Path, edit: str) -> None:
    shinkai = weights_mirror / V3_ONNX_FILES[0]
    path = edited_shinkai(shinkai, tmp_path, "generator/base/Conv_6/weights/read:0", edit)
    with pytest.raises(WeightsCorrupt, match="not an AnimeGANv3 generator"):
        state_dict_from_onnx(path)
