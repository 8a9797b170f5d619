from __future__ import annotations

import pytest

STEPS = 300


@pytest.fixture(scope="session")
def fashion_run(tmp_path_factory):
    """One real DCGAN training on Fashion-MNIST (300 steps, width 32), shared by the integration tests."""
    from tests.real_data import real_dataset

    fashion = real_dataset("fashion-mnist")  # absent: a skip, or a failure under CI
    from click.testing import CliRunner

    from edgegan.cli import main

    out = tmp_path_factory.mktemp("fashion") / "run"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--arch",
            "dcgan",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            str(fashion),
            "--width",
            "32",
            "--max-steps",
            str(STEPS),
            "--log-every",
            "25",
            "--quiet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out
