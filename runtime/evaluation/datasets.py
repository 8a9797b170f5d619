"""Real images as uint8 [N, H, W, C] numpy arrays: MNIST, Fashion-MNIST, a folder of images, or an .npz file.

numpy + Pillow only, so the torch-free `edgegan eval` reads the same data as `edgegan train` (which wraps this
into torch batches in trainer/data.py).

MNIST and Fashion-MNIST are IDX files, found in this order (see `locate`): --data-dir, $EDGEGAN_DATA,
/usr/share/datasets/<name> (Debian's dataset-fashion-mnist), the cache ($XDG_CACHE_HOME or ~/.cache)/edgegan/<name>.
Failing that they are downloaded from the datasets' own mirrors into the cache, each file checked against its
published SHA-256 and renamed into place only once it matches.

Example:
    >>> data = load_images("fashion-mnist", "test", download=False)   # doctest: +SKIP
    >>> data.images.shape, data.class_names[0]                         # doctest: +SKIP
    ((10000, 28, 28, 1), 'T-shirt/top')
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.files import cache_root

__all__ = ["DataError", "ImageData", "DATASETS", "load_images", "read_idx", "locate", "cache_dir", "SPLITS"]

DATASETS = ("mnist", "fashion-mnist", "folder", "npz")
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")

# Where Debian's dataset-* packages install data; a module constant so tests can point it elsewhere.
SYSTEM_DATA_DIR = Path("/usr/share/datasets")

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

# Base URLs, tried in order. MNIST: the mirrors torchvision lists (yann.lecun.com last: it often refuses), plus
# the Google bucket tensorflow-datasets uses. Fashion-MNIST: Zalando's S3 bucket, then the GitHub repository.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

# Published SHA-256 of the upstream .gz files (the values tensorflow-datasets and other loaders check).
# Debian's dataset-fashion-mnist re-gzips the files without the stored file name, so its .gz bytes differ from
# upstream (same IDX content); its hashes are accepted too, so a mirror of /usr/share/datasets works.
# Files already on disk are not hashed: only downloads are checked (their IDX structure is always checked).
SHA256: dict[str, dict[str, tuple[str, ...]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",),
        "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",),
        "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",),
        "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",  # upstream
            "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",  # Debian
        ),
        "train-labels-idx1-ubyte.gz": (
            "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
            "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
            "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
            "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        ),
    },
}
# torchvision's layout (<root>/MNIST/raw), so an existing torchvision download is found too.
_TORCHVISION_DIRS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(EdgeganError):
    """Data that cannot be found, fetched or read; the message says where it looked and how to fix it."""


@dataclass
class ImageData:
    """A dataset split in memory.

    Attributes:
        images: uint8 [N, H, W, C], C = 1 or 3.
        labels: int64 [N] in [0, len(class_names)), or None when unlabelled.
        class_names: one name per class; [] when unlabelled.
        name: the dataset name ("fashion-mnist", "folder", ...).
        source: where it was read from (a folder or file).
    """

    images: np.ndarray
    labels: np.ndarray | None
    class_names: list[str]
    name: str
    source: str

    def __len__(self) -> int:
        return len(self.images)


# ----------------------------------------------------------------------------------------------------- IDX files
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


def _idx_names(split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def cache_dir(name: str) -> Path:
    """($XDG_CACHE_HOME or ~/.cache)/edgegan/<name>: where downloads go."""
    return cache_root() / name


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


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _find_pair(places: Sequence[Path], split: str) -> tuple[Path, Path] | None:
    """The first folder that holds both the images and the labels file of `split`."""
    stems = _idx_names(split)
    for folder in places:
        found = [_find_file(folder, stem) for stem in stems]
        if found[0] and found[1]:
            return found[0], found[1]
    return None


# ----------------------------------------------------------------------------------------------------- download
def _mirrors(name: str, mirrors: Sequence[str] | None) -> list[str]:
    if mirrors is None and os.environ.get("EDGEGAN_MIRROR"):
        mirrors = os.environ["EDGEGAN_MIRROR"].replace(",", " ").split()
    bases = list(mirrors) if mirrors is not None else list(MIRRORS[name])
    return [b if b.endswith("/") else b + "/" for b in bases]


def _fetch(url: str, dest: Path, expected: Sequence[str], progress: bool) -> None:
    """Download `url` to `dest` atomically: temp file beside it, hash while writing, fsync, rename if it matches.

    Raises:
        OSError / urllib.error.URLError: the mirror could not be read (the caller tries the next).
        DataError: the bytes arrived but their SHA-256 is not the published one (nothing is left behind).
    """
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=60) as response:  # connect first: a dead mirror leaves no folder
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        try:
            total = int(response.headers.get("Content-Length") or 0) or None
            with os.fdopen(fd, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, disable=not progress,
                leave=False,
            ) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            got = digest.hexdigest()
            if got not in expected:
                raise DataError(
                    f"checksum mismatch for {url}: expected SHA-256 {' or '.join(expected)}, got {got}; "
                    "the file was discarded (the mirror serves different bytes: try another with EDGEGAN_MIRROR)"
                )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)


def _download(name: str, split: str, bases: Sequence[str], progress: bool, attempts: list[str]) -> bool:
    """Fetch the split's two .gz files into the cache; False (with `attempts` filled in) if any file failed."""
    target = cache_dir(name)
    for stem in _idx_names(split):
        if _find_file(target, stem):
            continue
        filename = f"{stem}.gz"
        for base in bases:
            url = base + filename
            try:
                _fetch(url, target / filename, SHA256[name][filename], progress)
                break
            except DataError as exc:
                attempts.append(str(exc))
            except (OSError, urllib.error.URLError, ValueError) as exc:  # ValueError: a malformed mirror URL
                reason = getattr(exc, "reason", None) or exc  # URLError: the reason; OSError: text with the path
                attempts.append(f"{url}: {reason}")
        else:
            return False
    return True


def _load_idx_dataset(
    name: str, split: str, data_dir, download: bool, progress: bool, mirrors: Sequence[str] | None
) -> ImageData:
    places = locate(name, data_dir)
    pair = _find_pair(places, split)
    attempts: list[str] = []
    if pair is None and download:
        if _download(name, split, _mirrors(name, mirrors), progress, attempts):
            pair = _find_pair([cache_dir(name)], split)
    if pair is None:
        stems = _idx_names(split)
        looked = "\n".join(f"  {p}{'' if p.is_dir() else ' (no such folder)'}" for p in places)
        fetched = (
            "Download attempts:\n" + "\n".join(f"  {a}" for a in attempts) + "\n" if attempts
            else "Downloading was turned off (download=False).\n" if not download else ""
        )
        how = [
            f"pass --data-dir DIR (data_dir=) or set EDGEGAN_DATA=DIR, where DIR or DIR/{name} holds "
            + " and ".join(f"{s}.gz" for s in stems),
            "apt-get install dataset-fashion-mnist (Debian/Ubuntu) puts Fashion-MNIST in /usr/share/datasets"
            + ("" if name == "fashion-mnist" else "; it serves --dataset fashion-mnist, not mnist"),
            "allow the download (download=True)" if not download
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


# ----------------------------------------------------------------------------------------------------- folder
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


def _load_folder(data_dir, split: str, image_size: int | None, channels: int | None) -> ImageData:
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
    labels = (
        np.concatenate([np.full(len(fs), k, np.int64) for k, (_, fs) in enumerate(classes)]) if classes else None
    )
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
            pixels = _resize_crop(pixels, image_size)
        if out is None:  # uint8 [N, H, W, C]
            out = np.empty((len(files), *pixels.shape[:2], channels), np.uint8)
        out[i] = pixels.reshape(out.shape[1:])
    class_names = [c for c, _ in classes]
    return ImageData(out, labels, class_names, "folder", str(tree))


# ----------------------------------------------------------------------------------------------------- npz
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
            raise DataError(f"{where} has shape {list(arr.shape)}: channels (first or last axis after N) must be 1 or 3")
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
            raise DataError(f"{where} is float with values in [{lo:g}, {hi:g}]; float images must lie in [0, 1] or [-1, 1]")
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


def _load_npz(data_dir, split: str) -> ImageData:
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
                raise DataError(f"{path} has no {image_key!r} array{hint}; it holds: {', '.join(sorted(keys)) or 'nothing'}")
            images = _npz_images(npz[image_key], f"{path}[{image_key!r}]")
            labels = _npz_labels(npz[label_key], len(images), f"{path}[{label_key!r}]") if label_key in keys else None
            names = npz["class_names"] if "class_names" in keys else None
    except ValueError as exc:  # object arrays need pickle, which stays off: loading data must not run code
        raise DataError(f"cannot read {path} without pickle ({exc}); store strings as np.array(names, dtype=str)") from exc
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


# ----------------------------------------------------------------------------------------------------- pixels
def _resize_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W] or [H, W, C]: shorter side to `size` (bicubic, antialiased on downscale), center-crop size x size."""
    from PIL import Image

    h, w = pixels.shape[:2]
    if (h, w) == (size, size):
        return pixels
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    img = Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels)
    img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    top, left = (nh - size) // 2, (nw - size) // 2
    out = np.asarray(img)[top : top + size, left : left + size]
    return out.reshape(size, size, *pixels.shape[2:])


def convert(images: np.ndarray, image_size: int | None = None, channels: int | None = None) -> np.ndarray:
    """Resize and change channels of uint8 [N, H, W, C] images where they differ from what is asked.

    Args:
        images: uint8 [N, H, W, C], C = 1 or 3.
        image_size: output N x N (shorter side to N, bicubic, center crop); None keeps the size.
        channels: 1 (luminance, Pillow's ITU-R 601 weights) or 3 (grey replicated); None keeps them.
    Returns:
        uint8 [N, image_size, image_size, channels] (the input itself when nothing changes).
    """
    if channels is not None and channels != images.shape[3]:
        if channels == 3:
            images = np.repeat(images, 3, axis=3)
        else:  # L = (19595 R + 38470 G + 7471 B + 2^15) >> 16: Pillow's convert("L"), exactly, vectorised
            rgb = images.astype(np.uint32)
            lum = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
            images = lum.astype(np.uint8)[..., None]
    if image_size is not None and images.shape[1:3] != (image_size, image_size):
        out = np.empty((len(images), image_size, image_size, images.shape[3]), np.uint8)
        for i, pixels in enumerate(images):  # ~10 us per 28x28 image with Pillow; 60k images take ~1 s
            out[i] = _resize_crop(pixels, image_size)
        images = out
    return images


# ----------------------------------------------------------------------------------------------------- entry point
def _canonical(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist"}.get(key, key)
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


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
        progress: show a tqdm bar while downloading.
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
        data = _load_folder(data_dir, split, image_size, channels)
    elif key == "npz":
        data = _load_npz(data_dir, split)
    else:
        data = _load_idx_dataset(key, split, data_dir, download, progress, mirrors)
    data.images = convert(data.images, image_size, channels)
    return data
