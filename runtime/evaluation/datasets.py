"""Real images as uint8 [N, H, W, C] numpy arrays: MNIST, Fashion-MNIST, a folder of images, or an .npz file.

numpy + Pillow only, so the torch-free `edgegan eval` reads the same data as `edgegan train` (which wraps this
into torch batches in trainer/data.py).

MNIST and Fashion-MNIST are IDX files, found in this order (see `locate`): --data-dir, $EDGEGAN_DATA,
/usr/share/datasets/<name> (Debian's dataset-fashion-mnist), the cache ($XDG_CACHE_HOME or ~/.cache)/edgegan/<name>.
Failing that they are downloaded from the datasets' own mirrors into the cache, each file checked against its
published SHA-256 and renamed into place only once it matches.

Folder trees are read by folders.py, .npz files by npz_files.py, IDX files by idx.py and downloads.py.

Example:
    >>> data = load_images("fashion-mnist", "test", download=False)   # doctest: +SKIP
    >>> data.images.shape, data.class_names[0]                         # doctest: +SKIP
    ((10000, 28, 28, 1), 'T-shirt/top')
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# The readers live beside this module; the names other code uses stay importable from here.
from edgegan.runtime.evaluation.downloads import MIRRORS, SHA256, cache_dir, download_split, mirror_bases
from edgegan.runtime.evaluation.folders import IMAGE_SUFFIXES, load_folder
from edgegan.runtime.evaluation.idx import find_idx_pair, idx_names, read_idx
from edgegan.runtime.evaluation.image_data import DataError, ImageData, convert
from edgegan.runtime.evaluation.npz_files import load_npz

__all__ = [
    "DataError",
    "ImageData",
    "DATASETS",
    "load_images",
    "read_idx",
    "locate",
    "cache_dir",
    "convert",
    "SPLITS",
    "MIRRORS",
    "SHA256",
    "IMAGE_SUFFIXES",
]

DATASETS = ("mnist", "fashion-mnist", "folder", "npz")
SPLITS = ("train", "test")

# Where Debian's dataset-* packages install data; a module constant so tests can point it elsewhere.
SYSTEM_DATA_DIR = Path("/usr/share/datasets")

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

# torchvision's layout (<root>/MNIST/raw), so an existing torchvision download is found too.
_TORCHVISION_DIRS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def locate(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for an IDX dataset, in order (they need not exist).

    Args:
        name: "mnist" or "fashion-mnist".
        data_dir: --data-dir, searched first.
    Returns:
        [data_dir/<name>, data_dir, data_dir/<TorchvisionName>/raw, the same for $EDGEGAN_DATA,
        /usr/share/datasets/<name>, cache_dir(name)], without the entries whose root is unset.
    """
    name = _canonical(name)
    places: list[Path] = []
    for root in (data_dir, os.environ.get("EDGEGAN_DATA") or None):
        if root is not None:
            root = Path(root).expanduser()
            places += [root / name, root, root / _TORCHVISION_DIRS[name] / "raw"]
    places += [SYSTEM_DATA_DIR / name, cache_dir(name)]
    return list(dict.fromkeys(places))  # the same folder twice (data_dir == EDGEGAN_DATA) is searched once


def _load_idx_dataset(
    name: str, split: str, data_dir, download: bool, progress: bool, mirrors: Sequence[str] | None
) -> ImageData:
    """MNIST or Fashion-MNIST: found through `locate`, else downloaded into the cache; uint8 [N, 28, 28, 1]."""
    places = locate(name, data_dir)
    pair = find_idx_pair(places, split)
    attempts: list[str] = []
    if pair is None and download:
        if download_split(name, split, mirror_bases(name, mirrors), progress, attempts):
            pair = find_idx_pair([cache_dir(name)], split)
    if pair is None:
        stems = idx_names(split)
        looked = "\n".join(f"  {p}{'' if p.is_dir() else ' (no such folder)'}" for p in places)
        fetched = (
            "Download attempts:\n" + "\n".join(f"  {a}" for a in attempts) + "\n"
            if attempts
            else "Downloading was turned off (download=False).\n"
            if not download
            else ""
        )
        how = [
            f"pass --data-dir DIR (data_dir=) or set EDGEGAN_DATA=DIR, where DIR or DIR/{name} holds "
            + " and ".join(f"{s}.gz" for s in stems),
            "apt-get install dataset-fashion-mnist (Debian/Ubuntu) puts Fashion-MNIST in /usr/share/datasets"
            + ("" if name == "fashion-mnist" else "; it serves --dataset fashion-mnist, not mnist"),
            "allow the download (download=True)"
            if not download
            else "point EDGEGAN_MIRROR (or mirrors=) at a reachable copy of the files",
        ]
        raise DataError(
            f"cannot find the {name} {split} split ({stems[0]}[.gz] and {stems[1]}[.gz]). Looked in:\n{looked}\n"
            f"{fetched}To supply it:\n" + "\n".join(f"  - {h}" for h in how)
        )
    images_path, labels_path = pair
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{images_path} should hold uint8 images [N, H, W], holds {images.dtype} {list(images.shape)}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{labels_path} should hold uint8 labels [N], holds {labels.dtype} {list(labels.shape)}")
    if len(labels) != len(images):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    class_names = FASHION_CLASSES if name == "fashion-mnist" else MNIST_CLASSES
    if len(labels) and labels.max() >= len(class_names):
        raise DataError(f"{labels_path} has label {labels.max()}; {name} has {len(class_names)} classes")
    return ImageData(images[..., None], labels.astype(np.int64), list(class_names), name, str(images_path.parent))


def _canonical(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist"}.get(key, key)
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def check_data_dir(data_dir: str | os.PathLike | None, option: str = "--data-dir") -> None:
    """An explicit data folder (or .npz) that does not exist is an error: the MNIST family would otherwise fall
    back to the other places `locate` searches and train or score on data nobody asked for."""
    if data_dir is not None and not Path(data_dir).expanduser().exists():
        raise DataError(
            f"{option} {data_dir} does not exist; give the folder (or .npz file) holding the dataset, "
            f"or leave {option} out to use the default places"
        )


def load_images(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    download: bool = True,
    progress: bool = True,
    mirrors: Sequence[str] | None = None,
) -> ImageData:
    """Load one split of a dataset as uint8 [N, H, W, C] images (+ int64 labels).

    Args:
        name: "mnist", "fashion-mnist", "folder" or "npz".
        split: "train" or "test" (folder: a `test` subfolder; npz: `test_images` / `test_labels` keys).
        data_dir: mnist family: searched first (see `locate`); folder: the image tree; npz: the file (or a folder
            holding exactly one).
        image_size: output size N x N (shorter side resized to N, bicubic, center-cropped); None keeps the stored
            size (folder: all images must then share one size).
        channels: 1 or 3; None keeps the stored channels (folder: RGB unless every image is grey).
        download: mnist family: fetch missing files into the cache from the mirrors.
        progress: show download progress on stderr (a tqdm bar on a terminal, plain lines elsewhere).
        mirrors: base URLs to download from instead of the datasets' own (default: $EDGEGAN_MIRROR, comma or
            space separated, else the canonical mirrors).
    Returns:
        ImageData with images uint8 [N, H, W, C], labels int64 [N] or None, class_names, name, source.
    Raises:
        DataError: anything wrong with the request or the data, with where it looked and how to fix it.
    """
    key = _canonical(name)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose train or test")
    if image_size is not None and (not isinstance(image_size, (int, np.integer)) or image_size < 1):
        raise DataError(f"image size must be a positive integer, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    if key == "folder":
        data = load_folder(data_dir, split, image_size, channels)
    elif key == "npz":
        data = load_npz(data_dir, split)
    else:
        data = _load_idx_dataset(key, split, data_dir, download, progress, mirrors)
    data.images = convert(data.images, image_size, channels)
    return data
