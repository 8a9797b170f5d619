"""IDX files (MNIST's format): reading them, their names per split, and finding a split's pair in a folder."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgegan.runtime.evaluation.image_data import DataError

__all__ = ["read_idx", "idx_names", "find_idx_file", "find_idx_pair"]

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


#: the most data bytes one IDX file may declare: MNIST's largest file holds 47 MB. The header's dims are read
#: first, and never more than they declare (+1 byte, to notice a longer file) is decompressed, so a gzip bomb
#: costs at most this much memory, never the size it would inflate to.
MAX_IDX_BYTES = 1 << 31


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw, told apart by content) into a numpy array.

    Args:
        path: the file, e.g. train-images-idx3-ubyte.gz.
    Returns:
        The array in its stored shape, e.g. uint8 [60000, 28, 28], native byte order, writable.
    Raises:
        DataError: unreadable, not IDX, corrupt gzip, a header declaring more than MAX_IDX_BYTES, or a payload
            that does not match the header's dims.
    """
    path = Path(path)
    packed = False
    try:
        with open(path, "rb") as raw:
            packed = raw.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if packed else open(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES or magic[3] == 0:
                raise DataError(f"{path} is not an IDX file (bad magic number {magic.hex() or 'empty'})")
            dtype, ndim = np.dtype(_IDX_DTYPES[magic[2]]), magic[3]
            header = 4 + 4 * ndim
            shape = f.read(4 * ndim)
            if len(shape) < 4 * ndim:
                raise DataError(f"{path} is truncated: its header needs {header} bytes, the file has {4 + len(shape)}")
            dims = tuple(int(d) for d in np.frombuffer(shape, ">u4", ndim))
            expected = int(np.prod(dims, dtype=object)) * dtype.itemsize  # exact: dims may be hostile
            if expected > MAX_IDX_BYTES:
                raise DataError(
                    f"{path} declares dims {list(dims)}: {expected} data bytes, more than the "
                    f"{MAX_IDX_BYTES} an IDX dataset file may hold; it is not a dataset file"
                )
            blob = f.read(expected + 1)
    except OSError as exc:
        if packed:  # gzip's BadGzipFile and CRC errors are OSErrors
            raise DataError(
                f"{path} is a corrupt or truncated gzip file ({exc}); delete it and fetch it again"
            ) from exc
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (EOFError, zlib.error) as exc:
        raise DataError(f"{path} is a corrupt or truncated gzip file ({exc}); delete it and fetch it again") from exc
    if len(blob) != expected:
        state = "truncated" if len(blob) < expected else "longer than its header says"
        found = f"{len(blob)}" if len(blob) <= expected else "more"
        raise DataError(
            f"{path} is {state}: dims {list(dims)} need {expected} data bytes, found {found}; "
            "delete it and fetch it again"
        )
    # frombuffer over the decompressed bytes is free; the copy makes it writable (torch.from_numpy needs that).
    return np.frombuffer(blob, dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def idx_names(split: str) -> tuple[str, str]:
    """The (images, labels) file stems of a split, without .gz: "train-images-idx3-ubyte", ..."""
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """`stem`.gz, else the raw `stem`, in `folder`; None when neither is there."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def find_idx_pair(places: Sequence[Path], split: str) -> tuple[Path, Path] | None:
    """The first folder that holds both the images and the labels file of `split`."""
    stems = idx_names(split)
    for folder in places:
        found = [find_idx_file(folder, stem) for stem in stems]
        if found[0] and found[1]:
            return found[0], found[1]
    return None
