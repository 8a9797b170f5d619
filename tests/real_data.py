"""Where the real datasets are for the tests that need them, and what a test does when they are absent.

The system folder (/usr/share/datasets, Debian's dataset-* packages and scripts/setup.sh) or $EDGEGAN_DATA as the
process started (benchmarks' GPU machines carry Fashion-MNIST there; tests/conftest.py removes the variable for every
test, so it is read at import). Without the data a test skips with the reason, so the suite runs on a machine with
neither the data nor internet (a GPU machine's image); under CI (`CI` set to anything but "", "0" or "false") it
fails instead, because CI installs the data and a skip there would hide a broken setup.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SYSTEM_DATA = Path("/usr/share/datasets")
_ENV_DATA = os.environ.get("EDGEGAN_DATA")  # before tests/conftest.py's session fixture removes it


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def find_dataset(name: str, files: tuple[str, ...] = ("train-images-idx3-ubyte.gz",)) -> Path | None:
    """The folder holding `files` of dataset `name` (e.g. "fashion-mnist"), or None."""
    roots = [SYSTEM_DATA] + ([Path(_ENV_DATA)] if _ENV_DATA else [])
    for root in roots:
        if all((root / name / f).is_file() for f in files):
            return root / name
    return None


def missing(reason: str) -> None:
    """Skip with `reason`, or fail with it under CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: the real data is required here)")
    pytest.skip(f"{reason} (skipped: CI is not set)")


def real_dataset(name: str, files: tuple[str, ...] = ("train-images-idx3-ubyte.gz",)) -> Path:
    """The dataset's folder; where it is absent, `missing` (a skip, or a failure under CI)."""
    found = find_dataset(name, files)
    if found is None:
        missing(
            f"real {name} is not installed in {SYSTEM_DATA / name} nor $EDGEGAN_DATA: run scripts/setup.sh "
            f"(apt-get install dataset-{name})"
        )
    return found
