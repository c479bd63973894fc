"""The fast path: the PyTorch generator compiled by OpenVINO for this CPU, in INT8 or bf16; fp32 eager as reference.

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
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.jit import TracerWarning  # type: ignore[attr-defined]  # public, but left out of torch.jit.__all__

from animegan import cpu
from animegan.tiling import ImageFn
from animegan.v3 import sample_lade_statistics

if TYPE_CHECKING:
    import openvino

Precision = Literal["auto", "fp32", "bf16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("auto", "fp32", "bf16", "int8")
COMPILED_DIR = "compiled"
# Part of a cached model's name: bumped whenever what is compiled changes (2: LADE statistics from a 2x subsample).
GRAPH_VERSION = 2
EXAMPLE_SIDE = 256
log = logging.getLogger(__name__)

ModuleFactory = Callable[[], nn.Module]
# Photos to calibrate INT8 on and photos to check it on, each (1, 3, H, W) float32 in [-1, 1].
CalibrationFactory = Callable[[], tuple[list[np.ndarray], list[np.ndarray]]]


def resolve(precision: Precision) -> str:
    """The precision "auto" stands for on this CPU (see ``animegan.cpu.auto_precision``); others as given."""
    return cpu.auto_precision() if precision == "auto" else precision


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


def ir_path(cache_dir: Path, model_key: str, precision: str, calibration_key: str = "") -> Path:
    """Where the converted model of ``model_key`` (name + sha) is cached for ``precision``."""
    import openvino as ov

    version = ov.get_version().split("-")[0]
    weights_kind = f"int8-{calibration_key}" if precision == "int8" else "fp32"
    return cache_dir / COMPILED_DIR / f"{model_key}-{weights_kind}-g{GRAPH_VERSION}-ov{version}.xml"


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
    if precision == "int8":
        if calibration is None:
            raise ValueError("precision int8 needs calibration photos")
        from animegan.quantize import quantize

        model = quantize(model, *calibration())
    _save_atomically(model, path)
    return model


def openvino_runner(
    build_module: ModuleFactory,
    model_key: str,
    precision: str,
    cache_dir: Path,
    calibration: CalibrationFactory | None = None,
    calibration_key: str = "",
    native_bf16: bool | None = None,
) -> ImageFn:
    """The module ``build_module`` makes, compiled by OpenVINO: INT8 convolutions when ``precision`` is "int8",
    and bf16 maths for the rest where the CPU has it (``native_bf16=False`` forces fp32 maths, as on AVX2)."""
    import openvino as ov

    model = openvino_model(build_module, model_key, precision, cache_dir, calibration, calibration_key)
    use_bf16 = cpu.has_native_bf16() if native_bf16 is None else native_bf16
    config = {
        "INFERENCE_PRECISION_HINT": "bf16" if use_bf16 else "f32",
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "PERFORMANCE_HINT": "LATENCY",
    }
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()

    def run(image: Tensor) -> Tensor:
        output = request.infer({0: np.ascontiguousarray(image.numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(np.array(output, dtype=np.float32))

    return run


def optimize(
    build_module: ModuleFactory,
    model_key: str,
    precision: Precision,
    cache_dir: Path,
    calibration: CalibrationFactory | None = None,
    calibration_key: str = "",
) -> ImageFn:
    """A runner of the module ``build_module`` makes ([-1, 1] in and out, (B, 3, H, W)) at ``precision``.

    "fp32" is eager PyTorch; "bf16" is OpenVINO with bf16 maths where the CPU has it (fp32 elsewhere); "int8" is
    OpenVINO with INT8 convolutions, built from ``calibration`` photos the first time; "auto" is bf16 on CPUs with
    native bf16 and int8 on the others.
    """
    chosen = resolve(precision)
    if chosen == "fp32":
        return fp32_runner(build_module())
    return openvino_runner(build_module, model_key, chosen, cache_dir, calibration, calibration_key)
