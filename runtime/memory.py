"""Refuse up front work that would not fit in the memory available now (Linux's MemAvailable; stdlib only)."""

from __future__ import annotations

import os

from edgegan.runtime.errors import MemoryLimitError

__all__ = ["available_memory", "check_memory", "MEMORY_HINT", "QUIET_BYTES"]

# Below this many bytes a call skips the check: reading /proc/meminfo costs tens of microseconds, and the
# benchmark times the small calls.
QUIET_BYTES = 64 << 20
# Library words (the parameters): the `edgegan sample` command adds its own flag names (-n, --npy) when it prints it.
MEMORY_HINT = "ask for fewer images at once (a smaller n), or take them a batch at a time with Generator.iter_sample"


def available_memory() -> int | None:
    """Bytes that can be allocated now without swapping: Linux's MemAvailable (else free pages); None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""  # unreachable


def check_memory(nbytes: int, what: str, hint: str) -> None:
    """Refuse up front work that needs more memory than is available now (no check where that is unknown).

    Raises:
        MemoryLimitError: "{what} need X GiB of memory but Y GiB is available; {hint}".
    """
    available = available_memory()
    if available is not None and nbytes > available:
        raise MemoryLimitError(f"{what} need {_size(nbytes)} of memory but {_size(available)} is available; {hint}")
