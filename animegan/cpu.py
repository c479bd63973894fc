"""What this CPU can do fast, and so which precision ``auto`` runs the generators at.

bf16 pays off only where the CPU computes it natively (AVX-512 BF16 or AMX); elsewhere OpenVINO would emulate it.
INT8 convolutions pay off on every x86 CPU with AVX2, VNNI (AVX-512 or AVX) only makes them faster.
"""

from __future__ import annotations

import platform
from contextlib import suppress
from functools import cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# The flags that decide the precision, named as /proc/cpuinfo names them, in the order the bench prints them.
ISA_FLAGS = ("avx2", "avx512f", "avx_vnni", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
INT8_FLAGS = frozenset({"avx2", "avx512_vnni", "avx_vnni", "amx_int8"})


@cache
def cpu_flags() -> frozenset[str]:
    """The ISA flags of this CPU that matter here (empty where /proc/cpuinfo is not there)."""
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


def auto_precision(flags: frozenset[str] | None = None) -> str:
    """What "auto" means on a CPU with these flags: bf16 where native, else INT8, else OpenVINO fp32."""
    if has_native_bf16(flags):
        return "bf16"
    if has_fast_int8(flags):
        return "int8"
    return "bf16"  # OpenVINO with an f32 hint: the bf16 path on a CPU without bf16 computes in fp32


def describe() -> str:
    """One line for logs and the bench: the CPU model and its ISA flags that matter."""
    model = platform.processor() or platform.machine()
    with suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip() for line in CPUINFO.read_text().splitlines() if line.startswith("model name")
        )
    flags = cpu_flags()
    return f"{model}; " + (", ".join(flag for flag in ISA_FLAGS if flag in flags) or "no AVX2")
