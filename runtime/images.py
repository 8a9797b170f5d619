"""Pixels: uint8 conversion, image grids and PNG writing (numpy + Pillow)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from runtime.contract import to_uint8_nhwc
from runtime.files import atomic_write

__all__ = ["to_uint8_nhwc", "make_grid", "save_png", "save_grid"]


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


def save_png(picture: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 [H, W, C] or [H, W] picture as PNG, atomically (temp file + rename)."""
    from PIL import Image

    path = Path(path)
    if picture.ndim == 3 and picture.shape[2] == 1:
        picture = picture[:, :, 0]
    image = Image.fromarray(np.ascontiguousarray(picture))
    atomic_write(path, lambda f: image.save(f, format="PNG"))
    return path


def save_grid(images: np.ndarray, path: str | os.PathLike, nrow: int | None = None, padding: int = 2) -> Path:
    """uint8 [N, H, W, C] -> grid PNG at `path`."""
    return save_png(make_grid(images, nrow=nrow, padding=padding), path)
