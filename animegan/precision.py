"""The fast paths: the PyTorch generator compiled by OpenVINO for this CPU, in INT8, bf16 or fp32; eager fp32 as
the reference. Which path "auto" takes is measured, per CPU and model, by ``animegan.autotune``.

Converting a module costs seconds and quantizing it a minute, so the converted model (OpenVINO IR) is cached on
disk keyed by the weights' sha256, the precision, the calibration photos and the OpenVINO version; later starts
read it in well under a second.

The model is compiled once with dynamic batch, height and width: photos arrive in every shape, and a
per-shape compile (about 150 ms, more for INT8) on the hot path made a stream of varied photos slower than
eager PyTorch.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn
from torch.jit import TracerWarning  # type: ignore[attr-defined]  # public, but left out of torch.jit.__all__

from animegan import cpu
from animegan.cpu import PRECISION_HELP
from animegan.cpu import PRECISIONS as PRECISIONS  # re-exported: the names predate animegan.cpu holding them
from animegan.cpu import Precision as Precision
from animegan.tiling import ImageFn
from animegan.v3 import sample_lade_statistics

if TYPE_CHECKING:
    import openvino

INT8_PATHS = frozenset({"int8", "int8-bf16"})
BF16_PATHS = frozenset({"bf16", "int8-bf16"})
COMPILED_DIR = "compiled"
# Part of a cached model's name: bumped whenever what is compiled changes (2: LADE statistics from a 2x subsample;
# 3: that subsample taken by the projection's own stride, see fold_samples_into_projections).
GRAPH_VERSION = 3
EXAMPLE_SIDE = 256
WHOLE_AXIS = 2**31 - 1  # a Slice's stop at or beyond this keeps the axis to its end
log = logging.getLogger(__name__)

ModuleFactory = Callable[[], nn.Module]
# Photos to calibrate INT8 on and photos to check it on, each (1, 3, H, W) float32 in [-1, 1].
CalibrationFactory = Callable[[], tuple[list[np.ndarray], list[np.ndarray]]]


def openvino_version() -> str:
    """OpenVINO's release, e.g. "2026.4.1" (part of every cached model's and decision's key)."""
    import openvino as ov

    return str(ov.get_version()).split("-")[0]


def fp32_runner(module: nn.Module) -> ImageFn:
    """Eager PyTorch fp32: the reference every other precision is measured against."""

    @torch.inference_mode()
    def run(image: Tensor) -> Tensor:
        styled: Tensor = module(image)
        return styled

    return run


def to_openvino(module: nn.Module) -> openvino.Model:
    """The OpenVINO model of ``module``, batch, height and width left dynamic."""
    import openvino as ov

    example = torch.zeros(1, 3, EXAMPLE_SIDE, EXAMPLE_SIDE)
    # Tracing warns about the input-shape checks in forward() (they guard eager use and are not part of the graph)
    # and that TorchScript tracing, which OpenVINO's converter uses, is deprecated.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return ov.convert_model(module, example_input=example, input=[ov.PartialShape([-1, 3, -1, -1])])


def fold_samples_into_projections(model: openvino.Model) -> int:
    """Let each 1x1 convolution that reads a strided subsample (``x[:, :, ::s, ::s]``, how a LADE norm samples its
    statistics) take the subsample itself with stride s, in place; the output is the same.

    OpenVINO runs such a Slice through its reference kernel, a pass of its own over the map (2 % of the INT8
    generator's time at 512 px on AVX2); a strided 1x1 convolution reads only the pixels it needs.

    Returns:
        how many subsamples were folded.
    """
    import openvino.opset13 as ops

    folded = 0
    for sample in model.get_ordered_ops():
        steps = _strided_sample_steps(sample)
        readers = list(sample.output(0).get_target_inputs()) if steps else []
        if len(readers) != 1 or not _is_plain_pointwise_convolution(readers[0].get_node()):
            continue
        convolution = readers[0].get_node()
        attributes = convolution.get_attributes()
        strided = ops.convolution(
            sample.input_value(0),
            convolution.input_value(1),
            steps,
            attributes["pads_begin"],
            attributes["pads_end"],
            attributes["dilations"],
        )
        strided.set_friendly_name(convolution.get_friendly_name())
        for target in list(convolution.output(0).get_target_inputs()):
            target.replace_source_output(strided.output(0))
        folded += 1
    model.validate_nodes_and_infer_types()
    return folded


def _constant(node: openvino.Node) -> list[int] | None:
    return [int(v) for v in node.get_vector()] if node.get_type_name() == "Constant" else None


def _strided_sample_steps(node: openvino.Node) -> list[int] | None:
    """The (H, W) steps of a Slice that keeps every s-th row and column from the first (``x[:, :, ::s, ::s]``)."""
    if node.get_type_name() != "Slice" or node.get_input_size() != 5:
        return None
    start, stop, step, axes = (_constant(node.input_value(i).get_node()) for i in range(1, 5))
    if start != [0, 0] or axes != [2, 3] or step is None or min(step) < 1 or stop is None or min(stop) < WHOLE_AXIS:
        return None
    return step


def _is_plain_pointwise_convolution(node: openvino.Node) -> bool:
    """A 1x1 convolution with stride 1 and no padding, whose kernel is a constant (possibly behind a Convert)."""
    if node.get_type_name() != "Convolution":
        return False
    attributes = node.get_attributes()
    shape = node.input_value(1).get_partial_shape()
    return (
        shape.is_static
        and list(shape.to_shape())[2:] == [1, 1]
        and list(attributes["strides"]) == [1, 1]
        and list(attributes["pads_begin"]) == [0, 0]
        and list(attributes["pads_end"]) == [0, 0]
        and list(attributes["dilations"]) == [1, 1]
    )


def ir_path(cache_dir: Path, model_key: str, precision: str, calibration_key: str = "") -> Path:
    """Where the converted model of ``model_key`` (name + sha) is cached for ``precision``."""
    weights_kind = f"int8-{calibration_key}" if precision in INT8_PATHS else "fp32"
    return cache_dir / COMPILED_DIR / f"{model_key}-{weights_kind}-g{GRAPH_VERSION}-ov{openvino_version()}.xml"


def _save_atomically(model: openvino.Model, path: Path) -> None:
    import openvino as ov

    path.parent.mkdir(parents=True, exist_ok=True)
    # Worker processes may convert the same model at once: each writes its own files, then renames them in.
    partial = path.with_name(f"{path.stem}.{os.getpid()}.part.xml")
    ov.save_model(model, partial, compress_to_fp16=False)
    partial.with_suffix(".bin").replace(path.with_suffix(".bin"))
    partial.replace(path)


def openvino_model(
    build_module: ModuleFactory,
    model_key: str,
    precision: str,
    cache_dir: Path,
    calibration: CalibrationFactory | None = None,
    calibration_key: str = "",
) -> openvino.Model:
    """The cached OpenVINO model, converted (and for "int8" quantized) first when it is not on disk yet.

    The module and the calibration photos are only made when nothing is cached, so a worker's start reads one file.
    """
    import openvino as ov

    path = ir_path(cache_dir, model_key, precision, calibration_key)
    if path.is_file():
        return ov.Core().read_model(path)
    log.info("converting %s for OpenVINO (%s); cached in %s", model_key, precision, path)
    model = to_openvino(sample_lade_statistics(build_module()))
    fold_samples_into_projections(model)
    if precision in INT8_PATHS:
        if calibration is None:
            raise ValueError("precision int8 needs calibration photos")
        from animegan.quantize import quantize

        model = quantize(model, *calibration())
    _save_atomically(model, path)
    return model


def compile_config(precision: str) -> dict[str, object]:
    """OpenVINO's CPU settings for an OpenVINO ``precision`` path on this CPU: bf16 maths only where native."""
    use_bf16 = precision in BF16_PATHS and cpu.has_native_bf16()
    return {
        "INFERENCE_PRECISION_HINT": "bf16" if use_bf16 else "f32",
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "PERFORMANCE_HINT": "LATENCY",
        # The process's own CPU mask decides where it runs (a worker moves between its core and all of them).
        "ENABLE_CPU_PINNING": False,
    }


def openvino_runner(
    build_module: ModuleFactory,
    model_key: str,
    precision: str,
    cache_dir: Path,
    calibration: CalibrationFactory | None = None,
    calibration_key: str = "",
) -> ImageFn:
    """The module ``build_module`` makes, compiled by OpenVINO for the path ``precision`` (one of
    ``PRECISION_HELP`` but "auto" and "fp32"): the INT8 model for "int8" and "int8-bf16", bf16 maths for "bf16" and
    "int8-bf16" where the CPU has them natively."""
    import openvino as ov

    model = openvino_model(build_module, model_key, precision, cache_dir, calibration, calibration_key)
    request = ov.Core().compile_model(model, "CPU", compile_config(precision)).create_infer_request()

    def run(image: Tensor) -> Tensor:
        output = request.infer({0: np.ascontiguousarray(image.numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(np.array(output, dtype=np.float32))

    return run


def optimize(
    build_module: ModuleFactory,
    model_key: str,
    precision: str,
    cache_dir: Path,
    calibration: CalibrationFactory | None = None,
    calibration_key: str = "",
) -> ImageFn:
    """A runner of the module ``build_module`` makes ([-1, 1] in and out, (B, 3, H, W)) on the path ``precision``.

    "fp32" is eager PyTorch; every other path but "auto" is OpenVINO (see ``PRECISION_HELP``); the INT8 model is
    built from ``calibration`` photos the first time. "auto" is resolved by ``animegan.autotune``, not here.
    """
    if precision == "auto":
        raise ValueError('"auto" is a measured choice: resolve it with animegan.autotune.decide first')
    if precision not in PRECISION_HELP:
        raise ValueError(f"unknown precision {precision!r}: one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return fp32_runner(build_module())
    return openvino_runner(build_module, model_key, precision, cache_dir, calibration, calibration_key)
