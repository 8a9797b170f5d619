"""The npz dataset: images (+ labels, class names, a test split) from one .npz file, read without pickle."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from edgegan.runtime.evaluation.image_data import DataError, ImageData

__all__ = ["load_npz"]


def _npz_file(data_dir) -> Path:
    if data_dir is None:
        raise DataError("the npz dataset needs --data-dir (data_dir=): an .npz file, or a folder holding one")
    path = Path(data_dir).expanduser()
    if path.is_dir():
        found = sorted(path.glob("*.npz"))
        if len(found) != 1:
            raise DataError(
                f"{path} holds {len(found)} .npz files ({', '.join(p.name for p in found) or 'none'}); "
                "pass the file itself as --data-dir"
            )
        return found[0]
    if not path.is_file():
        raise DataError(f"npz dataset file {path} does not exist")
    return path


def _npz_images(arr: np.ndarray, where: str) -> np.ndarray:
    """Any accepted images array -> uint8 [N, H, W, C]."""
    if arr.ndim == 3:
        arr = arr[..., None]
    elif arr.ndim == 4:
        if arr.shape[-1] not in (1, 3) and arr.shape[1] in (1, 3):
            arr = arr.transpose(0, 2, 3, 1)  # [N, C, H, W] -> [N, H, W, C]
        elif arr.shape[-1] not in (1, 3):
            raise DataError(
                f"{where} has shape {list(arr.shape)}: channels (first or last axis after N) must be 1 or 3"
            )
    else:
        raise DataError(f"{where} has shape {list(arr.shape)}; expected [N, H, W], [N, H, W, C] or [N, C, H, W]")
    if arr.shape[0] == 0 or 0 in arr.shape[1:3]:
        raise DataError(f"{where} is empty (shape {list(arr.shape)})")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise DataError(f"{where} holds NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0.0 and hi <= 1.0:
            scaled = arr.astype(np.float32) * 255.0
        elif lo >= -1.0 and hi <= 1.0:
            scaled = (arr.astype(np.float32) + 1.0) * 127.5
        else:
            raise DataError(
                f"{where} is float with values in [{lo:g}, {hi:g}]; float images must lie in [0, 1] or [-1, 1]"
            )
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if arr.dtype.kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{where} is {arr.dtype} with values in [{lo}, {hi}]; integer images must lie in [0, 255]")
        return np.ascontiguousarray(arr.astype(np.uint8))
    raise DataError(f"{where} has dtype {arr.dtype}; use uint8, or float in [0, 1] or [-1, 1]")


def _npz_labels(arr: np.ndarray, n: int, where: str) -> np.ndarray:
    if arr.dtype.kind not in "iu":
        raise DataError(f"{where} has dtype {arr.dtype}; labels must be integers")
    if arr.ndim != 1 or len(arr) != n:
        raise DataError(f"{where} has shape {list(arr.shape)}; expected one label per image, [{n}]")
    if n and arr.min() < 0:
        raise DataError(f"{where} has negative labels (min {arr.min()}); labels must be 0 .. num_classes-1")
    return arr.astype(np.int64)


def load_npz(data_dir, split: str) -> ImageData:
    """`images`/`labels` (train) or `test_images`/`test_labels` (test), plus optional `class_names`, as ImageData."""
    path = _npz_file(data_dir)
    image_key, label_key = ("images", "labels") if split == "train" else ("test_images", "test_labels")
    with path.open("rb") as fh:
        if fh.read(4) != b"PK\x03\x04":  # an .npz is a zip archive
            raise DataError(f"{path} is not an .npz file (not a zip archive); save one with np.savez(path, images=...)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if image_key not in keys:
                hint = " (this file has no test split)" if split == "test" else ""
                raise DataError(
                    f"{path} has no {image_key!r} array{hint}; it holds: {', '.join(sorted(keys)) or 'nothing'}"
                )
            images = _npz_images(npz[image_key], f"{path}[{image_key!r}]")
            labels = _npz_labels(npz[label_key], len(images), f"{path}[{label_key!r}]") if label_key in keys else None
            names = npz["class_names"] if "class_names" in keys else None
    except ValueError as exc:  # object arrays need pickle, which stays off: loading data must not run code
        raise DataError(
            f"cannot read {path} without pickle ({exc}); store strings as np.array(names, dtype=str)"
        ) from exc
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is a corrupt or truncated .npz file ({exc})") from exc
    class_names: list[str] = []
    if names is not None:
        if names.dtype.kind not in "US" or names.ndim != 1:
            raise DataError(f"{path}['class_names'] must be a 1-D string array, got {names.dtype} {list(names.shape)}")
        class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
    if labels is not None:
        top = int(labels.max()) if len(labels) else -1
        if class_names and top >= len(class_names):
            raise DataError(f"{path}[{label_key!r}] has label {top} but only {len(class_names)} class_names")
        class_names = class_names or [str(i) for i in range(top + 1)]
    elif class_names and split == "train":
        raise DataError(f"{path} has class_names but no {label_key!r}; add the labels or drop class_names")
    else:
        class_names = []
    return ImageData(images, labels, class_names, "npz", str(path))
