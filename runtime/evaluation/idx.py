"""IDX files (MNIST's format): reading them, their names per split, and finding a split's pair in a folder."""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from edgegan.runtime.evaluation.image_data import DataError

__all__ = ["read_idx", "idx_names", "find_idx_file", "find_idx_pair"]

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw, told apart by content) into a numpy array.

    Args:
        path: the file, e.g. train-images-idx3-ubyte.gz.
    Returns:
        The array in its stored shape, e.g. uint8 [60000, 28, 28], native byte order, writable.
    Raises:
        DataError: unreadable, not IDX, corrupt gzip, or a payload that does not match the header's dims.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if blob[:2] == b"\x1f\x8b":
        try:
            blob = gzip.decompress(blob)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path} is a corrupt or truncated gzip file ({exc}); delete it and fetch it again") from exc
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] not in _IDX_DTYPES or blob[3] == 0:
        raise DataError(f"{path} is not an IDX file (bad magic number {blob[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(_IDX_DTYPES[blob[2]]), blob[3]
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise DataError(f"{path} is truncated: its header needs {header} bytes, the file has {len(blob)}")
    dims = tuple(int(d) for d in np.frombuffer(blob, ">u4", ndim, 4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(blob) - header != expected:
        state = "truncated" if len(blob) - header < expected else "longer than its header says"
        raise DataError(
            f"{path} is {state}: dims {list(dims)} need {expected} data bytes, found {len(blob) - header}; "
            "delete it and fetch it again"
        )
    # frombuffer over the decompressed bytes is free; the copy makes it writable (torch.from_numpy needs that).
    return np.frombuffer(blob, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="), copy=True)


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
