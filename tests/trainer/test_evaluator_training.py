"""The domain evaluator: network shapes, training + ONNX export with its metadata, holdout accuracy without a
test split, and the `edgegan evaluator train` command (help, default output path, bad input)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.runtime.evaluation.quality import Evaluator, default_evaluator_path
from tests.quality_helpers import CLASS_NAMES, shapes, train_tiny_evaluator
from edgegan.trainer.evaluator_training import EvaluatorConfig, EvaluatorError, EvaluatorNet, PixelsEvaluator, train_evaluator


@pytest.mark.parametrize("c,h,w", [(1, 28, 28), (3, 32, 32), (1, 16, 16), (3, 64, 48)])
def test_network_shapes(c, h, w):
    net = EvaluatorNet(c, h, w, num_classes=5, base=4, feature_dim=12).eval()
    logits, features = net(torch.zeros(3, c, h, w))
    assert logits.shape == (3, 5) and features.shape == (3, 12)
    assert (features >= 0).all()  # the features are taken after the ReLU
    pixels = torch.randint(0, 256, (2, h, w, c), dtype=torch.uint8)
    via_pixels, _ = PixelsEvaluator(net)(pixels)
    direct, _ = net(pixels.permute(0, 3, 1, 2).float() / 127.5 - 1)
    torch.testing.assert_close(via_pixels, direct)


def test_train_and_export(shapes_npz, tmp_path):
    path = train_tiny_evaluator(shapes_npz, tmp_path / "ev.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"]
    assert session.get_inputs()[0].type == "tensor(uint8)"
    assert sorted(o.name for o in session.get_outputs()) == ["features", "logits"]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["edgegan.evaluator"] == "1" and meta["edgegan.evaluator.dataset"] == "npz"
    assert meta["edgegan.evaluator.feature_dim"] == "16" and "fc1" in meta["edgegan.evaluator.feature_layer"]
    ev = Evaluator(path)
    assert ev.info.class_names == CLASS_NAMES and ev.info.num_classes == 3
    assert ev.info.train["accuracy_split"] == "test" and ev.info.train["accuracy_images"] == 150
    assert ev.info.train["steps"] == 60 and ev.info.train["onnx_max_logit_err"] < 1e-3
    # The stored accuracy is the exported file's own, on the test split.
    data = np.load(shapes_npz)
    _, probs = ev.run(data["test_images"][:, :, :, None])
    assert ev.info.test_accuracy == pytest.approx((probs.argmax(1) == data["test_labels"]).mean())
    assert ev.info.test_accuracy >= 0.8  # three shapes are easy
    for batch in (1, 9):  # dynamic batch axis
        logits, features = session.run(None, {"pixels": data["test_images"][:batch, :, :, None]})
        assert logits.shape[0] == batch and features.shape == (batch, 16)


def test_holdout_without_a_test_split(tmp_path):
    images, labels = shapes(120, 3)
    npz = tmp_path / "train_only.npz"
    np.savez(npz, images=images, labels=labels)
    cfg = EvaluatorConfig(dataset="npz", data_dir=str(npz), width=4, feature_dim=8, batch_size=16, max_steps=4,
                          threads=1)
    result = train_evaluator(cfg, tmp_path / "ev.onnx", progress=False)
    assert result.info.train["accuracy_split"].startswith("holdout (12 training images")
    assert result.info.train["train_images"] == 108 and result.steps == 4


def test_cli_help_and_default_output(shapes_npz, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    result = CliRunner().invoke(main, ["evaluator", "train", "--help"])
    assert result.exit_code == 0
    for option in ("--dataset", "--data-dir", "--epochs", "--out", "--feature-dim"):
        assert option in result.output
    result = CliRunner().invoke(main, ["evaluator", "train", "--dataset", "npz", "--data-dir", str(shapes_npz),
                                       "--max-steps", "3", "--width", "4", "--feature-dim", "8", "--threads", "1",
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    default = default_evaluator_path("npz")
    assert default.is_file() and str(default).startswith(str(tmp_path / "xdg"))
    assert f"wrote {default}" in result.output and "accuracy" in result.output


def test_cli_bad_input(tmp_path):
    images, _ = shapes(40, 0)
    unlabelled = tmp_path / "nolabels.npz"
    np.savez(unlabelled, images=images)
    base = ["evaluator", "train", "--dataset", "npz", "--data-dir", str(unlabelled), "--max-steps", "2", "--quiet"]
    result = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "e.onnx")])
    assert result.exit_code == 1 and "needs labels" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "e.pt")])
    assert result.exit_code == 1 and "ending in .onnx" in result.output
    result = CliRunner().invoke(main, [*base, "--epochs", "0"])
    assert result.exit_code == 1 and "must be positive" in result.output
    with pytest.raises(EvaluatorError):
        EvaluatorConfig(dropout=1.0).validate()
