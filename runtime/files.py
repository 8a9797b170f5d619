"""Files: atomic writes, output-path and free-space checks, the one cache root, file digests (stdlib only).

A crash or Ctrl-C mid-write leaves the previous file intact; output paths are checked before the work that fills
them. An output goes only to a new path or over a regular file: a device node (/dev/null as root), a FIFO, a
socket, a symlink or a folder at the path is refused, by `check_writable` before the work and again by
`atomic_write` just before its rename (which would replace the node, not write into it)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from edgegan.runtime.errors import EdgeganError


class OutputPathError(EdgeganError):
    """An output file that cannot be written, found before the work that would fill it."""


def cache_root() -> Path:
    """($XDG_CACHE_HOME or ~/.cache)/edgegan: the one root of every cache edgegan keeps (downloads, evaluators,
    feature statistics, TensorRT engines, optimized models). A relative XDG_CACHE_HOME is ignored, as the XDG
    specification asks."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache") / "edgegan"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex), read 1 MiB at a time."""
    import hashlib  # here, not at the top: its OpenSSL load is ~5 ms of every `import edgegan.runtime`

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_KINDS = (
    (stat.S_ISLNK, "a symlink"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def check_replaceable(path: str | os.PathLike, what: str = "output") -> None:
    """Refuse an output path that holds anything but a regular file (nothing there is fine).

    The atomic rename would replace whatever is at the path: a symlink by a file (the link's target untouched,
    the link gone), /dev/null by a regular file. Outputs are ours to replace only where they are plain files.

    Raises:
        OutputPathError: one line naming the path and what is there.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError:
        return  # unreadable: the probe or the write says why
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    advice = "give a file name" if stat.S_ISDIR(mode) else "give a regular file or a new path"
    raise OutputPathError(f"cannot write {what} {path}: it is {kind}; outputs replace only regular files ({advice})")


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], Any], binary: bool = True) -> Path:
    """Call write(file) on a temp file in path's folder, flush and fsync it, then rename it over path.

    Args:
        path: the destination; its folder is created.
        write: writes the content to the open file object it is given.
        binary: open the temp file in binary ("wb") or text ("w") mode.
    Returns:
        The destination path.

    Raises:
        OSError: as the system gave it (ENOSPC, EROFS, EACCES, ...), but naming `path`, not the temp file.
        OutputPathError: `path` holds a symlink, device, FIFO, socket or folder (`check_replaceable`).
    """
    path = Path(path)
    check_replaceable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        check_replaceable(path)  # again: the write may have taken minutes
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one, never a part
        fsync_path(path.parent)
    except OSError as exc:
        raise _naming(exc, path) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error (same errno, so the same OSError subclass) about the user's path instead of the temp file."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Check, before any work, that a file can be written at `path`: by creating and removing a probe file beside
    it (permission bits alone say nothing to root, nor about read-only or pseudo filesystems like /proc).

    Args:
        path: the file to be written later (atomically, by `atomic_write`).
        what: how the message names it, e.g. "--json".

    Returns:
        `path` as a Path.

    Raises:
        OutputPathError: the path holds anything but a regular file (a folder, symlink, device node, FIFO,
            socket), its folder is missing (no folder is created on the user's behalf) or is not a folder, or no
            file can be created there.
    """
    path = Path(path)
    folder = path.parent
    check_replaceable(path, what)
    if not folder.exists():
        raise OutputPathError(f"cannot write {what} {path}: folder {folder} does not exist (create it first)")
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {what} {path}: {folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise OutputPathError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)
    return path


def check_free_space(path: str | os.PathLike, nbytes: int, what: str = "output") -> None:
    """Refuse up front a file of `nbytes` that the disk holding `path`'s folder has no room for.

    Raises:
        OutputPathError: naming the file, the bytes needed and the bytes free.
    """
    path = Path(path)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return  # unknown: the write itself will say
    if nbytes > free:
        raise OutputPathError(
            f"cannot write {what} {path}: it needs {nbytes / 2**20:.1f} MiB but only {free / 2**20:.1f} MiB is free "
            "on that disk"
        )


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
