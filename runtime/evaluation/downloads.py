"""Downloading MNIST and Fashion-MNIST IDX files into the cache from the datasets' own mirrors.

Each file goes to ($XDG_CACHE_HOME or ~/.cache)/edgegan/<name>, is checked against its published SHA-256 while it
streams in, and is renamed into place only once it matches. $EDGEGAN_MIRROR (or mirrors=) replaces the mirrors.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from edgegan.runtime.evaluation.idx import find_idx_file, idx_names
from edgegan.runtime.evaluation.image_data import DataError
from edgegan.runtime.files import cache_root
from edgegan.runtime.progress import Progress

__all__ = ["MIRRORS", "SHA256", "cache_dir", "mirror_bases", "fetch", "download_split"]

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


def cache_dir(name: str) -> Path:
    """($XDG_CACHE_HOME or ~/.cache)/edgegan/<name>: where downloads go."""
    return cache_root() / name


def mirror_bases(name: str, mirrors: Sequence[str] | None) -> list[str]:
    """Base URLs to try, each ending in "/": `mirrors`, else $EDGEGAN_MIRROR, else the dataset's own MIRRORS."""
    if mirrors is None and os.environ.get("EDGEGAN_MIRROR"):
        mirrors = os.environ["EDGEGAN_MIRROR"].replace(",", " ").split()
    bases = list(mirrors) if mirrors is not None else list(MIRRORS[name])
    return [b if b.endswith("/") else b + "/" for b in bases]


def fetch(url: str, dest: Path, expected: Sequence[str], progress: bool) -> None:
    """Download `url` to `dest` atomically: temp file beside it, hash while writing, fsync, rename if it matches.

    Raises:
        OSError / urllib.error.URLError: the mirror could not be read (the caller tries the next).
        DataError: the bytes arrived but their SHA-256 is not the published one (nothing is left behind).
    """
    with urllib.request.urlopen(url, timeout=60) as response:  # connect first: a dead mirror leaves no folder
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        try:
            total = int(response.headers.get("Content-Length") or 0) or None
            with (
                os.fdopen(fd, "wb") as out,
                Progress(total, unit="B", desc=f"download {dest.name}", quiet=not progress, leave=False) as bar,
            ):
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


def download_split(name: str, split: str, bases: Sequence[str], progress: bool, attempts: list[str]) -> bool:
    """Fetch the split's two .gz files into the cache; False (with `attempts` filled in) if any file failed."""
    target = cache_dir(name)
    for stem in idx_names(split):
        if find_idx_file(target, stem):
            continue
        filename = f"{stem}.gz"
        for base in bases:
            url = base + filename
            try:
                fetch(url, target / filename, SHA256[name][filename], progress)
                break
            except DataError as exc:
                attempts.append(str(exc))
            except (OSError, urllib.error.URLError, ValueError) as exc:  # ValueError: a malformed mirror URL
                reason = getattr(exc, "reason", None) or exc  # URLError: the reason; OSError: text with the path
                attempts.append(f"{url}: {reason}")
        else:
            return False
    return True
