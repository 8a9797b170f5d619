"""Collapse is reported, never silent: `edgegan eval`'s per-class figures and its mode-collapse warnings.

The generators are ONNX image banks (tests/collapse_helpers.py): z picks one of M real images of the asked-for
class. M = 1 ignores z (every image of a class is the same image, and the labels are right: the collapse issue 9
reported); M = 100 draws real images, as varied as the data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.runtime.evaluation.metrics import mean_pairwise_distance
from edgegan.runtime.evaluation.per_class import (
    DIVERSITY_COLLAPSE,
    collapse_warnings,
    format_per_class,
    per_class_figures,
)
from edgegan.runtime.evaluation.quality import evaluate
from tests.collapse_helpers import bank, build_bank_generator
from tests.quality_helpers import CLASS_NAMES

N = 150  # 50 images per class, like the 150-image test split


@pytest.fixture(scope="module")
def banks(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("banks")
    mixed = bank(50)[np.random.default_rng(0).permutation(150)]
    return {
        "collapsed": build_bank_generator(root / "collapsed.onnx", bank(1), 3),
        "healthy": build_bank_generator(root / "healthy.onnx", bank(100), 3),
        "uncond_healthy": build_bank_generator(root / "uncond_healthy.onnx", mixed, 0),
        "uncond_one": build_bank_generator(root / "uncond_one.onnx", bank(1)[:1], 0),
    }


def _eval(model: Path, data: Path, evaluator: Path, json_path: Path):
    return CliRunner().invoke(
        main,
        [
            "eval",
            str(model),
            "--dataset",
            "npz",
            "--data-dir",
            str(data),
            "-n",
            str(N),
            "--evaluator",
            str(evaluator),
            "--json",
            str(json_path),
        ],
    )


# ----------------------------------------------------------------------------------------------------- metrics
def test_mean_pairwise_distance():
    x = np.random.default_rng(0).standard_normal((60, 5)) + 300.0  # far from 0: rounding must not leak in
    brute = np.mean([np.linalg.norm(x[i] - x[j]) for i in range(60) for j in range(60) if i != j])
    assert mean_pairwise_distance(x) == pytest.approx(brute, rel=1e-9)
    assert mean_pairwise_distance(np.tile(x[:1], (40, 1))) == 0.0  # copies: exactly 0
    big = np.random.default_rng(1).standard_normal((3000, 5))
    subset, whole = mean_pairwise_distance(big, max_rows=500), mean_pairwise_distance(big, max_rows=3000)
    assert subset == pytest.approx(whole, rel=0.05)
    with pytest.raises(ValueError, match="N >= 2"):
        mean_pairwise_distance(x[:1])


def _synthetic(spread: float, n_per_class: int = 80, shift: float = 0.0, seed: int = 0):
    """Features of 3 well-separated classes [3n, 8] and one-hot-ish probabilities; `spread` scales the
    within-class scatter, `shift` moves every point off the real clusters."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 10, (3, 8))
    labels = np.arange(3 * n_per_class) % 3
    features = centres[labels] + spread * rng.standard_normal((len(labels), 8)) + shift
    probs = np.full((len(labels), 3), 0.05)
    probs[np.arange(len(labels)), labels] = 0.9
    return features, probs, labels


@pytest.mark.parametrize(
    "case,kinds",
    [
        ("healthy", []),
        ("identical", ["mode_collapse"]),  # spread 0.01 of real: every image of a class the same
        ("partial", ["mode_collapse"]),  # spread 0.45 of real and recall ~0: a few modes per class
        ("off_manifold", ["low_recall"]),  # as spread as real, but shifted away: not collapse
    ],
)
def test_warning_kinds_follow_diversity_and_recall(case, kinds):
    real_f, real_p, _ = _synthetic(1.0, seed=0)
    floor = (real_f, real_p, *_synthetic(1.0, seed=1)[:2])
    spread, shift = {
        "healthy": (1.0, 0.0),
        "identical": (0.01, 0.0),
        "partial": (0.45, 0.0),
        "off_manifold": (1.0, 4.0),
    }[case]
    fake_f, fake_p, labels = _synthetic(spread, shift=shift, seed=2)
    figures = per_class_figures(real_f, real_p, fake_f, fake_p, labels, ["a", "b", "c"], floor=floor)
    warnings = collapse_warnings(figures)
    assert [w["kind"] for w in warnings] == kinds
    rows = figures["classes"]
    assert all(0.9 < r["floor_diversity"] < 1.1 and r["floor_recall"] > 0.6 for r in rows)
    if case == "identical":
        assert all(r["diversity"] < DIVERSITY_COLLAPSE and r["recall"] < 0.05 for r in rows)
        assert warnings[0]["classes"] == [0, 1, 2] and "nearly identical" in warnings[0]["message"]
    if case == "partial":
        assert "far less varied" in warnings[0]["message"]


# ----------------------------------------------------------------------------------------------------- eval
def test_eval_warns_on_a_conditional_generator_that_ignores_z(banks, evaluator_onnx, shapes_npz, cache_home, tmp_path):
    out = tmp_path / "q.json"
    result = _eval(banks["collapsed"], shapes_npz, evaluator_onnx, out)
    assert result.exit_code == 0, result.output
    # Labels are right, so the old figures looked fine; the per-class table and the warning do not.
    assert (
        "Warning: mode collapse: the images of classes 0 (hbar), 1 (vbar), 2 (square) are nearly identical"
        in result.stderr
    )
    assert "mode collapse" not in result.stdout  # the warning goes to stderr, the table to stdout
    assert "per class (generated images grouped by the label each image was asked for" in result.stdout
    report = json.loads(out.read_text())
    assert report["coverage"]["label_accuracy"] > 0.9  # the evaluator recognises every asked-for class
    rows = report["per_class"]["classes"]
    assert report["per_class"]["grouping"] == "label" and [r["name"] for r in rows] == CLASS_NAMES
    assert all(r["n"] == N // 3 and r["diversity"] < 0.01 and r["recall"] < 0.1 for r in rows)
    assert all(r["floor_diversity"] > 0.7 and r["floor_recall"] > 0.5 for r in rows)
    (warning,) = report["warnings"]
    assert warning["kind"] == "mode_collapse" and warning["classes"] == [0, 1, 2]
    assert warning["names"] == CLASS_NAMES and len(warning["details"]) == 3


def test_eval_is_quiet_on_a_varied_conditional_generator(banks, evaluator_onnx, shapes_npz, cache_home, tmp_path):
    out = tmp_path / "q.json"
    result = _eval(banks["healthy"], shapes_npz, evaluator_onnx, out)
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["class", "n"])
    assert lines[header].split() == [
        "class",
        "n",
        "label",
        "acc",
        "precision",
        "recall",
        "real",
        "recall",
        "diversity",
        "real",
        "diversity",
    ]
    assert [line.split()[:2] for line in lines[header + 2 : header + 5]] == [
        ["0", "(hbar)"],
        ["1", "(vbar)"],
        ["2", "(square)"],
    ]
    report = json.loads(out.read_text())
    assert report["warnings"] == []
    for r in report["per_class"]["classes"]:
        assert r["accuracy"] > 0.8 and r["diversity"] > 0.7 and r["recall"] > 0.5 * r["floor_recall"]


def test_eval_unconditional_groups_by_predicted_class(banks, evaluator_onnx, shapes_npz, cache_home):
    healthy = evaluate(banks["uncond_healthy"], "npz", data_dir=shapes_npz, n=N, evaluator=evaluator_onnx)
    rows = healthy.per_class["classes"]
    assert healthy.per_class["grouping"] == "predicted" and healthy.warnings == []
    assert sum(r["n"] for r in rows) == N and all(r["accuracy"] is None for r in rows)
    assert all(abs(r["share"] - r["real_share"]) < 0.15 and r["diversity"] > 0.7 for r in rows)
    text = "\n".join(format_per_class(healthy.per_class))
    assert "share" in text and "real share" in text and "label acc" not in text

    one = evaluate(banks["uncond_one"], "npz", data_dir=shapes_npz, n=N, evaluator=evaluator_onnx)
    kinds = {w["kind"]: w for w in one.warnings}
    assert set(kinds) == {"mode_collapse", "missing_classes", "dominant_class"}
    drawn = kinds["dominant_class"]["classes"]
    assert len(drawn) == 1 and kinds["mode_collapse"]["classes"] == drawn
    assert sorted(kinds["missing_classes"]["classes"] + drawn) == [0, 1, 2]
