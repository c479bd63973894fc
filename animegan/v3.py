"""The AnimeGANv3 generator in PyTorch, and a converter from the official tf2onnx ONNX releases.

One class runs the four released generators. Shinkai 37, Hayao 36 and PortraitSketch share a layout
(two conv blocks per stage, LADE norms, and the attention's batch norm folded into its last conv by the
export). JP_face v1.0 is deeper (three blocks per stage), uses layer norms, and adds an instance norm
to the attention, a 7x7 last block and a 3x3 output conv. ``AnimeGANv3Generator.from_state_dict``
reads which one it is from the tensors, so every file loads through the same two calls.

The network follows TachibanaYoshino/AnimeGANv3 (``net/generator.py``, ``tools/ops.py``): a U-Net
with reflection pads, an external-attention bottleneck and TF1 bilinear upsampling. The released
ONNX graphs hold only the "main" path, with TF scope names, so the converter maps
``generator/base/Conv_7`` and the like to this module's keys.

Over 400 lines on purpose: the network and the converter of its weight files belong together (the converter
names every layer the network declares), as in the AnimeGANv2 ``model.py`` this project follows.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import Tensor, nn

from animegan.errors import WeightsCorrupt, WeightsMissing

Norm = Literal["lade", "layer"]
LADE_STATISTICS_STRIDE = 2
AttentionNorm = Literal["none", "layer", "instance"]

SIZE_MULTIPLE = 8  # three stride-2 stages
RGB_CHANNELS = 3
LEAKY_RELU_SLOPE = 0.2
STEM_KERNEL = 7
BLOCK_KERNEL = 3
DOWNSAMPLE_STRIDE = 2
ATTENTION_MEMORY = 128
# The exported graphs add 1e-7 (the TF source says 1e-9, which float16 cannot hold).
ATTENTION_EPS = 1e-7
DECODER_STAGES = 3
MIN_DEPTH = 2  # a stage's first block changes the size or the width, its last one may change the kernel
ENCODER_STAGES = 4


@dataclass(frozen=True)
class GeneratorConfig:
    """What differs between the released generators; the defaults are Shinkai 37."""

    widths: tuple[int, ...] = (32, 64, 128, 128)  # the ENCODER_STAGES outputs, full size to H/8
    depth: int = 2  # conv blocks per stage after the stem; JP_face: 3
    norm: Norm = "lade"  # JP_face: "layer"
    norm_eps: float = 1e-5
    attention_memory: int = ATTENTION_MEMORY
    attention_norm: AttentionNorm = "none"  # PortraitSketch: "layer", JP_face: "instance"
    attention_norm_eps: float = 1e-5
    last_kernel: int = BLOCK_KERNEL  # the decoder's last block; JP_face: 7
    out_kernel: int = STEM_KERNEL  # JP_face: 3

    def __post_init__(self) -> None:
        if self.depth < MIN_DEPTH:
            raise ValueError(f"depth must be at least {MIN_DEPTH}, got {self.depth}")
        if len(self.widths) != ENCODER_STAGES:
            raise ValueError(f"expected {ENCODER_STAGES} stage widths, got {self.widths}")


def reflect_padding(kernel_size: int, stride: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) pads of AnimeGANv3's ``Conv2D``: the odd pixel goes before (top/left)."""
    total = kernel_size - stride
    before, after = total - total // 2, total // 2
    return (before, after, before, after)


def upsample_2x(x: Tensor) -> Tensor:
    """Bilinear 2x upsampling as TF1 ``tf.image.resize_images`` does it (``align_corners=False``,
    ``half_pixel_centers=False``): output pixel i samples input position i / 2.

    PyTorch has no such mode; ``align_corners=True`` onto (2H - 1, 2W - 1) samples exactly i / 2, and
    TF clamps the last row and column to the input's edge, which the replicate pad reproduces.

    Args:
        x: (B, C, H, W).
    Returns:
        (B, C, 2H, 2W).
    """
    height, width = x.shape[-2:]
    x = F.interpolate(x, size=(2 * height - 1, 2 * width - 1), mode="bilinear", align_corners=True)
    return F.pad(x, (0, 1, 0, 1), mode="replicate")


class LADE(nn.Module):
    """Linearly adaptive denormalization: instance-normalise x, then give each channel the mean and
    standard deviation of a learned 1x1 projection of x. Shapes: (B, C, H, W) -> (B, C, H, W).

    Hand-written because torch has no norm that takes its statistics from another tensor; the
    normalising half is ``F.instance_norm``. With ``statistics_stride`` s > 1 the projection's statistics come
    from every s-th row and column only (see ``sample_lade_statistics``).
    """

    def __init__(self, channels: int, eps: float) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1, bias=False)
        self.eps = eps
        self.statistics_stride = 1

    def forward(self, x: Tensor) -> Tensor:
        stride = self.statistics_stride
        sampled = x[..., ::stride, ::stride] if stride > 1 else x
        var, mean = torch.var_mean(self.proj(sampled), dim=(2, 3), correction=0, keepdim=True)
        return F.instance_norm(x, eps=self.eps) * torch.sqrt(var + self.eps) + mean


def sample_lade_statistics(network: nn.Module, stride: int = LADE_STATISTICS_STRIDE) -> nn.Module:
    """Let every LADE of ``network`` take its projection's statistics from every ``stride``-th row and column.

    The projection and its reductions are a quarter of the compiled INT8 generator's time at stride 1, and a
    channel's mean and spread over a 2x-subsampled feature map (tens of thousands of positions) hardly differ
    from the full map's: 45-55 dB against exact statistics on the calibration photos. Eager fp32, the reference,
    keeps exact statistics. Returns ``network``, changed in place.
    """
    for module in network.modules():
        if isinstance(module, LADE):
            module.statistics_stride = stride
    return network


def make_norm(kind: Norm | AttentionNorm, channels: int, eps: float) -> nn.Module:
    """The norm layer named by ``kind``; "layer" is TF's layer norm over (C, H, W) with per-channel affine."""
    if kind == "lade":
        return LADE(channels, eps)
    if kind == "layer":
        return nn.GroupNorm(1, channels, eps=eps)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, eps=eps, affine=True)
    return nn.Identity()


class ConvNormLReLU(nn.Sequential):
    """Reflection pad, conv (no bias), norm, LeakyReLU(0.2). Shapes: (B, C_in, H, W) -> (B, C_out, H/s, W/s)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, norm: nn.Module) -> None:
        super().__init__(
            OrderedDict(
                pad=nn.ReflectionPad2d(reflect_padding(kernel_size, stride)),
                conv=nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, bias=False),
                norm=norm,
                act=nn.LeakyReLU(LEAKY_RELU_SLOPE),
            )
        )


class ExternalAttention(nn.Module):
    """External attention (Guo et al. 2021) with one memory matrix used as key and, transposed, as value.

    Softmax over positions, then each position is divided by its sum over memory slots; a residual
    around the whole block. Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, memory_size: int, norm: nn.Module) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(channels, channels, 1, bias=False)
        self.memory = nn.Conv2d(channels, memory_size, 1, bias=False)
        self.conv_out = nn.Conv2d(channels, channels, 1, bias=False)
        self.norm = norm
        self.act = nn.LeakyReLU(LEAKY_RELU_SLOPE)

    def forward(self, x: Tensor) -> Tensor:
        attn = self.memory(self.conv_in(x))
        attn = attn.flatten(2).softmax(dim=-1).unflatten(2, attn.shape[2:])
        attn = attn / (ATTENTION_EPS + attn.sum(dim=1, keepdim=True))
        out = F.conv2d(attn, self.memory.weight.transpose(0, 1))
        result: Tensor = self.act(self.norm(self.conv_out(out)) + x)
        return result


class UpStage(nn.Sequential):
    """Upsample 2x, the first block, add the encoder's skip, the other blocks.

    Shapes: x (B, C_in, h, w), skip (B, C, 2h, 2w) -> (B, C, 2h, 2w). A ``Sequential``, so its blocks keep the
    weight files' keys ``decoder.{stage}.{block}``, though its ``forward`` takes a second input.
    """

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:  # type: ignore[override]  # also takes the encoder's skip
        x = self[0](upsample_2x(x)) + skip
        for block in self[1:]:
            x = block(x)
        return x


class AnimeGANv3Generator(nn.Module):
    """AnimeGANv3 generator: RGB (B, 3, H, W) in [-1, 1] -> anime RGB (B, 3, H, W) in [-1, 1].

    H and W must be multiples of ``SIZE_MULTIPLE``. Keys: ``encoder.{stage}.{block}``,
    ``attention``, ``decoder.{stage}.{block}``, ``out``. The buffers ``norm_eps``, ``attention_norm_eps``
    and ``attention_norm`` are not used by ``forward``: they record what the weights alone cannot tell,
    so ``from_state_dict`` rebuilds the right variant.
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__()
        self.config = config
        w, depth = config.widths, config.depth

        def block(in_ch: int, out_ch: int, kernel: int = BLOCK_KERNEL, stride: int = 1) -> ConvNormLReLU:
            return ConvNormLReLU(in_ch, out_ch, kernel, stride, make_norm(config.norm, out_ch, config.norm_eps))

        self.encoder = nn.ModuleList([nn.Sequential(block(RGB_CHANNELS, w[0], kernel=STEM_KERNEL))])
        for start, end in pairwise(w):  # the stride-2 block keeps the width, the next one widens
            self.encoder.append(
                nn.Sequential(
                    block(start, start, stride=DOWNSAMPLE_STRIDE),
                    block(start, end),
                    *(block(end, end) for _ in range(depth - 2)),
                )
            )
        attention_norm = make_norm(config.attention_norm, w[-1], config.attention_norm_eps)
        self.attention = ExternalAttention(w[-1], config.attention_memory, attention_norm)
        self.decoder = nn.ModuleList()
        for stage, (start, end) in enumerate(pairwise(reversed(w))):  # each ends at its skip's width
            last_kernel = config.last_kernel if stage == DECODER_STAGES - 1 else BLOCK_KERNEL
            self.decoder.append(
                UpStage(
                    block(start, end),
                    *(block(end, end) for _ in range(depth - 2)),
                    block(end, end, kernel=last_kernel),
                )
            )
        self.out = nn.Sequential(
            OrderedDict(
                pad=nn.ReflectionPad2d(reflect_padding(config.out_kernel, 1)),
                conv=nn.Conv2d(w[0], RGB_CHANNELS, config.out_kernel, bias=False),
            )
        )
        self.register_buffer("norm_eps", torch.tensor(config.norm_eps, dtype=torch.float64))
        self.register_buffer("attention_norm_eps", torch.tensor(config.attention_norm_eps, dtype=torch.float64))
        attention_norm_code = get_args(AttentionNorm).index(config.attention_norm)
        self.register_buffer("attention_norm", torch.tensor(attention_norm_code))

    def forward(self, x: Tensor) -> Tensor:
        """Stylise x: (B, 3, H, W) in [-1, 1], H and W multiples of 8 -> (B, 3, H, W) in [-1, 1]."""
        if x.ndim != 4 or x.shape[1] != RGB_CHANNELS or x.shape[2] % SIZE_MULTIPLE or x.shape[3] % SIZE_MULTIPLE:
            raise ValueError(f"expected (B, 3, H, W) with H, W multiples of {SIZE_MULTIPLE}, got {tuple(x.shape)}")
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = self.attention(skips.pop())
        for stage in self.decoder:
            x = stage(x, skips.pop())
        return torch.tanh(self.out(x))

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Tensor]) -> AnimeGANv3Generator:
        """Build the variant the tensors describe (widths, depth, norms, kernels) and load them, strictly.

        Raises:
            ValueError: the dict is not an AnimeGANv3 generator's.
        """
        try:
            depth = sum(1 for key in state_dict if re.fullmatch(r"encoder\.1\.\d+\.conv\.weight", key))
            stage_out = [state_dict[f"encoder.{s}.{min(s, 1)}.conv.weight"].shape[0] for s in range(ENCODER_STAGES)]
            config = GeneratorConfig(
                widths=tuple(int(c) for c in stage_out),
                depth=depth,
                norm="lade" if "encoder.0.0.norm.proj.weight" in state_dict else "layer",
                norm_eps=float(state_dict["norm_eps"]),
                attention_memory=state_dict["attention.memory.weight"].shape[0],
                attention_norm=get_args(AttentionNorm)[int(state_dict["attention_norm"])],
                attention_norm_eps=float(state_dict["attention_norm_eps"]),
                last_kernel=state_dict[f"decoder.{DECODER_STAGES - 1}.{depth - 1}.conv.weight"].shape[-1],
                out_kernel=state_dict["out.conv.weight"].shape[-1],
            )
            model = cls(config)
            model.load_state_dict(state_dict)
        except (KeyError, IndexError, RuntimeError) as err:
            raise ValueError(f"not an AnimeGANv3 generator state_dict: {err}") from err
        return model


# ---------------------------------------------------------------- ONNX (tf2onnx export) -> state_dict

# Weights and norm gammas are named after their TF scope, e.g. "generator/base/Conv_7/weights/read:0",
# "generator_1/main/External_attention/conv1d/ExpandDims_1:0", "generator/main/LayerNorm_3/gamma/read:0".
_SCOPE = re.compile(r"(?:^|/)(base|main)/(External_attention/)?(Conv|conv1d|LayerNorm|InstanceNorm)(?:_(\d+))?/")
_BETA_SUB = re.compile(r"/(?:batchnorm|instancenorm)/sub$")  # beta - mean * gamma / std: input 0 is beta

Scope = tuple[str, str, int]  # ("base" | "main" | "attention", TF layer kind, TF index)


def _scope(name: str) -> Scope | None:
    match = _SCOPE.search(name)
    if match is None:
        return None
    part, attention, kind, index = match.groups()
    return ("attention" if attention else part, kind, int(index or 0))


class _Mismatch(Exception):
    """The graph is readable ONNX but not the AnimeGANv3 layout; the text says where it differs."""


@dataclass
class _ExportedGraph:
    """The tensors of a tf2onnx AnimeGANv3 graph, by TF scope, as float32 torch tensors."""

    convs: dict[Scope, Tensor]
    conv_strides: dict[Scope, int]
    gammas: dict[Scope, Tensor]
    betas: dict[Scope, Tensor]
    norm_eps: set[float]
    attention_eps: set[float]
    op_counts: Counter[str]

    @classmethod
    def read(cls, model: onnx.ModelProto) -> _ExportedGraph:
        arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}

        def tensor(name: str) -> Tensor:
            return torch.from_numpy(arrays[name].astype(np.float32))

        graph = cls({}, {}, {}, {}, set(), set(), Counter(node.op_type for node in model.graph.node))
        for node in model.graph.node:
            constants = [name for name in node.input if name in arrays]
            if node.op_type == "Conv" and len(node.input) >= 2 and node.input[1] in arrays:
                if (scope := _scope(node.input[1])) is not None:
                    graph.convs[scope] = tensor(node.input[1])
                    strides = next((a.ints for a in node.attribute if a.name == "strides"), [1])
                    graph.conv_strides[scope] = int(strides[0])
            elif node.op_type == "Mul" and constants and (scope := _scope(constants[0])) and "/gamma/" in constants[0]:
                graph.gammas[scope] = tensor(constants[0]).flatten()
            elif node.op_type == "Sub" and _BETA_SUB.search(node.name) and node.input[0] in arrays:
                if (scope := _scope(node.name + "/")) is not None:
                    graph.betas[scope] = tensor(node.input[0]).flatten()
            elif node.op_type == "Add" and constants and any("variance" in name for name in node.input):
                eps = float(arrays[constants[0]].reshape(-1)[0])
                (graph.attention_eps if "External_attention/" in node.name else graph.norm_eps).add(eps)
        return graph

    def conv(self, part: str, kind: str, index: int, stride: int = 1) -> Tensor:
        scope = (part, kind, index)
        if scope not in self.convs:
            raise _Mismatch(f"it has no layer {part}/{kind}_{index}")
        if self.conv_strides[scope] != stride:
            raise _Mismatch(f"layer {part}/{kind}_{index} has stride {self.conv_strides[scope]}, not {stride}")
        return self.convs[scope]

    def count(self, part: str, kind: str = "Conv") -> int:
        indices = sorted(index for p, k, index in self.convs if (p, k) == (part, kind))
        if indices != list(range(len(indices))):
            raise _Mismatch(f"its {part} layers are not numbered 0..n")
        return len(indices)


def _assemble(graph: _ExportedGraph) -> dict[str, Tensor]:
    """Map the TF-scoped tensors onto AnimeGANv3Generator keys (see the class docstring)."""
    norm: Norm = "layer" if ("base", "LayerNorm", 0) in graph.gammas else "lade"
    convs_per_block = 2 if norm == "lade" else 1  # LADE's projection is a conv of its own in TF
    encoder_blocks = graph.count("base") // convs_per_block
    depth, remainder = divmod(encoder_blocks - 1, ENCODER_STAGES - 1)
    decoder_blocks = DECODER_STAGES * depth
    if depth < MIN_DEPTH or remainder or graph.count("main") != decoder_blocks * convs_per_block + 1:
        raise _Mismatch("its numbers of encoder and decoder layers do not fit together")
    if len(graph.norm_eps) != 1:
        raise _Mismatch("its norm layers do not share one epsilon")
    expected_ops = {  # one activation per block and one after the attention
        "LeakyRelu": encoder_blocks + decoder_blocks + 1,
        "Upsample|Resize": DECODER_STAGES,
        "Softmax": 1,
        "Tanh": 1,
    }
    for ops, expected in expected_ops.items():
        if (found := sum(graph.op_counts[op] for op in ops.split("|"))) != expected:
            raise _Mismatch(f"it has {found} {ops} operations, not {expected}")

    state: dict[str, Tensor] = {}

    def add_block(key: str, part: str, index: int, stride: int) -> None:
        state[f"{key}.conv.weight"] = graph.conv(part, "Conv", index * convs_per_block, stride)
        if norm == "lade":
            state[f"{key}.norm.proj.weight"] = graph.conv(part, "Conv", index * convs_per_block + 1)
            return
        scope = (part, "LayerNorm", index)
        if scope not in graph.gammas or scope not in graph.betas:
            raise _Mismatch(f"it has no layer norm {part}/LayerNorm_{index}")
        state[f"{key}.norm.weight"], state[f"{key}.norm.bias"] = graph.gammas[scope], graph.betas[scope]

    add_block("encoder.0.0", "base", 0, 1)
    for index in range(1, encoder_blocks):
        stage, block = divmod(index - 1, depth)
        add_block(f"encoder.{stage + 1}.{block}", "base", index, DOWNSAMPLE_STRIDE if block == 0 else 1)

    memory = graph.conv("attention", "conv1d", 0)
    if not torch.equal(graph.conv("attention", "conv1d", 1), memory.transpose(0, 1)):
        raise _Mismatch("its attention memory is not shared between key and value")
    state["attention.conv_in.weight"] = graph.conv("attention", "Conv", 0)
    state["attention.memory.weight"] = memory
    state["attention.conv_out.weight"] = graph.conv("attention", "Conv", 1)
    attention_norm: AttentionNorm = "none"
    norm_kinds: tuple[tuple[str, AttentionNorm], ...] = (("LayerNorm", "layer"), ("InstanceNorm", "instance"))
    for kind, name in norm_kinds:
        if (scope := ("attention", kind, 0)) in graph.gammas and scope in graph.betas:
            attention_norm = name
            state["attention.norm.weight"], state["attention.norm.bias"] = graph.gammas[scope], graph.betas[scope]
    if attention_norm != "none" and len(graph.attention_eps) != 1:
        raise _Mismatch("its attention norm has no single epsilon")

    for index in range(decoder_blocks):
        add_block(f"decoder.{index // depth}.{index % depth}", "main", index, 1)
    state["out.conv.weight"] = graph.conv("main", "Conv", decoder_blocks * convs_per_block)

    state["norm_eps"] = torch.tensor(graph.norm_eps.pop(), dtype=torch.float64)
    attention_eps = max(graph.attention_eps, default=GeneratorConfig.attention_norm_eps)
    state["attention_norm_eps"] = torch.tensor(attention_eps, dtype=torch.float64)
    state["attention_norm"] = torch.tensor(get_args(AttentionNorm).index(attention_norm))
    return state


def state_dict_from_onnx(path: Path) -> dict[str, Tensor]:
    """Read an AnimeGANv3 tf2onnx export (fp16 or fp32) into ``AnimeGANv3Generator`` keys, float32.

    Only the ``onnx`` package is used; the graph need not be topologically sorted.

    Raises:
        WeightsMissing: there is no file at ``path``.
        WeightsCorrupt: the file is not ONNX, or not the AnimeGANv3 generator layout.
    """
    state, _ = _read_onnx(path)
    return state


def load_generator(path: Path) -> AnimeGANv3Generator:
    """The generator stored in an AnimeGANv3 ONNX file, in eval mode (errors as ``state_dict_from_onnx``)."""
    _, model = _read_onnx(path)
    return model.eval()


def _read_onnx(path: Path) -> tuple[dict[str, Tensor], AnimeGANv3Generator]:
    if not path.is_file():
        raise WeightsMissing(f"The weight file {path.name} is not there.")
    try:
        model = onnx.load(str(path))
    except Exception as err:  # protobuf raises several unrelated types on foreign bytes
        raise WeightsCorrupt(f"The weight file {path.name} is not a readable ONNX model.") from err
    not_v3 = f"The weight file {path.name} is not an AnimeGANv3 generator"
    try:
        state = _assemble(_ExportedGraph.read(model))
    except _Mismatch as err:
        raise WeightsCorrupt(f"{not_v3}: {err}.") from err
    try:
        generator = AnimeGANv3Generator.from_state_dict(state)  # checks every shape against the layout
    except ValueError as err:
        raise WeightsCorrupt(f"{not_v3}: its layer shapes do not fit together.") from err
    return state, generator
