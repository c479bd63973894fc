"""INT8 generators that keep the picture: NNCF post-training quantization of the image path only, checked.

Only the convolutions that carry the image are quantized. The 1x1 projections whose output is reduced to the
mean and spread of a LADE norm, the attention block and every normalisation, activation and resize stay in float:
quantizing those statistics shifts each channel's mean and scale, which is what turned the first INT8 attempt
(every op quantized) blue and dark at 27 dB. With them in float the convolutions alone give 45 dB or more.

The result is checked on held-out photos against the float model; a model that falls short of ``MIN_PSNR_DB``
stays in float. (Of the released generators only PortraitSketch does: its black ink lines on white move by a pixel
and the squared error jumps. ``nncf.quantize_with_accuracy_control`` took four minutes on it and still reached only
36 dB, so it is not used.)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import nncf
    import openvino

log = logging.getLogger(__name__)

CALIBRATION_SIDE = 512  # the working size photos reach the generator at, and the size its statistics are taken at
CALIBRATION_SUFFIXES = (".jpg", ".jpeg", ".png")
VALIDATION_SIDE = 384
MIN_PSNR_DB = 40.0  # against the float model on held-out photos: well above what the eye or the product needs (35)
# Convolutions kept in float: their outputs are statistics (LADE's projections) or feed the attention's softmax.
FLOAT_CONVOLUTION_PATTERNS = (r".*norm\.proj.*", r".*attention.*")
# Bump when the recipe changes, so cached INT8 models made by an older recipe are rebuilt (4: quantizers moved
# above the pads, see hoist_quantizers_above_pads).
RECIPE_VERSION = 4
# Pad modes that only copy existing values, so a per-value quantizer gives the same result before or after them.
COPYING_PAD_MODES = frozenset({"reflect", "edge", "symmetric"})
PACKAGED_CALIBRATION = Path(__file__).with_name("calibration")
SOURCE_TREE_CALIBRATION = Path(__file__).resolve().parents[1] / "weights" / "calibration"


def default_calibration_dir() -> Path:
    """The calibration photos that ship with animegan (``weights/calibration`` in the source tree)."""
    return PACKAGED_CALIBRATION if PACKAGED_CALIBRATION.is_dir() else SOURCE_TREE_CALIBRATION


def calibration_photos(folder: Path) -> list[Path]:
    """The photos in ``folder``, in a stable order."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in CALIBRATION_SUFFIXES) if folder.is_dir() else []


def calibration_digest(photos: Sequence[Path]) -> str:
    """A short hash of the photos and the recipe: part of a cached INT8 model's name."""
    digest = hashlib.sha256(f"recipe {RECIPE_VERSION}".encode())
    for photo in photos:
        digest.update(photo.read_bytes())
    return digest.hexdigest()[:12]


def calibration_size(size: tuple[int, int], side: int, multiple: int) -> tuple[int, int]:
    """(width, height) a photo of ``size`` (width, height) is brought to: long side ``side``, both multiples of
    ``multiple``."""
    scale = side / max(size)
    width, height = (max(multiple, round(v * scale) // multiple * multiple) for v in size)
    return width, height


def load_calibration_image(photo: Path, side: int = CALIBRATION_SIDE, multiple: int = 8) -> np.ndarray:
    """A photo as the generator sees it: long side ``side``, H and W multiples of ``multiple``.

    Returns:
        (1, 3, H, W) float32 in [-1, 1].
    """
    with Image.open(photo) as image:
        rgb = image.convert("RGB")
    width, height = calibration_size(rgb.size, side, multiple)
    pixels = np.asarray(rgb.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)
    return (pixels.transpose(2, 0, 1)[None] / 127.5 - 1.0).astype(np.float32)


def calibration_set(photos: Sequence[Path], multiple: int = 8) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Even photos to calibrate on at ``CALIBRATION_SIDE``; every fourth odd one, smaller, to check the result on."""
    calibration = [load_calibration_image(photo, CALIBRATION_SIDE, multiple) for photo in photos[0::2]]
    validation = [load_calibration_image(photo, VALIDATION_SIDE, multiple) for photo in photos[1::4]]
    return calibration, validation


def _float_scope(model: openvino.Model) -> nncf.IgnoredScope:
    """NNCF's ignored scope: every op but the image-carrying convolutions."""
    import nncf

    kinds = {op.get_type_name() for op in model.get_ordered_ops()}
    return nncf.IgnoredScope(
        types=sorted(kinds - {"Convolution", "Parameter", "Result", "Constant"}),
        patterns=list(FLOAT_CONVOLUTION_PATTERNS),
        validate=False,
    )


def psnr_db(mse: float) -> float:
    """PSNR of images in [-1, 1] (peak-to-peak 2) from their mean squared error."""
    return float("inf") if mse <= 0 else 10 * float(np.log10(4.0 / mse))


def quantize(
    model: openvino.Model,
    calibration: Sequence[np.ndarray],
    validation: Sequence[np.ndarray],
    min_psnr_db: float = MIN_PSNR_DB,
) -> openvino.Model:
    """The INT8 OpenVINO model of a float one when it stays ``min_psnr_db`` close to it, else the float model.

    Args:
        model: an ``openvino.Model`` of a generator, (1, 3, H, W) in [-1, 1] -> the same.
        calibration: inputs its activation ranges are measured on, each (1, 3, H, W) float32 in [-1, 1].
        validation: other photos, the same way, it is checked on.
    """
    import nncf

    if not calibration or not validation:
        raise ValueError("INT8 needs calibration photos (JPEG or PNG files); none were found")
    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(calibration)),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(calibration),
        ignored_scope=_float_scope(model),
    )
    hoist_quantizers_above_pads(quantized)
    score = fidelity_db(quantized, model, validation)
    if score >= min_psnr_db:
        log.info("INT8 model: %.1f dB against the float model on %d held-out photos", score, len(validation))
        return quantized
    log.warning("INT8 would give only %.1f dB against the float model (< %.0f): kept in float", score, min_psnr_db)
    return model


def hoist_quantizers_above_pads(model: openvino.Model) -> int:
    """Move each activation quantizer that reads a reflect or edge pad to the pad's input, in place; the output
    is bit-identical.

    NNCF puts the quantizer right before the convolution, after the generator's reflection pad. There it runs
    as a separate pass over the padded float map, and the pad copies float values through OpenVINO's reference
    kernel. Above the pad the quantizer fuses into the op before it and the pad copies 8-bit values: 12 % less
    time for the Shinkai generator at 512 px on AVX2. A copying pad commutes with a per-value function.

    Args:
        model: a quantized ``openvino.Model``.
    Returns:
        how many quantizers moved.
    """
    import openvino.opset13 as ops

    moved = 0
    for quantizer in model.get_ordered_ops():
        if quantizer.get_type_name() != "FakeQuantize":
            continue
        pads, source = [], quantizer.input_value(0)
        while (
            source.get_node().get_type_name() == "Pad"
            and len(source.get_target_inputs()) == 1
            and source.get_node().get_attributes()["pad_mode"] in COPYING_PAD_MODES
        ):
            pads.append(source.get_node())
            source = source.get_node().input_value(0)
        if not pads:
            continue
        attributes = quantizer.get_attributes()
        output = ops.fake_quantize(
            source, *(quantizer.input_value(i) for i in range(1, 5)), attributes["levels"], attributes["auto_broadcast"]
        ).output(0)
        for pad in reversed(pads):
            output = ops.pad(output, pad.input_value(1), pad.input_value(2), pad.get_attributes()["pad_mode"]).output(0)
        for reader in list(quantizer.output(0).get_target_inputs()):
            reader.replace_source_output(output)
        moved += 1
    model.validate_nodes_and_infer_types()
    return moved


def fidelity_db(candidate: openvino.Model, reference: openvino.Model, images: Sequence[np.ndarray]) -> float:
    """PSNR of ``candidate``'s outputs against ``reference``'s over ``images`` (from their mean squared error)."""
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    run_candidate, run_reference = (
        core.compile_model(candidate, "CPU", config),
        core.compile_model(reference, "CPU", config),
    )
    errors = [float(np.mean((run_candidate(image)[0] - run_reference(image)[0]) ** 2)) for image in images]
    return psnr_db(float(np.mean(errors)))
