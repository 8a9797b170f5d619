"""The CPU this process runs on, from /proc/cpuinfo: the one parser of it (the runtime core's optimized-model cache
key, bench's machine record and every benchmark's header read it here). Standard library only: the core may use it.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import Any

__all__ = ["CPU_FLAGS", "cpu_info"]

# The SIMD features that decide which kernels onnxruntime and torch run.
CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "neon",
    "asimd",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
)  # the last: ARM (Pi, Jetson)


def cpu_info() -> dict[str, Any]:
    """The CPU from /proc/cpuinfo (the one parser of it): model, the SIMD flags of CPU_FLAGS it has, physical cores.

    Where /proc/cpuinfo is absent (not Linux): platform's name for the processor, no flags, cores None.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine(), "flags": [], "physical_cores": None}
    # x86 names the CPU in "model name"; ARM boards often only in "Model" (Raspberry Pi) or not at all.
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M) or re.search(r"^Model\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.M)  # ARM lists its SIMD under "Features"
    cores = set(re.findall(r"^physical id\s*:\s*(\d+)$.*?^core id\s*:\s*(\d+)$", text, re.M | re.S))
    present = set(flags.group(1).split()) if flags else set()
    return {
        "model": model.group(1).strip() if model else (platform.processor() or platform.machine()),
        "flags": [f for f in CPU_FLAGS if f in present],
        "physical_cores": len(cores) or None,
    }
