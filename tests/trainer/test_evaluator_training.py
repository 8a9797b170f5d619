"""The domain evaluator's training (trainer/evaluator_training.py): network shapes, what training hands to the
export, holdout accuracy without a test split, and the `edgegan evaluator train` command (help, default output
path, bad input). Its ONNX export is tests/export/test_evaluator_onnx.py's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.runtime.evaluation.quality import default_evaluator_path
from edgegan.trainer.evaluator_training import (
    EvaluatorConfig,
    EvaluatorError,
    EvaluatorNet,
    PixelsEvaluator,
    train_evaluator,
)
from tests.quality_helpers import CLASS_NAMES, shapes


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


def test_holdout_without_a_test_split(tmp_path):
    images, labels = shapes(120, 3)
    npz = tmp_path / "train_only.npz"
    np.savez(npz, images=images, labels=labels)
    cfg = EvaluatorConfig(
        dataset="npz", data_dir=str(npz), width=4, feature_dim=8, batch_size=16, max_steps=4, threads=1
    )
    trained = train_evaluator(cfg, progress=False)
    assert trained.accuracy_split.startswith("holdout (12 training images")
    assert trained.train_images == 108 and trained.steps == 4 and len(trained.accuracy_images) == 12
    assert trained.provenance()["accuracy_split"] == trained.accuracy_split
    assert not list(tmp_path.glob("*.onnx"))  # training writes nothing: the export does


def test_training_hands_the_export_a_network_and_its_data(shapes_npz):
    cfg = EvaluatorConfig(
        dataset="npz", data_dir=str(shapes_npz), width=4, feature_dim=8, batch_size=16, max_steps=3, threads=1
    )
    trained = train_evaluator(cfg, progress=False)
    assert trained.image_shape == (16, 16, 1) and trained.class_names == CLASS_NAMES and trained.num_classes == 3
    assert trained.accuracy_split == "test" and trained.accuracy_images.dtype == np.uint8
    assert not trained.net.training and next(trained.net.parameters()).device.type == "cpu"
    module = trained.pixels_module()
    logits, features = module(torch.from_numpy(trained.accuracy_images[:5]))
    assert logits.shape == (5, 3) and features.shape == (5, 8)
    provenance = trained.provenance()
    assert provenance["steps"] == 3 and provenance["architecture"] == "cnn" and "data_dir" not in provenance


def test_cli_help_and_default_output(shapes_npz, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    result = CliRunner().invoke(main, ["evaluator", "train", "--help"])
    assert result.exit_code == 0
    for option in ("--dataset", "--data-dir", "--epochs", "--out", "--feature-dim"):
        assert option in result.output
    result = CliRunner().invoke(
        main,
        [
            "evaluator",
            "train",
            "--dataset",
            "npz",
            "--data-dir",
            str(shapes_npz),
            "--max-steps",
            "3",
            "--width",
            "4",
            "--feature-dim",
            "8",
            "--threads",
            "1",
            "--quiet",
        ],
    )
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


def test_the_trainer_knows_nothing_of_onnx():
    """docs/DESIGN.md: no trainer module imports onnx, onnxruntime or edgegan.export, nor calls torch.onnx; the one
    exception is the `evaluator train` command in trainer/cli.py (CLI glue), which DESIGN lists."""
    import ast
    from pathlib import Path

    import edgegan.trainer

    root = Path(edgegan.trainer.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.split(".")[0] in ("onnx", "onnxruntime") or name.startswith("edgegan.export"):
                    found.append(f"{path.relative_to(root)}: {name}")
        if "torch.onnx" in path.read_text():
            found.append(f"{path.relative_to(root)}: torch.onnx")
    assert found == ["cli.py: edgegan.export.evaluator_onnx"]
