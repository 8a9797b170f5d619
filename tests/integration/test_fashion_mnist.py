from __future__ import annotations

import json
import math

import numpy as np
import torch
from PIL import Image

from tests.integration.conftest import STEPS


def test_real_training_is_finite_and_writes_a_grid(fashion_run):
    rows = [json.loads(line) for line in (fashion_run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == STEPS
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in rows)
    ckpt = torch.load(fashion_run / "checkpoints" / "last.pt", weights_only=True)
    # D neither collapsed nor won outright by the end (a working GAN keeps both in play).
    last = rows[-1]
    if ckpt["config"]["loss"] == "bce":  # D's outputs are probabilities
        assert 0.05 < last["d_g_z"] < 0.95 and 0.05 < last["d_x"] < 0.999
    else:  # raw scores (hinge's margins at +-1): D tells them apart, but not every sample is past its margin yet
        assert last["d_g_z"] < last["d_x"] and last["loss_d"] > 0.05
    grid = np.asarray(Image.open(fashion_run / "samples" / f"step_{STEPS:07d}.png"))
    assert grid.shape == (8 * 30 + 2, 8 * 30 + 2)  # 64 tiles of 28x28 with 2-pixel padding
    assert grid.std() > 20  # not a blank or constant grid
    assert ckpt["step"] == STEPS and ckpt["config"]["dataset"] == "fashion-mnist"
    assert (fashion_run / "loss_curve.png").is_file()
