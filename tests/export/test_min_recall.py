"""`edgegan export --min-recall`: the fp32 model's recall against real images (and, conditional, each class's)
must reach the bound, or the export fails and leaves the output folder untouched."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.export.quality_gate import QualityGateError, format_gate, plan_gate, raise_if_failed, run_gate
from edgegan.runtime.contract import GeneratorContract
from tests.collapse_helpers import bank, build_bank_generator
from tests.quality_helpers import make_checkpoint

N = 150


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained MLP generator: noise, so its recall against the shapes is ~0."""
    return make_checkpoint(tmp_path_factory.mktemp("recall_ckpt") / "g.pt", seed=4)


CONTRACT = GeneratorContract(arch="bank", nz=4, num_classes=3, channels=1, height=16, width=16, dataset="npz")


def _gate(staged_model, evaluator, data, min_recall):
    """The gate on a staged fp32 model alone (no variants): only --min-recall can fail it."""
    plan = plan_gate(evaluator, CONTRACT, None, N, min_recall=min_recall, data_dir=data)
    return run_gate(plan, staged_model.parent, {}, staged_model.name)


@pytest.mark.parametrize("images_per_class,passes", [(100, True), (1, False)])
def test_gate_passes_a_varied_model_and_fails_one_that_ignores_z(
    images_per_class, passes, evaluator_onnx, shapes_npz, tmp_path
):
    model = build_bank_generator(tmp_path / "stage" / "generator.onnx", bank(images_per_class), 3)
    gate = _gate(model, evaluator_onnx, shapes_npz, 0.5)
    recall = gate["recall"]
    assert recall["min_recall"] == 0.5 and recall["reference"]["split"] == "test" and recall["reference"]["n"] == 150
    assert [r["name"] for r in recall["per_class"]] == ["hbar", "vbar", "square"]
    assert gate["passed"] is passes and recall["passed"] is passes
    if passes:
        assert recall["recall"] > 0.5 and all(r["recall"] > 0.5 for r in recall["per_class"])
        raise_if_failed(gate)
        assert "recall" in format_gate(gate) and "ok" in format_gate(gate)
    else:
        assert recall["recall"] < 0.1 and recall["failed_classes"] == [0, 1, 2]
        with pytest.raises(QualityGateError, match=r"below --min-recall 0.5") as info:
            raise_if_failed(gate)
        assert "class 0 (hbar): recall 0.000, diversity 0.00 of real" in str(info.value)
        assert "mode collapse" in str(info.value)


def test_export_fails_below_the_bound_and_leaves_out_untouched(checkpoint, evaluator_onnx, shapes_npz, tmp_path):
    out = tmp_path / "model"
    base = [
        "export",
        str(checkpoint),
        "--out",
        str(out),
        "-q",
        "--evaluator",
        str(evaluator_onnx),
        "--data-dir",
        str(shapes_npz),
        "--gate-n",
        str(N),
    ]
    result = CliRunner().invoke(main, [*base, "--min-recall", "0.2"])
    assert result.exit_code == 1, result.output
    assert "quality gate failed: the model's recall against 150 real npz test images" in result.output
    assert "below --min-recall 0.2" in result.output and "Traceback" not in result.output
    assert not (out / "generator.onnx").exists()

    result = CliRunner().invoke(main, [*base, "--min-recall", "0"])  # recall >= 0 always: the bound holds
    assert result.exit_code == 0, result.output
    assert "fp32 vs real npz test: recall" in result.output
    report = json.loads((out / "export_report.json").read_text())
    recall = report["quality_gate"]["recall"]
    assert report["options"]["min_recall"] == 0 and recall["passed"] and recall["per_class"] is None
    assert 0.0 <= recall["recall"] <= 1.0


def test_min_recall_needs_real_data_and_a_sane_bound(checkpoint, evaluator_onnx, tmp_path):
    base = ["export", str(checkpoint), "--out", str(tmp_path / "m"), "-q", "--evaluator", str(evaluator_onnx)]
    result = CliRunner().invoke(main, [*base, "--min-recall", "0.3"])  # an .npz run, no --data-dir to find it
    assert result.exit_code == 1
    assert "--min-recall scores the model against real 'npz' images" in result.output and "--data-dir" in result.output
    assert not (tmp_path / "m").exists()  # refused before any export work
    result = CliRunner().invoke(main, [*base, "--min-recall", "1.5"])
    assert result.exit_code == 2 and "--min-recall" in result.output
    with pytest.raises(QualityGateError, match=r"in \[0, 1\]"):
        plan_gate(evaluator_onnx, CONTRACT, None, N, min_recall=-0.1)
