"""From an installed weight file to a ready generator: convert once to safetensors, then build the module.

Conversions (ONNX, TFLite) run once per file and are cached beside the weights, keyed by the file's sha256,
so a second start only reads a small safetensors file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from animegan.manifest import ModelFile
from animegan.weights import expected_sha256, sha256_of, verify_model

CONVERTED_DIR = "converted"


def converted_path(model: ModelFile, weights_dir: Path) -> Path:
    """Where the safetensors state_dict of ``model`` is cached (name carries the source file's sha256)."""
    digest = expected_sha256(model, weights_dir) or sha256_of(model.path(weights_dir))
    return weights_dir / CONVERTED_DIR / f"{model.name}-{digest[:16]}.safetensors"


def _convert(model: ModelFile, path: Path) -> dict[str, Tensor]:
    if model.architecture == "animeganv3":
        from animegan.v3 import state_dict_from_onnx

        return state_dict_from_onnx(path)
    from animegan import v2

    if path.suffix == v2.TFLITE_SUFFIX:
        return v2.state_dict_from_tflite(path)
    return v2.load_generator(path).state_dict()


def prepared_state_dict(model: ModelFile, weights_dir: Path) -> dict[str, Tensor]:
    """The float32 state_dict of an installed model, converting and caching it on first use.

    Raises ``WeightsMissing``/``WeightsCorrupt`` (from ``verify_model``) with the fix in the message.
    """
    cached = converted_path(model, weights_dir)
    if cached.is_file():
        return load_file(cached)
    source = verify_model(model, weights_dir)
    state = {key: value.contiguous() for key, value in _convert(model, source).items()}
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"{cached.name}.{os.getpid()}.part")  # one per process: workers may race here
    save_file(state, partial)
    partial.replace(cached)
    return state


def build_generator(model: ModelFile, weights_dir: Path) -> nn.Module:
    """The fp32 generator of ``model`` in eval mode, weights loaded strictly."""
    state = prepared_state_dict(model, weights_dir)
    if model.architecture == "animeganv3":
        from animegan.v3 import AnimeGANv3Generator

        generator: nn.Module = AnimeGANv3Generator.from_state_dict(state)
    else:
        from animegan.v2 import AnimeGANv2Generator, Upsampling

        # Weights converted from the TensorFlow release were trained with TF's legacy bilinear resize.
        upsampling: Upsampling = "tf_legacy" if model.file.endswith(".tflite") else "align_corners"
        generator = AnimeGANv2Generator(upsampling=upsampling)
        generator.load_state_dict(state, strict=True)
    generator.eval()
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    return generator


def size_multiple(model: ModelFile) -> int:
    """H and W of a generator's input must be multiples of this."""
    return 8 if model.architecture == "animeganv3" else 4


@torch.inference_mode()
def warm_up(generator: nn.Module, size: int = 64) -> None:
    """One small forward pass, so the first real request does not pay for lazy initialisation."""
    generator(torch.zeros(1, 3, size, size))
