"""Atomic file writes: a crash or Ctrl-C mid-write leaves the previous file intact (stdlib only)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], Any], binary: bool = True) -> Path:
    """Call write(file) on a temp file in path's folder, flush and fsync it, then rename it over path.

    Args:
        path: the destination; its folder is created.
        write: writes the content to the open file object it is given.
        binary: open the temp file in binary ("wb") or text ("w") mode.
    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one, never a part
        fsync_path(path.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file, or a folder so the renames in it are durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
