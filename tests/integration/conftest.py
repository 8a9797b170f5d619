from __future__ import annotations

from pathlib import Path

import pytest

FASHION = Path("/usr/share/datasets/fashion-mnist")
STEPS = 300


@pytest.fixture(scope="session")
def fashion_run(tmp_path_factory):
    """One real DCGAN training on Fashion-MNIST (300 steps, width 32), shared by the integration tests."""
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(
            "real Fashion-MNIST is missing: `apt-get install dataset-fashion-mnist` (scripts/setup.sh does it)"
        )
    from click.testing import CliRunner

    from edgegan.cli import main

    out = tmp_path_factory.mktemp("fashion") / "run"
    result = CliRunner().invoke(
        main,
        ["train", "--arch", "dcgan", "--dataset", "fashion-mnist", "--data-dir", str(FASHION), "--width", "32",
         "--max-steps", str(STEPS), "--log-every", "25", "--quiet", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    return out
