"""The fast path: the PyTorch generator compiled by OpenVINO for this CPU, in bf16 or INT8; fp32 eager as reference.

Converting a module costs tens of seconds, so the converted model (OpenVINO IR) is cached on disk keyed by the
weights' sha256, the precision and the OpenVINO version; later starts read it in well under a second.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from animegan.tiling import ImageFn, pad_to_multiple

Precision = Literal["auto", "fp32", "bf16", "int8"]
COMPILED_DIR = "compiled"
SHAPE_STEP = 64
COMPILED_SHAPES = 2  # a tile or face-crop shape and a whole-picture shape
EXAMPLE_SIDE = 256
log = logging.getLogger(__name__)


def bf16_supported() -> bool:
    """True when this CPU computes bf16 natively (AVX-512 BF16 or AMX); elsewhere bf16 is emulated and slow."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve(precision: Precision) -> str:
    """"auto" is the bf16 OpenVINO path (which computes in fp32 on CPUs without native bf16)."""
    return "bf16" if precision == "auto" else precision


def fp32_runner(module: nn.Module) -> ImageFn:
    """Eager PyTorch fp32: the reference every other precision is measured against."""

    @torch.inference_mode()
    def run(image: Tensor) -> Tensor:
        return module(image)

    return run


def _convert(module: nn.Module, calibration: list[Tensor] | None) -> object:
    """OpenVINO model of ``module`` with dynamic H and W; INT8-quantized on ``calibration`` when given."""
    import openvino as ov

    example = torch.zeros(1, 3, EXAMPLE_SIDE, EXAMPLE_SIDE)
    # Tracing warns about the input-shape checks in forward() (they guard eager use and are not part of the graph)
    # and that TorchScript tracing, which OpenVINO's converter uses, is deprecated.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        model = ov.convert_model(module, example_input=example, input=[ov.PartialShape([1, 3, -1, -1])])
    if calibration:
        import nncf

        data = nncf.Dataset(calibration, lambda image: image.numpy())
        model = nncf.quantize(model, data, subset_size=len(calibration))
    return model


def ir_path(cache_dir: Path, model_key: str, precision: str) -> Path:
    """Where the converted model of ``model_key`` (name + sha) is cached for ``precision``."""
    import openvino as ov

    version = ov.get_version().split("-")[0]
    weights_kind = "int8" if precision == "int8" else "fp32"
    return cache_dir / COMPILED_DIR / f"{model_key}-{weights_kind}-ov{version}.xml"


ModuleFactory = Callable[[], nn.Module]
CalibrationFactory = Callable[[], list[Tensor]]


def openvino_runner(
    build_module: ModuleFactory,
    model_key: str,
    precision: str,
    cache_dir: Path,
    calibration: CalibrationFactory | None = None,
) -> ImageFn:
    """The module ``build_module`` makes, compiled by OpenVINO: bf16 maths on CPUs that have it, INT8 convs when
    ``precision`` is int8. The module (and the calibration photos) are only made when no converted model is cached,
    so a worker's start reads one file instead of building the network."""
    import openvino as ov

    path = ir_path(cache_dir, model_key, precision)
    core = ov.Core()
    if path.is_file():
        model = core.read_model(path)
    else:
        log.info("converting %s for OpenVINO (%s); cached in %s", model_key, precision, path)
        images = calibration() if precision == "int8" and calibration is not None else None
        model = _convert(build_module(), images)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Worker processes may convert the same model at once: each writes its own files, then renames them in.
        partial = path.with_name(f"{path.stem}.{os.getpid()}.part.xml")
        ov.save_model(model, partial, compress_to_fp16=False)
        partial.with_suffix(".bin").replace(path.with_suffix(".bin"))
        partial.replace(path)
    hint = "bf16" if precision in ("bf16", "int8") and bf16_supported() else "f32"
    config = {
        "INFERENCE_PRECISION_HINT": hint,
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "PERFORMANCE_HINT": "LATENCY",
    }

    # A model compiled for one fixed shape plans and reuses its buffers: ~200 MB less at 1024 px than the
    # dynamic-shape model, and a little faster. Sizes are rounded up to SHAPE_STEP so few shapes occur, and only
    # the last few stay compiled (each keeps its buffers).
    @functools.lru_cache(maxsize=COMPILED_SHAPES)
    def request_for(height: int, width: int) -> object:
        fixed = model.clone()
        fixed.reshape({0: [1, 3, height, width]})
        return core.compile_model(fixed, "CPU", config).create_infer_request()

    def run(image: Tensor) -> Tensor:
        padded, (height, width) = pad_to_multiple(image, SHAPE_STEP)
        request = request_for(*padded.shape[-2:])
        output = request.infer({0: np.ascontiguousarray(padded.numpy(), dtype=np.float32)})[0]  # type: ignore[attr-defined]
        return torch.from_numpy(np.array(output[..., :height, :width], dtype=np.float32))

    return run


def optimize(
    build_module: ModuleFactory,
    model_key: str,
    precision: Precision,
    cache_dir: Path,
    calibration: CalibrationFactory | None = None,
) -> ImageFn:
    """A runner of the module ``build_module`` makes ([-1, 1] in and out, (1, 3, H, W)) at ``precision``.

    "fp32" is eager PyTorch; "auto" is OpenVINO with bf16 maths where the CPU has it; "int8" needs
    ``calibration`` to give images ((1, 3, H, W) in [-1, 1]) when the model is first converted.
    """
    chosen = resolve(precision)
    if chosen == "fp32":
        return fp32_runner(build_module())
    return openvino_runner(build_module, model_key, chosen, cache_dir, calibration)
