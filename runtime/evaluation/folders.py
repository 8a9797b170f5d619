"""The folder dataset: a tree of image files (optionally one subfolder per class) read into ImageData."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgegan.runtime.evaluation.image_data import DataError, ImageData, resize_crop

__all__ = ["load_folder", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _image_files(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, hidden files and folders skipped, in a fixed (sorted) order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames) if _is_image(Path(dirpath) / f)]
    return found


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}; fix or remove it") from exc


def _is_gray(img) -> bool:
    if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
        return True
    if img.mode == "P":  # a palette image is grey when every palette entry is
        rgb = np.asarray(img.convert("RGB"))
        return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    return False


def _decode(path: Path, channels: int) -> np.ndarray:
    """One file -> uint8 [H, W] (channels 1) or [H, W, 3]; alpha is composited over black."""
    from PIL import Image, ImageOps

    try:
        with _open_image(path) as opened:  # closed at once: a folder can hold more files than the fd limit
            img = ImageOps.exif_transpose(opened)  # phone photos store their rotation in EXIF
            if img.mode.startswith("I;16"):  # 16-bit grey PNG: keep the top 8 bits (Pillow's "L" would clip)
                img = Image.fromarray((np.asarray(img, np.uint16) >> 8).astype(np.uint8))
            if "A" in img.getbands() or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
            return np.asarray(img.convert("L" if channels == 1 else "RGB"))
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt pixel data shows up at decode time
        raise DataError(f"cannot decode image {path}: {exc}; fix or remove it") from exc


def _folder_tree(root: Path, split: str) -> Path:
    if split == "test":
        if not (root / "test").is_dir():
            raise DataError(
                f"folder dataset {root} has no test split: put test images in {root / 'test'} "
                "(with the same class subfolders as the training images)"
            )
        return root / "test"
    return root / "train" if (root / "train").is_dir() else root


def load_folder(data_dir, split: str, image_size: int | None, channels: int | None) -> ImageData:
    """A folder of images (loose, or one subfolder per class; `test` holds the test split) as ImageData."""
    if data_dir is None:
        raise DataError("the folder dataset needs --data-dir (data_dir=): a folder of images or of class subfolders")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"--data-dir {root} is not a folder; the folder dataset needs a folder of images")
    tree = _folder_tree(root, split)
    skip = {"test", "train"} if tree == root else set()
    subdirs = sorted(p for p in tree.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in skip)
    loose = sorted(p for p in tree.iterdir() if _is_image(p))
    classes = [(d.name, _image_files(d)) for d in subdirs]
    classes = [(c, files) for c, files in classes if files]  # folders without images are not classes
    if classes and loose:
        raise DataError(
            f"{tree} mixes {len(loose)} loose image(s) (e.g. {loose[0].name}) with class subfolders "
            f"({', '.join(c for c, _ in classes[:5])}); move the loose images into a class folder or out of the tree"
        )
    files = [f for _, fs in classes for f in fs] if classes else loose
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {tree}; the folder dataset needs at least one")
    labels = np.concatenate([np.full(len(fs), k, np.int64) for k, (_, fs) in enumerate(classes)]) if classes else None
    # Pass 1 reads headers only (Pillow decodes lazily): picks channels and checks sizes before decoding anything.
    sizes, gray = set(), True
    for f in files:
        with _open_image(f) as img:
            sizes.add(img.size)
            gray = gray and _is_gray(img)
    channels = channels or (1 if gray else 3)
    if image_size is None and len(sizes) > 1:
        raise DataError(
            f"the images in {tree} have {len(sizes)} different sizes (e.g. {', '.join(f'{w}x{h}' for w, h in sorted(sizes)[:3])}): "
            "pass --image-size N to resize and center-crop them to N x N"
        )
    out = None
    for i, f in enumerate(files):
        pixels = _decode(f, channels)
        if image_size is not None:
            pixels = resize_crop(pixels, image_size)
        if out is None:  # uint8 [N, H, W, C]
            out = np.empty((len(files), *pixels.shape[:2], channels), np.uint8)
        out[i] = pixels.reshape(out.shape[1:])
    if out is None:  # cannot happen: `files` is not empty (checked above)
        raise DataError(f"no images decoded from {tree}")
    class_names = [c for c, _ in classes]
    return ImageData(out, labels, class_names, "folder", str(tree))
