"""Pixels out: image grids, PNG/JPEG/WebP pictures and streamed .npy files, and `sample_to_files` behind
`edgegan sample`.

Each file is written atomically, in the format its suffix names (IMAGE_FORMATS; any other suffix is refused before
any work); numpy + Pillow (imported when a picture is written)."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgegan.runtime.contract import to_uint8_nhwc
from edgegan.runtime.errors import GeneratorInputError
from edgegan.runtime.files import OutputPathError, atomic_write, check_free_space
from edgegan.runtime.latents import check_count
from edgegan.runtime.memory import MEMORY_HINT, check_memory

__all__ = [
    "to_uint8_nhwc",
    "make_grid",
    "save_png",
    "save_image",
    "save_grid",
    "save_npy_batches",
    "npy_bytes",
    "sample_to_files",
    "image_format",
    "IMAGE_FORMATS",
    "MAX_GRID_IMAGES",
]

MAX_GRID_IMAGES = 1024  # images in the grid when the images also stream to a .npy file (all N are in the file)
# suffix -> Pillow format. JPEG at quality 95 (grayscale stays "L"); WebP lossless, so its pixels are the PNG's.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"PNG": {}, "JPEG": {"quality": 95}, "WEBP": {"lossless": True}}


def image_format(path: str | os.PathLike, what: str = "picture") -> str:
    """The Pillow format `path`'s suffix names ("PNG", "JPEG", "WEBP").

    Raises:
        OutputPathError: any other suffix (or a format this Pillow cannot write), naming the ones that work.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise OutputPathError(
            f"cannot write {what} {path}: {suffix or 'a name without a suffix'} is not a picture "
            f"format edgegan writes; end the name in {', '.join(IMAGE_FORMATS)}"
        )
    fmt = IMAGE_FORMATS[suffix]
    if fmt == "WEBP":
        from PIL import features

        if not features.check("webp"):
            raise OutputPathError(f"cannot write {what} {path}: this Pillow was built without WebP; use .png")
    return fmt


def make_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile uint8 [N, H, W, C] images into one uint8 [rows*(H+p)+p, cols*(W+p)+p, C] picture.

    Args:
        images: uint8 [N, H, W, C] (C = 1 or 3).
        nrow: images per row; default ceil(sqrt(N)).
        padding: pixels between and around tiles.
        pad_value: grey level of the padding.
    """
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"make_grid expects uint8 [N, H, W, C], got {images.dtype} {images.shape}")
    n, h, w, c = images.shape
    cols = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), pad_value, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def _save_picture(picture: np.ndarray, path: str | os.PathLike, fmt: str) -> Path:
    from PIL import Image

    path = Path(path)
    if picture.ndim == 3 and picture.shape[2] == 1:
        picture = picture[:, :, 0]
    image = Image.fromarray(np.ascontiguousarray(picture))
    if fmt == "WEBP" and image.mode == "L":
        image = image.convert("RGB")  # WebP has no grayscale mode
    atomic_write(path, lambda f: image.save(f, format=fmt, **_SAVE_OPTIONS[fmt]))
    return path


def save_png(picture: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 [H, W, C] or [H, W] picture as PNG whatever the suffix, atomically (temp file + rename)."""
    return _save_picture(picture, path, "PNG")


def save_image(picture: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 [H, W, C] or [H, W] picture in the format its suffix names (IMAGE_FORMATS), atomically.

    Raises:
        OutputPathError: a suffix not in IMAGE_FORMATS.
    """
    return _save_picture(picture, path, image_format(path))


def save_grid(images: np.ndarray, path: str | os.PathLike, nrow: int | None = None, padding: int = 2) -> Path:
    """uint8 [N, H, W, C] -> grid picture at `path` (.png, .jpg, .jpeg or .webp)."""
    return save_image(make_grid(images, nrow=nrow, padding=padding), path)


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """The .npy header np.save writes for a C-ordered uint8 array of `shape` (format 1.0)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def npy_bytes(shape: tuple[int, ...]) -> int:
    """Size of the .npy file of a uint8 array of `shape`: header plus pixels."""
    return len(_npy_header(shape)) + math.prod(shape)


def save_npy_batches(
    batches: Iterable[np.ndarray], path: str | os.PathLike, shape: tuple[int, ...], keep: int = 0
) -> tuple[Path, np.ndarray]:
    """Write uint8 batches as one .npy file of `shape` ([N, H, W, C]), atomically, holding one batch at a time.

    The file is byte for byte what np.save writes for the concatenated array, so np.load reads it back.

    Args:
        batches: uint8 [b, H, W, C] pieces, in order, adding up to shape[0] images.
        path: the .npy file.
        shape: the full array's shape.
        keep: also return a copy of the first `keep` images (for a preview grid).

    Returns:
        (path, uint8 [min(keep, N), H, W, C]).
    """
    kept = np.empty((min(keep, shape[0]), *shape[1:]), dtype=np.uint8)

    def write(f) -> None:
        f.write(_npy_header(tuple(shape)))
        done = 0
        for part in batches:
            if part.dtype != np.uint8 or part.shape[1:] != tuple(shape[1:]) or done + len(part) > shape[0]:
                raise ValueError(f"batch {part.dtype} {list(part.shape)} does not fit a uint8 {list(shape)} file")
            if done < len(kept):
                take = min(len(part), len(kept) - done)
                kept[done : done + take] = part[:take]
            f.write(np.ascontiguousarray(part).data)
            done += len(part)
        if done != shape[0]:
            raise ValueError(f"got {done} images for a file of {shape[0]}")

    return atomic_write(path, write), kept


def _grid_bytes(n: int, h: int, w: int, c: int, padding: int = 2) -> int:
    """Memory of make_grid's picture for n images plus the copy PNG encoding takes."""
    if n == 0:
        return 0
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    return 2 * (rows * (h + padding) + padding) * (cols * (w + padding) + padding) * c


def sample_to_files(
    generator: Any,
    n: int,
    *,
    seed: int | None = 0,
    labels: Any = None,
    truncation: float | None = None,
    grid: str | os.PathLike | None = None,
    npy: str | os.PathLike | None = None,
    nrow: int | None = None,
    progress: bool = False,
) -> tuple[list[Path], int]:
    """Sample n images into a grid picture and/or a uint8 [N, H, W, C] .npy file (`edgegan sample`).

    Memory and disk space are checked before the first image is made. Without `npy` all n images are held and
    tiled; with it they stream to the file a batch at a time, and the grid shows the first MAX_GRID_IMAGES.
    The .npy file is written first, then the grid; each atomically.

    Args:
        generator: a runtime.Generator.
        n, seed, labels, truncation: as in Generator.sample.
        grid, npy: the files to write (at least one).
        nrow: images per grid row.
        progress: show the .npy streaming's progress on stderr (edgegan.runtime.progress.Progress).

    Returns:
        (the files written, grid first; the number of images in the grid).

    Raises:
        GeneratorInputError: neither `grid` nor `npy` given.
        MemoryLimitError, OutputPathError (EdgeganError), OSError from the writes.
    """
    n = check_count(n)  # before any size is computed from it
    if grid is not None:
        image_format(grid, "grid")  # a suffix Pillow cannot write is refused before any image is made
    h, w, c = generator.image_shape
    if npy is None:
        if grid is None:
            raise GeneratorInputError("sample_to_files writes a grid picture, an .npy file or both: give grid or npy")
        check_memory(
            generator.memory_needed(n, truncation) + _grid_bytes(n, h, w, c),
            f"{n} images of {h}x{w}x{c} and their grid",
            MEMORY_HINT,
        )
        images = generator.sample(n, seed=seed, labels=labels, truncation=truncation)  # uint8 [n, H, W, C]
        return [save_grid(images, grid, nrow=nrow)], n
    keep = min(n, MAX_GRID_IMAGES) if grid is not None else 0
    check_free_space(npy, npy_bytes((n, h, w, c)), "npy file")
    check_memory(
        keep * h * w * c + _grid_bytes(keep, h, w, c),
        f"the grid's {keep} images of {h}x{w}x{c}",
        "leave out the grid (-o)",
    )
    from edgegan.runtime.progress import Progress

    with Progress(total=n, unit="image", desc=f"sample {Path(npy).name}", quiet=not progress) as bar:
        batches = _counted(generator.iter_sample(n, seed=seed, labels=labels, truncation=truncation), bar)
        npy_path, kept = save_npy_batches(batches, npy, (n, h, w, c), keep)
    written: Sequence[Path] = [npy_path]
    if grid is not None:
        written = [save_grid(kept, grid, nrow=nrow), npy_path]
    return list(written), keep


def _counted(batches: Iterable[np.ndarray], bar: Any) -> Iterable[np.ndarray]:
    for part in batches:  # uint8 [b, H, W, C]
        yield part
        bar.update(len(part))
