"""Quality metrics and `edgegan eval`: FID/KID/precision-recall sanity, the evaluator contract, the stats cache,
eval end to end through click, and eval with torch blocked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.runtime.evaluation import metrics
from edgegan.runtime.evaluation.quality import (
    Evaluator,
    EvaluatorInfo,
    QualityError,
    evaluate,
    reference_features,
    stats_cache_dir,
)
from tests.quality_helpers import CLASS_NAMES, make_checkpoint

REPO = Path(__file__).resolve().parents[2]


def _features(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """ReLU features [n, 12] with correlated dims and two dead units, like a classifier's penultimate layer."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(99).standard_normal((12, 12)) / 3
    f = np.maximum(rng.standard_normal((n, 12)) @ mix + 0.5 + shift, 0.0)
    f[:, :2] = 0.0
    return f


# ----------------------------------------------------------------------------------------------------- metrics
@pytest.mark.parametrize("method", ["scipy", "eigh"])
def test_fid_of_a_set_with_itself_is_zero_and_with_noise_large(method):
    a, a2 = _features(2000, 0), _features(2000, 1)
    noise = np.random.default_rng(2).uniform(0, 3, a.shape)
    self_fid = metrics.fid_from_features(a, a, method)
    same_dist = metrics.fid_from_features(a, a2, method)
    against_noise = metrics.fid_from_features(a, noise, method)
    assert 0.0 <= self_fid < 1e-8
    assert same_dist < 0.05
    assert against_noise > 100 * same_dist and against_noise > 1.0


def test_frechet_distance_closed_form_and_sqrtm_routes_agree():
    d = 6
    mu = np.arange(d, dtype=np.float64)
    # N(0, I) vs N(mu, 4I): |mu|^2 + tr(I + 4I - 2 * 2I) = |mu|^2 + d
    assert metrics.frechet_distance(np.zeros(d), np.eye(d), mu, 4 * np.eye(d)) == pytest.approx(mu @ mu + d)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((d, 3)), rng.standard_normal((d, d))
    singular, full = a @ a.T, b @ b.T + 0.1 * np.eye(d)  # rank 3 and full rank
    for s1, s2 in ((singular, full), (full, singular), (singular, singular)):
        assert metrics.trace_sqrt_product(s1, s2, "scipy") == pytest.approx(
            metrics.trace_sqrt_product(s1, s2, "eigh"), rel=1e-6, abs=1e-8
        )


def test_fid_without_scipy_takes_the_eigen_route(monkeypatch):
    a, b = _features(500, 0), _features(500, 1, shift=0.3)
    with_scipy = metrics.fid_from_features(a, b)
    monkeypatch.setitem(sys.modules, "scipy", None)  # `from scipy import linalg` now raises ImportError
    assert metrics._trace_sqrt_scipy(np.eye(2), np.eye(2)) is None
    assert metrics.fid_from_features(a, b) == pytest.approx(with_scipy, rel=1e-6)


def test_kid_near_zero_for_one_distribution_and_large_against_noise():
    a, a2 = _features(1500, 0), _features(1500, 1)
    noise = np.random.default_rng(2).uniform(0, 3, a.shape)
    same = metrics.kernel_inception_distance(a, a2, subsets=20, subset_size=500)
    far = metrics.kernel_inception_distance(a, noise, subsets=20, subset_size=500)
    assert (same.subsets, same.subset_size) == (20, 500)
    assert abs(same.mean) < 3 * same.std + 1e-3
    assert far.mean > 100 * abs(same.mean) and far.mean > 20 * far.std


def test_precision_recall():
    a = _features(600, 0)
    assert metrics.precision_recall(a, a) == (1.0, 1.0)
    far = a + 100.0
    assert metrics.precision_recall(a, far) == (0.0, 0.0)
    # Real data in two far-apart clusters; fakes from one of them (a dropped mode): precise, half the recall.
    two_modes = np.concatenate([a[:300], a[300:] + 50.0])
    one_mode = a[:300] + np.random.default_rng(5).normal(0, 0.01, (300, 12))
    precision, recall = metrics.precision_recall(two_modes, one_mode)
    assert precision == 1.0 and 0.4 < recall <= 0.5
    radii = metrics.kth_neighbour_radii(two_modes)
    assert metrics.precision_recall(two_modes, one_mode, real_radii=radii) == (precision, recall)


def test_class_coverage():
    eye = np.eye(4)
    uniform = metrics.class_coverage(np.repeat(eye, 5, axis=0))
    assert uniform.entropy == pytest.approx(1.0) and uniform.histogram == [0.25] * 4 and uniform.confidence == 1.0
    collapsed = metrics.class_coverage(np.tile([[0.7, 0.1, 0.1, 0.1]], (8, 1)))
    assert collapsed.entropy == 0.0 and collapsed.confidence == pytest.approx(0.7)
    # Asked for 0, 1, 2, 3, 0, 1, 2, 3; the evaluator sees class 0 every time.
    per = metrics.class_coverage(np.tile(eye[0], (8, 1)), labels=np.arange(8) % 4)
    assert per.per_class == [1.0, 0.0, 0.0, 0.0] and per.label_accuracy == 0.25
    partial = metrics.class_coverage(eye[[0, 1]], labels=np.array([0, 1]))
    assert partial.per_class == [1.0, 1.0, None, None] and partial.label_accuracy == 1.0


# ----------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def exported_model(tmp_path_factory) -> Path:
    """A tiny MLP generator through the real export pipeline: 16x16x1, unconditional."""
    from edgegan.export.pipeline import export_checkpoint

    root = tmp_path_factory.mktemp("gen")
    ckpt = make_checkpoint(root / "g.pt")
    export_checkpoint(ckpt, root / "model", progress=False)
    return root / "model" / "generator.onnx"


# ----------------------------------------------------------------------------------------------------- evaluator
def test_evaluator_metadata_and_outputs(evaluator_onnx, shapes_npz):
    ev = Evaluator(evaluator_onnx, batch_size=7)
    assert ev.info.dataset == "npz" and ev.info.class_names == CLASS_NAMES
    assert ev.info.image_shape == (16, 16, 1) and ev.info.feature_dim == 16 and ev.info.test_accuracy >= 0.8
    assert EvaluatorInfo.from_metadata(ev.info.to_metadata()) == ev.info
    images = np.load(shapes_npz)["test_images"][:20, :, :, None]
    features, probs = ev.run(images)  # batches of 7: 7 + 7 + 6
    assert features.shape == (20, 16) and probs.shape == (20, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    whole, _ = Evaluator(evaluator_onnx, batch_size=64).run(images)
    np.testing.assert_allclose(features, whole, rtol=1e-5, atol=1e-5)
    with pytest.raises(QualityError, match="trained on 16x16x1"):
        ev.run(np.zeros((2, 28, 28, 1), np.uint8))


def test_a_generator_is_not_an_evaluator(exported_model):
    with pytest.raises(QualityError, match="is an edgegan generator"):
        Evaluator(exported_model)


def test_reference_cache_is_reused_and_survives_corruption(evaluator_onnx, shapes_npz, cache_home):
    ev = Evaluator(evaluator_onnx)
    images = np.load(shapes_npz)["test_images"][:, :, :, None]
    first = reference_features(ev, images, "npz", "test")
    assert not first.cached and first.cache_path.parent == stats_cache_dir()
    assert str(stats_cache_dir()).startswith(str(cache_home))  # XDG_CACHE_HOME is respected
    second = reference_features(ev, images, "npz", "test")
    assert second.cached
    np.testing.assert_array_equal(first.sigma, second.sigma)
    first.cache_path.write_bytes(b"PK\x03\x04 truncated")  # a broken file is recomputed and replaced
    third = reference_features(ev, images, "npz", "test")
    assert not third.cached
    np.testing.assert_allclose(third.mu, first.mu)
    assert reference_features(ev, images, "npz", "test").cached
    assert not list(stats_cache_dir().glob(".*tmp*"))  # atomic writes leave no temp files
    other = reference_features(ev, images[:-1], "npz", "test")  # other data: another entry
    assert other.cache_path != first.cache_path


# ----------------------------------------------------------------------------------------------------- eval
def test_eval_end_to_end(exported_model, evaluator_onnx, shapes_npz, cache_home, tmp_path):
    out = tmp_path / "q.json"
    args = [
        "eval",
        str(exported_model),
        "--dataset",
        "npz",
        "--data-dir",
        str(shapes_npz),
        "-n",
        "120",
        "--evaluator",
        str(evaluator_onnx),
        "--json",
        str(out),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    for text in (
        "FID",
        "KID",
        "precision",
        "recall",
        "class coverage",
        "mean confidence",
        "real (floor)",
        "120 training images vs the 150 test images",
        "Inception FID: skipped: no local Inception weights",
    ):
        assert text in result.output
    report = json.loads(out.read_text())
    assert report["model"]["n"] == 120 and report["reference"]["split"] == "test" and report["reference"]["n"] == 150
    m, floor = report["metrics"], report["floor"]
    assert set(m) == {"fid", "kid_mean", "kid_std", "precision", "recall"}
    assert all(np.isfinite(v) for v in m.values())
    # The untrained generator's noise is far from the shapes; real training images are close to the test set.
    assert m["fid"] > 5 * floor["fid"] and floor["precision"] > m["precision"]
    assert report["coverage"]["per_class"] is None and len(report["coverage"]["histogram"]) == 3
    assert not report["reference"]["cached"] and not floor["cached"]

    again = CliRunner().invoke(main, args[:-2])
    assert again.exit_code == 0, again.output
    assert "(cached statistics)" in again.output


def test_eval_conditional_reports_per_class(make_model, evaluator_onnx, shapes_npz, cache_home):
    model = make_model(
        "cond16/generator.onnx", nz=8, channels=1, height=16, width=16, num_classes=3, class_names=CLASS_NAMES
    )
    report = evaluate(model, "npz", data_dir=shapes_npz, n=60, evaluator=evaluator_onnx, floor=False)
    per = report.coverage["per_class"]
    assert len(per) == 3 and all(0.0 <= p <= 1.0 for p in per)
    assert report.coverage["label_accuracy"] == pytest.approx(np.mean(per))
    assert report.floor["method"] == "none"


def test_eval_without_an_evaluator_says_how_to_make_one(exported_model, shapes_npz, cache_home):
    result = CliRunner().invoke(main, ["eval", str(exported_model), "--dataset", "npz", "--data-dir", str(shapes_npz)])
    assert result.exit_code == 1
    assert "Error: no evaluator for 'npz'" in result.output
    assert "edgegan evaluator train --dataset npz" in result.output
    assert "Traceback" not in result.output


def test_eval_rejects_mismatched_images_and_bad_n(make_model, evaluator_onnx, shapes_npz, cache_home):
    model = make_model("small/generator.onnx", nz=4, channels=1, height=4, width=5)
    base = ["eval", str(model), "--dataset", "npz", "--data-dir", str(shapes_npz), "--evaluator", str(evaluator_onnx)]
    result = CliRunner().invoke(main, base)
    assert result.exit_code == 1 and "4x5x1" in result.output and "16x16x1" in result.output
    result = CliRunner().invoke(main, [*base, "-n", "2"])
    assert result.exit_code == 1 and "-n must be an integer" in result.output


def test_eval_help():
    result = CliRunner().invoke(main, ["eval", "--help"])
    assert result.exit_code == 0
    for option in ("--dataset", "--data-dir", "--evaluator", "--json", "--seed", "-n"):
        assert option in result.output


NO_TORCH_SCRIPT = r"""
import json, sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
from click.testing import CliRunner
from edgegan.cli import main
from edgegan.runtime.evaluation.quality import evaluate

model, data, evaluator, out = sys.argv[1:5]
report = evaluate(model, "npz", data_dir=data, n=50, evaluator=evaluator)
result = CliRunner().invoke(main, ["eval", model, "--dataset", "npz", "--data-dir", data, "-n", "50",
                                   "--evaluator", evaluator, "--json", out])
heavy = sorted(m for m in ("torch", "edgegan.trainer", "edgegan.export", "onnx", "scipy.linalg") if sys.modules.get(m) is not None)
print(json.dumps({"fid": report.metrics["fid"], "exit": result.exit_code, "output": result.output, "heavy": heavy}))
"""


def test_eval_runs_with_torch_blocked(make_model, evaluator_onnx, shapes_npz, tmp_path):
    model = make_model("notorch/generator.onnx", nz=8, channels=1, height=16, width=16)
    env = {**__import__("os").environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TORCH_SCRIPT,
            str(model),
            str(shapes_npz),
            str(evaluator_onnx),
            str(tmp_path / "q.json"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["exit"] == 0, report["output"]
    assert np.isfinite(report["fid"]) and "FID" in report["output"]
    assert [m for m in report["heavy"] if m != "scipy.linalg"] == []  # no torch, trainer, export or onnx
    assert json.loads((tmp_path / "q.json").read_text())["metrics"]["fid"] == pytest.approx(report["fid"])
