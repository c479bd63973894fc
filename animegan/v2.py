"""The AnimeGANv2 generator, its weight files, and a converter from the int8 TFLite release.

The network and its state_dict keys follow bryandlee/animegan2-pytorch, so the public
``face_paint_512_v2.pt``, ``celeba_distill.pt`` and ``paprika.pt`` load with ``load_state_dict`` unchanged.

The original TensorFlow AnimeGANv2 (TachibanaYoshino) has the same layers, reflection pads and
layer norms; the one difference is its upsampling: TF1 ``tf.image.resize_images`` is bilinear with
neither aligned corners nor half-pixel centres (the TFLite graph says ``alignCorners=False,
halfPixelCenters=False``). bryandlee's port uses ``align_corners=True``, which its README notes gives
slightly different results. Weights converted from TensorFlow therefore run with
``upsampling="tf_legacy"``; bryandlee's weights run with the default ``"align_corners"``. (TF's layer
norm also uses eps 1e-12 where GroupNorm uses 1e-5; on real activations that moved the output by
less than 0.001 dB, so the weight-file-compatible 1e-5 stays.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from ai_edge_litert import schema_py_generated as tflite_schema
from ai_edge_litert.tools import flatbuffer_utils
from safetensors.torch import load_file as load_safetensors
from torch import Tensor, nn

from animegan.errors import WeightsCorrupt, WeightsMissing

Upsampling = Literal["align_corners", "half_pixel", "tf_legacy"]

LEAKY_RELU_SLOPE = 0.2
EXPANSION_RATIO = 2
RGB_CHANNELS = 3
# (left, right, top, bottom): the TF original pads its stride-2 convs on the bottom and right only.
STRIDE2_PADDING = (0, 1, 0, 1)
TORCH_SUFFIXES = (".pt", ".pth")
SAFETENSORS_SUFFIX = ".safetensors"
TFLITE_SUFFIX = ".tflite"
TFLITE_FILE_IDENTIFIER = b"TFL3"


class ConvNormLReLU(nn.Sequential):
    """Reflection pad, conv, GroupNorm(1, C) (= TF layer norm over H, W, C), LeakyReLU(0.2).

    Children ``0`` pad, ``1`` conv, ``2`` norm, ``3`` activation: the indices are the weight-file keys.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | tuple[int, int, int, int] = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__(
            nn.ReflectionPad2d(padding),
            nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=0, groups=groups, bias=bias),
            nn.GroupNorm(num_groups=1, num_channels=out_ch),
            nn.LeakyReLU(LEAKY_RELU_SLOPE, inplace=True),
        )


class InvertedResBlock(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (with bias), 1x1 linear project, residual if shapes allow.

    Args:
        in_ch: input channels C_in.
        out_ch: output channels C_out; the residual is added when C_in == C_out.
    Shapes: (B, C_in, H, W) -> (B, C_out, H, W).
    """

    def __init__(self, in_ch: int, out_ch: int, expansion_ratio: int = EXPANSION_RATIO) -> None:
        super().__init__()
        self.use_residual = in_ch == out_ch
        hidden = round(in_ch * expansion_ratio)
        self.layers = nn.Sequential(
            ConvNormLReLU(in_ch, hidden, kernel_size=1, padding=0),
            ConvNormLReLU(hidden, hidden, groups=hidden, bias=True),
            nn.Conv2d(hidden, out_ch, kernel_size=1, bias=False),
            nn.GroupNorm(num_groups=1, num_channels=out_ch),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.layers(x)
        return x + out if self.use_residual else out


def resize_bilinear_tf_legacy(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize exactly as TF1 ``tf.image.resize_images`` (no aligned corners, no half-pixel centres).

    Output pixel ``i`` samples the input at ``i * in_size / out_size``; neighbours past the last pixel
    are clamped to it. PyTorch has no such mode (its ``align_corners=False`` uses half-pixel centres).

    Args:
        image: float tensor of shape (B, C, H, W).
        size: the output (H_out, W_out).
    Returns:
        the resized tensor, shape (B, C, H_out, W_out).
    """
    if image.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) tensor, got shape {tuple(image.shape)}")
    out_h, out_w = size
    # With one replicated row/column appended, align_corners=True onto (H_out + 1, W_out + 1) samples
    # at i * H / H_out with the edge clamp TF applies; cropping the extra row/column leaves TF's grid.
    padded = F.pad(image, (0, 1, 0, 1), mode="replicate")
    resized = F.interpolate(padded, size=(out_h + 1, out_w + 1), mode="bilinear", align_corners=True)
    return resized[..., :out_h, :out_w]


class AnimeGANv2Generator(nn.Module):
    """AnimeGANv2 generator (about 2.1 M parameters), keys as in bryandlee/animegan2-pytorch ``Generator``.

    Args:
        upsampling: how the two 2x bilinear upsamplings sample: ``"align_corners"`` (bryandlee's
            default, use it for his ``.pt`` weights), ``"half_pixel"`` (bryandlee's ``align_corners=False``)
            or ``"tf_legacy"`` (the original TensorFlow network, use it for weights converted from TF).
    """

    def __init__(self, upsampling: Upsampling = "align_corners") -> None:
        super().__init__()
        if upsampling not in get_args(Upsampling):
            raise ValueError(f"upsampling must be one of {get_args(Upsampling)}, not {upsampling!r}")
        self.upsampling: Upsampling = upsampling
        self.block_a = nn.Sequential(
            ConvNormLReLU(3, 32, kernel_size=7, padding=3),
            ConvNormLReLU(32, 64, stride=2, padding=STRIDE2_PADDING),
            ConvNormLReLU(64, 64),
        )
        self.block_b = nn.Sequential(
            ConvNormLReLU(64, 128, stride=2, padding=STRIDE2_PADDING),
            ConvNormLReLU(128, 128),
        )
        self.block_c = nn.Sequential(
            ConvNormLReLU(128, 128),
            InvertedResBlock(128, 256),
            InvertedResBlock(256, 256),
            InvertedResBlock(256, 256),
            InvertedResBlock(256, 256),
            ConvNormLReLU(256, 128),
        )
        self.block_d = nn.Sequential(ConvNormLReLU(128, 128), ConvNormLReLU(128, 128))
        self.block_e = nn.Sequential(
            ConvNormLReLU(128, 64),
            ConvNormLReLU(64, 64),
            ConvNormLReLU(64, 32, kernel_size=7, padding=3),
        )
        self.out_layer = nn.Sequential(nn.Conv2d(32, RGB_CHANNELS, kernel_size=1, bias=False), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        """Stylize a batch.

        Args:
            x: RGB in [-1, 1], shape (B, 3, H, W), H and W at least 8 (multiples of 4 match TF exactly).
        Returns:
            the stylized RGB in [-1, 1] (tanh), shape (B, 3, H, W).
        """
        if x.ndim != 4 or x.shape[1] != RGB_CHANNELS:
            raise ValueError(f"expected an RGB batch of shape (B, 3, H, W), got {tuple(x.shape)}")
        half = self.block_a(x)
        out = self.block_c(self.block_b(half))
        out = self.block_d(self._upsample(out, half.shape[-2:]))
        out = self.block_e(self._upsample(out, x.shape[-2:]))
        styled: Tensor = self.out_layer(out)
        return styled

    def _upsample(self, features: Tensor, size: torch.Size) -> Tensor:
        # Resizing to the encoder's size (not a fixed 2x) keeps odd input sizes round-tripping. The sizes stay
        # as traced values (no int()), so a traced/converted graph keeps dynamic H and W.
        target = (size[0], size[1])
        if self.upsampling == "tf_legacy":
            return resize_bilinear_tf_legacy(features, target)
        aligned = self.upsampling == "align_corners"
        return F.interpolate(features, size=target, mode="bilinear", align_corners=aligned)


def load_generator(path: Path, upsampling: Upsampling | None = None) -> AnimeGANv2Generator:
    """Build an AnimeGANv2 generator in eval mode from a weight file, chosen by its suffix.

    ``.pt``/``.pth`` (a bryandlee state_dict, read with ``weights_only=True``) and ``.safetensors`` default to
    ``upsampling="align_corners"``; ``.tflite`` (converted by ``state_dict_from_tflite``) to ``"tf_legacy"``.

    Raises:
        WeightsMissing: the file does not exist.
        WeightsCorrupt: the file cannot be read or does not hold this network's weights.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsMissing(f"The AnimeGANv2 weight file {path.name} is not installed.")
    suffix = path.suffix.lower()
    default_upsampling: Upsampling
    if suffix == TFLITE_SUFFIX:
        state_dict, default_upsampling = state_dict_from_tflite(path), "tf_legacy"
    elif suffix in TORCH_SUFFIXES or suffix == SAFETENSORS_SUFFIX:
        state_dict, default_upsampling = _read_torch_state_dict(path), "align_corners"
    else:
        raise WeightsCorrupt(f"{path.name} is not an AnimeGANv2 weight file (.pt, .pth, .safetensors or .tflite).")
    generator = AnimeGANv2Generator(upsampling or default_upsampling)
    try:
        generator.load_state_dict(state_dict)
    except RuntimeError as error:
        raise WeightsCorrupt(f"{path.name} does not hold AnimeGANv2 generator weights.") from error
    return generator.eval()


def _read_torch_state_dict(path: Path) -> dict[str, Tensor]:
    try:
        if path.suffix.lower() == SAFETENSORS_SUFFIX:
            return load_safetensors(path)
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # each reader raises its own types on a damaged file
        raise WeightsCorrupt(f"The weight file {path.name} is damaged and cannot be read.") from error
    if not isinstance(state_dict, dict):
        raise WeightsCorrupt(f"{path.name} does not hold a state_dict.")
    return state_dict


# ---- TFLite conversion -------------------------------------------------------------------------------------------


_WEIGHT_DTYPES = {
    tflite_schema.TensorType.INT8: np.int8,
    tflite_schema.TensorType.INT32: np.int32,
    tflite_schema.TensorType.FLOAT32: np.float32,
}


def state_dict_from_tflite(path: Path) -> dict[str, Tensor]:
    """Read the weights of a TFLite AnimeGANv2 generator (int8 or float) as a float32 state_dict.

    Each constant is dequantized with its own scale and zero point (per output channel for conv
    kernels), then laid out as PyTorch wants: conv kernels OHWI -> OIHW, depthwise kernels
    (1, kH, kW, C) -> (C, 1, kH, kW). Layer-norm gamma/beta come from the decomposed norm's ``MUL``
    and ``SUB`` constants. Weights are matched to the network's keys in graph order, and every
    role and shape is checked. Run the result with ``upsampling="tf_legacy"``.

    Args:
        path: a ``.tflite`` file converted from TachibanaYoshino's AnimeGANv2 TF checkpoint.
    Returns:
        a state_dict for ``AnimeGANv2Generator`` (77 float32 tensors).
    Raises:
        WeightsCorrupt: the file is not a TFLite model of this generator.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[4:8] != TFLITE_FILE_IDENTIFIER:
        raise WeightsCorrupt(f"{path.name} is not a TFLite model file.")
    try:
        model = flatbuffer_utils.read_model_from_bytearray(data)
    except Exception as error:  # the flatbuffer reader raises assorted types on a damaged file
        raise WeightsCorrupt(f"The TFLite file {path.name} is damaged and cannot be read.") from error
    found = _graph_parameters(model, path.name)
    wanted = _expected_parameters(AnimeGANv2Generator())
    if [(role, shape) for _, role, shape in wanted] != [(role, tuple(value.shape)) for role, value in found]:
        raise WeightsCorrupt(
            f"{path.name} is not the AnimeGANv2 generator graph: its {len(found)} weights do not match "
            f"the {len(wanted)} weights of the network in layer order."
        )
    return {key: value for (key, _, _), (_, value) in zip(wanted, found, strict=True)}


def _expected_parameters(generator: AnimeGANv2Generator) -> list[tuple[str, str, tuple[int, ...]]]:
    """(key, role, shape) per state_dict entry, in layer order; role is e.g. 'conv.weight' or 'norm.bias'."""
    modules = dict(generator.named_modules())
    expected = []
    for key, value in generator.state_dict().items():
        owner, name = key.rsplit(".", 1)
        kind = "norm" if isinstance(modules[owner], nn.GroupNorm) else "conv"
        expected.append((key, f"{kind}.{name}", tuple(value.shape)))
    return expected


def _graph_parameters(model: tflite_schema.ModelT, file_name: str) -> list[tuple[str, Tensor]]:
    """The generator's weights as (role, tensor) in graph order, already in PyTorch layout.

    Convs give their kernel and, when it is not all zeros, their bias (TF's plain convs have no bias;
    the converter adds zero ones). A layer norm shows up as ``MUL(rsqrt(var + eps), gamma)`` and
    ``SUB(beta, mean * scale)``: the only MUL and SUB ops with a constant vector operand.
    """
    op = tflite_schema.BuiltinOperator
    if len(model.subgraphs) != 1:
        raise WeightsCorrupt(f"{file_name} is not the AnimeGANv2 generator graph (it has several subgraphs).")
    graph = model.subgraphs[0]
    parameters: list[tuple[str, Tensor]] = []
    for operator in graph.operators:
        code = flatbuffer_utils.get_builtin_code_from_operator_code(model.operatorCodes[operator.opcodeIndex])
        constants = [_constant(model, graph, index) for index in operator.inputs]
        if code in (op.CONV_2D, op.DEPTHWISE_CONV_2D):
            kernel, bias = constants[1], constants[2] if len(constants) > 2 else None
            if kernel is None:
                raise WeightsCorrupt(f"{file_name} has a convolution whose kernel is not stored in the file.")
            layout = (0, 3, 1, 2) if code == op.CONV_2D else (3, 0, 1, 2)
            parameters.append(("conv.weight", kernel.permute(layout).contiguous()))
            if bias is not None and bool(bias.any()):
                parameters.append(("conv.bias", bias))
        elif code in (op.MUL, op.SUB):
            vectors = [value for value in constants if value is not None and value.ndim == 1]
            if len(vectors) == 1:
                parameters.append(("norm.weight" if code == op.MUL else "norm.bias", vectors[0]))
    return parameters


def _constant(model: tflite_schema.ModelT, graph: tflite_schema.SubGraphT, index: int) -> Tensor | None:
    """A constant tensor of the graph, dequantized to float32; None for activations and absent inputs."""
    if index < 0:
        return None
    tensor = graph.tensors[index]
    raw = model.buffers[tensor.buffer].data
    if raw is None or len(raw) == 0:
        return None
    if tensor.type not in _WEIGHT_DTYPES:
        return None
    shape = [int(n) for n in tensor.shape] if tensor.shape is not None else []
    values = np.frombuffer(bytes(raw), dtype=_WEIGHT_DTYPES[tensor.type]).reshape(shape)
    return torch.from_numpy(_dequantize(values, tensor.quantization))


def _dequantize(values: np.ndarray, quantization: tflite_schema.QuantizationParametersT | None) -> np.ndarray:
    """real = (q - zero_point) * scale, per tensor or along ``quantizedDimension`` per channel."""
    if values.dtype == np.float32 or quantization is None or quantization.scale is None:
        return values.astype(np.float32)
    scale = np.asarray(quantization.scale, dtype=np.float32)
    zero_point = np.asarray(quantization.zeroPoint, dtype=np.float32)
    if scale.size > 1:
        per_channel = [1] * values.ndim
        per_channel[quantization.quantizedDimension] = scale.size
        scale, zero_point = scale.reshape(per_channel), zero_point.reshape(per_channel)
    return (values.astype(np.float32) - zero_point) * scale
