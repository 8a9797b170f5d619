"""The machine a benchmark ran on (CPU, flags, versions), its resident-memory high-water, and CPU pinning."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgegan.runtime.bench.runners import BenchError
from edgegan.runtime.cpu import cpu_info

MEMORY_METHOD = (
    "VmHWM from /proc/self/status (resident high-water), reset through /proc/self/clear_refs before "
    "each timed slice; whole process, so every loaded model counts"
)


# ------------------------------------------------------------------------------------------- the machine
def cpu_summary() -> str:
    """The CPU in one line for a benchmark's report header, e.g. "AMD EPYC 7B13, 2 logical CPUs, flags avx2 fma"."""
    cpu = cpu_info()
    flags = " ".join(cpu["flags"]) or "none tracked"
    return f"{cpu['model']}, {os.cpu_count()} logical CPUs, flags {flags}"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)  # reads the metadata; does not import the package
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """The machine and library versions that head every benchmark's output.

    Returns:
        cpu (model, architecture, logical and usable CPUs, physical cores, SIMD flags), board (ARM boards'
        device-tree name) and NVIDIA GPUs, memory, OS, load average, versions of python, numpy, onnxruntime,
        onnx, torch (torch only read from package metadata), and `label` (machine_slug) naming the machine.
    """
    import onnxruntime as ort

    cpu = cpu_info()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = None
    with contextlib.suppress(OSError):  # not Linux: no /proc/meminfo
        total = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        memory = round(int(total.group(1)) / 2**20, 1) if total else None  # KiB -> GiB
    info = {
        "cpu": cpu["model"],
        "arch": platform.machine(),
        "board": _board(),
        "gpus": _nvidia_gpus(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "physical_cores": cpu["physical_cores"],
        "flags": cpu["flags"],
        "memory_gib": memory,
        "os": platform.platform(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "providers": list(ort.get_available_providers()),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "onnxruntime": ort.__version__,
            "onnx": _version("onnx"),
            "torch": _version("torch"),
            "edgegan": _version("edgegan"),
        },
    }
    info["label"] = machine_slug(info)  # names this machine's runs in `edgegan bench-report`
    return info


def _board() -> str | None:
    """The board's name where the firmware gives one ("Raspberry Pi 4 Model B Rev 1.4", "NVIDIA Jetson Orin Nano
    Developer Kit"): ARM boards name the device there, not in /proc/cpuinfo."""
    try:
        return Path("/proc/device-tree/model").read_bytes().rstrip(b"\x00").decode(errors="replace").strip() or None
    except OSError:
        return None


def _nvidia_gpus() -> list[str]:
    """Discrete NVIDIA GPUs the driver lists (no subprocess, no CUDA context); [] where there are none."""
    names = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        with contextlib.suppress(OSError):
            match = re.search(r"^Model:\s*(.+)$", info.read_text(), re.M)
            if match:
                names.append(match.group(1).strip())
    return names


def machine_slug(info: dict[str, Any]) -> str:
    """A file-name-safe machine name, e.g. "amd-epyc-2cpu"; a board's name where it has one ("raspberry-pi-4-...")."""
    name = re.sub(r"\((r|tm)\)|cpu @.*|processor", "", str(info.get("board") or info.get("cpu", "cpu")).lower())
    name = re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "cpu"
    return f"{name}-{info.get('usable_cpus') or info.get('logical_cpus')}cpu"


# ------------------------------------------------------------------------------------------- memory
def _status_kib(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+)\s+kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _Memory:
    """Resident high-water around a block of calls, in MiB."""

    def __init__(self) -> None:
        self.resettable = _reset_hwm()

    def start(self) -> int:
        if self.resettable:
            _reset_hwm()
        return _status_kib("VmRSS") or 0

    @staticmethod
    def peak() -> int:
        hwm = _status_kib("VmHWM")
        if hwm is None:  # not Linux: the process lifetime peak (KiB on Linux, bytes on macOS)
            import resource

            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
        return hwm


@contextlib.contextmanager
def pinned(core: int | None) -> Iterator[None]:
    """Run the block on one CPU core (os.sched_setaffinity), restoring the previous set after.

    Threads created inside the block (onnxruntime's and torch's pools) inherit the affinity.
    """
    if core is None:
        yield
        return
    if not hasattr(os, "sched_setaffinity"):
        raise BenchError("--pin-core needs os.sched_setaffinity (Linux)")
    before = os.sched_getaffinity(0)
    if core not in before:
        raise BenchError(f"--pin-core {core}: this process may use CPUs {sorted(before)}; pick one of them")
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
