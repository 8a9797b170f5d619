from __future__ import annotations

from pathlib import Path

import pytest

from tests import real_data  # noqa: F401 - reads $EDGEGAN_DATA now, before _sealed_cache removes it for every test


@pytest.fixture(autouse=True, scope="session")
def _sealed_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/edgegan (datasets, evaluators, reference statistics)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    mp.delenv("EDGEGAN_DATA", raising=False)
    mp.setenv("EDGEGAN_MIRROR", "http://127.0.0.1:9/")  # a closed local port: no test reaches the internet
    yield
    mp.undo()


@pytest.fixture(scope="session")
def shapes_npz(tmp_path_factory) -> Path:
    """The tiny labelled shapes dataset (tests/quality_helpers.make_npz), made once; tests only read it."""
    from tests.quality_helpers import make_npz

    return make_npz(tmp_path_factory.mktemp("shapes") / "shapes.npz")


@pytest.fixture(scope="session")
def evaluator_onnx(shapes_npz, tmp_path_factory) -> Path:
    """A tiny evaluator trained on shapes_npz, once per session (seeded, so every module saw the same one)."""
    from tests.quality_helpers import train_tiny_evaluator

    return train_tiny_evaluator(shapes_npz, tmp_path_factory.mktemp("shapes_ev") / "shapes.onnx")


# The real trained fixtures (tests/fixtures/, scripts/make_fixtures.py): checkpoint paths, for every test folder.
from tests.trained_fixtures import (  # noqa: E402,F401 - imported to register the pytest fixtures
    fm_dcgan_checkpoint,
    mnist_cdcgan_checkpoint,
    mnist_gan_checkpoint,
    trained_checkpoint,
)
