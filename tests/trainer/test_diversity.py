"""The training run's diversity figure: ~0 for a generator that ignores z, ~1 for one that does not, logged to
train.log and metrics.jsonl, and a `mode collapse` warning when a class collapses."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from edgegan.trainer.config import ModelConfig
from edgegan.trainer.diversity import COLLAPSE_RATIO, DiversityMonitor, real_spread, sample_diversity, spread
from edgegan.trainer.models import build_generator
from edgegan.trainer.train import train
from tests.trainer.conftest import write_npz


class IgnoresZ(nn.Module):
    """A collapsed conditional G: the wrapped G always sees z = 0, so its output depends on the label alone."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.G(torch.zeros_like(z), labels)


@pytest.fixture
def data(tmp_path):
    d = np.load(write_npz(tmp_path / "d.npz"))
    return d["images"], d["labels"]


def test_spread_of_copies_is_zero_and_ignores_contrast():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (10, 1, 8, 8))
    assert spread(np.repeat(images[:1], 6, axis=0)) == 0.0
    assert spread(images) == pytest.approx(spread(0.05 * images + 0.3), rel=1e-6)  # faint images: same figure
    assert 1.2 < spread(images) < 1.6  # unrelated noise: sqrt(2 (1 - rho)) with rho ~ 0
    with pytest.raises(ValueError, match=">= 2 images"):
        spread(images[:1])


@pytest.mark.parametrize("arch", ["gan", "dcgan"])
def test_collapsed_generator_scores_near_zero_and_a_random_one_near_real(arch, data):
    images, labels = data
    torch.manual_seed(0)
    G = build_generator(ModelConfig(arch=arch, nz=16, image_size=28, width=8, num_classes=3, channels=1))
    real = real_spread(images, labels, 3)
    assert len(real) == 3 and all(r > 0 for r in real)
    collapsed = sample_diversity(IgnoresZ(G), 16, 3, "cpu", real)
    varied = sample_diversity(G, 16, 3, "cpu", real)
    assert collapsed.ratio < 0.01 and collapsed.collapsed() == [0, 1, 2]
    assert varied.ratio > 0.5 and varied.collapsed() == []
    assert min(varied.per_class) > 20 * max(collapsed.per_class)


def test_unconditional_figure_is_one_number(data):
    images, _ = data
    G = build_generator(ModelConfig(arch="gan", nz=16, image_size=28, width=8, channels=1))
    div = sample_diversity(G, 16, 0, "cpu", real_spread(images, None, 0))
    assert len(div.per_class) == 1 and div.metrics()["diversity"] == div.ratio > COLLAPSE_RATIO


def test_monitor_logs_warns_once_per_step_and_gives_metrics(tiny_cfg, data):
    images, labels = data
    cfg = replace(tiny_cfg, model=replace(tiny_cfg.model, num_classes=3, channels=1), class_names=["a", "b", "c"])
    G = build_generator(cfg.model)

    class Data:  # what the monitor reads of edgegan.runtime.evaluation.datasets.ImageData
        pass

    d = Data()
    d.images, d.labels = images, labels
    lines: list[str] = []
    monitor = DiversityMonitor(cfg, d, "cpu", lines.append)
    with pytest.warns(
        RuntimeWarning,
        match=r"mode collapse at step 7: samples of class 0 \(a\), class 1 \(b\), "
        r"class 2 \(c\) are nearly identical \(diversity 0\.00 of real",
    ):
        row = monitor.measure(IgnoresZ(G), 7)
    assert row["diversity"] < 0.01 and len(row["diversity_per_class"]) == 3
    assert lines[0].startswith("diversity at step 7: 0.000 of real") and "mode collapse" in lines[1]
    assert monitor.measure(IgnoresZ(G), 7) == row and len(lines) == 2  # the same step again: no second figure

    row = monitor.measure(G, 8)
    assert row["diversity"] > 0.5 and len(lines) == 3  # no warning line
    assert DiversityMonitor(cfg, d, "cpu", lines.append, enabled=False).measure(G, 9) == {}


def test_training_logs_diversity_to_metrics_and_train_log(tiny_cfg, tmp_path):
    cfg = replace(tiny_cfg, conditional=True)  # 4 steps, a row every 2: the last row is the checkpoint's
    out = tmp_path / "run"
    train(cfg, out, progress=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert "diversity" not in rows[0]  # measured with the sample grid, not every log interval
    assert rows[1]["diversity"] >= 0 and len(rows[1]["diversity_per_class"]) == 3
    log = (out / "train.log").read_text()
    assert log.count("diversity at step 4:") == 1  # the row and the checkpoint share one measurement
