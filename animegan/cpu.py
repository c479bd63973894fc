"""What this CPU can do fast: which precision paths are worth measuring for ``auto`` (``animegan.autotune``).

bf16 pays off only where the CPU computes it natively (AVX-512 BF16 or AMX); elsewhere OpenVINO would emulate it.
INT8 convolutions pay off on every x86 CPU with AVX2, VNNI (AVX-512 or AVX) only makes them faster.

``ONEDNN_MAX_CPU_ISA`` (oneDNN's own variable, honoured by OpenVINO's CPU plugin: with ``AVX2`` its convolutions
take their AVX2 kernels, ``jit_avx2_I8`` and ``brgconv_avx2_f32``, and a bf16 hint is refused) caps the ISA; the
flags here are capped the same way, so a process started with ``ONEDNN_MAX_CPU_ISA=AVX2`` on this machine measures,
and is keyed, as an AVX2-only CPU.
"""

from __future__ import annotations

import os
import platform
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import Literal

Precision = Literal["auto", "fp32", "openvino-fp32", "bf16", "int8", "int8-bf16"]
PRECISIONS: tuple[Precision, ...] = ("auto", "fp32", "openvino-fp32", "bf16", "int8", "int8-bf16")
# The precision paths and what each is (torch-free, for the CLI's help); "auto" is the fastest faithful one of
# ``candidate_paths()`` (``animegan.autotune``).
PRECISION_HELP = {
    "auto": "the fastest path that stays within 40 dB and 1/255 of eager fp32, measured once per CPU and model",
    "fp32": "eager PyTorch in fp32, the reference",
    "openvino-fp32": "OpenVINO, float model, fp32 maths",
    "bf16": "OpenVINO, float model, bf16 maths where the CPU has them natively (fp32 maths elsewhere)",
    "int8": "OpenVINO, INT8 convolutions on the image path, the rest in fp32 maths",
    "int8-bf16": "OpenVINO, INT8 convolutions, the rest in bf16 maths where native (fp32 maths elsewhere)",
}
CPUINFO = Path("/proc/cpuinfo")
# The flags that decide the precision, named as /proc/cpuinfo names them, in the order the bench prints them.
ISA_FLAGS = ("avx2", "avx512f", "avx_vnni", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
INT8_FLAGS = frozenset({"avx2", "avx512_vnni", "avx_vnni", "amx_int8"})
ISA_LIMIT_VARIABLE = "ONEDNN_MAX_CPU_ISA"
# What each oneDNN ISA cap (ONEDNN_MAX_CPU_ISA values) leaves of ISA_FLAGS; a cap not named here leaves them all.
_AVX2 = frozenset({"avx2"})
_AVX512 = _AVX2 | {"avx512f"}
ISA_LIMITS: dict[str, frozenset[str]] = {
    "SSE41": frozenset(),
    "AVX": frozenset(),
    "AVX2": _AVX2,
    "AVX2_VNNI": _AVX2 | {"avx_vnni"},
    "AVX2_VNNI_2": _AVX2 | {"avx_vnni"},
    "AVX512_CORE": _AVX512,
    "AVX512_CORE_VNNI": _AVX512 | {"avx512_vnni", "avx_vnni"},
    "AVX512_CORE_BF16": _AVX512 | {"avx512_vnni", "avx_vnni", "avx512_bf16"},
}


def isa_limit() -> str:
    """The ISA cap this process runs under (``ONEDNN_MAX_CPU_ISA``, upper case), or "" for none."""
    return os.environ.get(ISA_LIMIT_VARIABLE, "").strip().upper()


def cpu_flags() -> frozenset[str]:
    """The ISA flags of this CPU that matter here, capped by ``isa_limit()`` (empty without /proc/cpuinfo)."""
    flags = hardware_flags()
    return flags & ISA_LIMITS.get(isa_limit(), flags)


@cache
def hardware_flags() -> frozenset[str]:
    """The ISA flags of this CPU that matter here, as /proc/cpuinfo lists them (no cap applied)."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split()) & frozenset(ISA_FLAGS)
    return frozenset()


def has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU computes bf16 natively (AVX-512 BF16 or AMX)."""
    return bool((cpu_flags() if flags is None else flags) & BF16_FLAGS)


def has_fast_int8(flags: frozenset[str] | None = None) -> bool:
    """True when INT8 convolutions beat fp32 here: x86 with AVX2 at least."""
    return bool((cpu_flags() if flags is None else flags) & INT8_FLAGS)


def candidate_paths(flags: frozenset[str] | None = None) -> tuple[str, ...]:
    """The OpenVINO paths worth timing on a CPU with these flags, most precise first (see ``animegan.precision``).

    bf16 candidates only where bf16 is native; the OpenVINO fp32 model only where it is not (with native bf16 the
    bf16 model is both faster and, at 55 dB or more, as faithful as anything needs).
    """
    if has_native_bf16(flags):
        return ("bf16", "int8-bf16", "int8")
    if has_fast_int8(flags):
        return ("openvino-fp32", "int8")
    return ("openvino-fp32",)


@cache
def model_name() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (else what ``platform`` knows)."""
    name = platform.processor() or platform.machine()
    with suppress(OSError, StopIteration):
        name = next(
            line.split(":", 1)[1].strip() for line in CPUINFO.read_text().splitlines() if line.startswith("model name")
        )
    return name


def describe() -> str:
    """One line for logs and the bench: the CPU model, its ISA flags that matter and any ISA cap."""
    flags = cpu_flags()
    cap = f" (capped by {ISA_LIMIT_VARIABLE}={isa_limit()})" if isa_limit() else ""
    return f"{model_name()}; " + (", ".join(flag for flag in ISA_FLAGS if flag in flags) or "no AVX2") + cap
