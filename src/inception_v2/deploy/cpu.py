"""What the CPU can do for inference: its model name and the instruction sets that decide which
runtime and precision run fastest on it (see ``docs/deployment.md``, "Which runtime on which CPU").

* bfloat16 arithmetic: AMX (``amx_bf16``, Intel Sapphire Rapids and newer) or AVX-512 BF16
  (``avx512_bf16``: Intel Cooper Lake, AMD Zen 4 and newer). Without either, bf16 is emulated
  and slower than float32, so ``--precision bf16`` is refused (:func:`require_bf16`).
* 8-bit dot products: AMX (``amx_int8``), AVX-512 VNNI (``avx512_vnni``) or AVX-VNNI
  (``avx_vnni``); plain AVX2 runs INT8 files too, more slowly.

The flags come from ``/proc/cpuinfo`` (Linux). ``INCEPTION_V2_CPU_FLAGS`` (a space-separated flag
list) replaces them, to see what the project does on another CPU (the tests use it).
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Dict, FrozenSet, Optional

from inception_v2.errors import UsageError

CPU_FLAGS_ENV = "INCEPTION_V2_CPU_FLAGS"
# (what we call it, the /proc/cpuinfo flag)
ISA_FLAGS = (
    ("AMX-BF16", "amx_bf16"),
    ("AMX-INT8", "amx_int8"),
    ("AVX-512 BF16", "avx512_bf16"),
    ("AVX-512 VNNI", "avx512_vnni"),
    ("AVX-VNNI", "avx_vnni"),
    ("AVX-512", "avx512f"),
    ("AVX2", "avx2"),
)


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_flags() -> FrozenSet[str]:
    """The CPU's feature flags (``/proc/cpuinfo``, or ``$INCEPTION_V2_CPU_FLAGS`` when set)."""
    override = os.environ.get(CPU_FLAGS_ENV)
    if override is not None:
        return frozenset(override.split())
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what the platform says."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def isa_summary(flags: Optional[FrozenSet[str]] = None) -> Dict[str, bool]:
    """Which of the instruction sets that matter for inference the CPU has, by name."""
    flags = cpu_flags() if flags is None else flags
    return {name: flag in flags for name, flag in ISA_FLAGS}


def bf16_support(flags: Optional[FrozenSet[str]] = None) -> Optional[str]:
    """``"AMX"`` or ``"AVX-512 BF16"`` (the best bf16 instructions the CPU has), else None."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 BF16"
    return None


def require_bf16(what: str) -> str:
    """The CPU's bf16 instructions (:func:`bf16_support`); :class:`UsageError` naming ``what``
    (the request) when it has none."""
    found = bf16_support()
    if found is None:
        raise UsageError(
            f"{what} needs a CPU with bfloat16 instructions (AMX or AVX-512 BF16); this one "
            f"({cpu_model()}) has neither, and emulated bf16 is slower than float32: use --precision fp32"
        )
    return found
