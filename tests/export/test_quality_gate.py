"""The export quality gate: a clean fp16 variant passes with a near-zero FID against fp32; a variant corrupted on
purpose (weights scaled after conversion, with the per-tensor tolerance loosened so only the gate can catch it)
fails `--max-fid-delta` and leaves the output folder untouched; without an evaluator the gate is skipped, and
says why."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

import edgegan.export.variants.fp16
import edgegan.export.verify
from edgegan.cli import main
from edgegan.export.pipeline import export_checkpoint
from edgegan.export.quality_gate import QualityGateError, plan_gate, run_gate
from edgegan.runtime.contract import GeneratorContract
from edgegan.trainer.contract import checkpoint_contract
from tests.quality_helpers import make_checkpoint

CORRUPTION = 1.6  # scale of every float16 weight matrix of the corrupted variant


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("gate_ckpt") / "g.pt", seed=4)


@pytest.fixture
def no_default_evaluator(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty_cache"))


@pytest.fixture
def corrupted_fp16(monkeypatch):
    """fp16 conversion that also scales the weight matrices, and an fp16 tolerance loose enough to let it
    through verification: the case only a distribution-level check can catch."""
    convert = edgegan.export.variants.fp16.convert_fp16

    def corrupt(model: onnx.ModelProto) -> onnx.ModelProto:
        converted = convert(model)
        for index, init in enumerate(converted.graph.initializer):
            array = numpy_helper.to_array(init)
            if array.ndim == 2 and array.dtype == np.float16:
                converted.graph.initializer[index].CopyFrom(
                    numpy_helper.from_array((array * CORRUPTION).astype(np.float16), init.name)
                )
        return converted

    monkeypatch.setattr(edgegan.export.variants.fp16, "convert_fp16", corrupt)
    monkeypatch.setitem(
        edgegan.export.verify.TOLERANCES,
        "fp16",
        edgegan.export.verify.Tolerance(
            vs_torch_max=2.0, vs_torch_mean=2.0, batch_invariance=1e-3, reference=1e-2, range_slack=1e-3
        ),
    )


def test_clean_variant_passes_through_the_cli(checkpoint, evaluator_onnx, no_default_evaluator, tmp_path):
    out = tmp_path / "clean"
    result = CliRunner().invoke(
        main,
        [
            "export",
            str(checkpoint),
            "--out",
            str(out),
            "--fp16",
            "--ort-format",
            "-q",
            "--evaluator",
            str(evaluator_onnx),
            "--max-fid-delta",
            "0.01",
            "--gate-n",
            "300",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "quality gate: FID vs fp32 on 300 images, limit 0.01" in result.output
    gate = json.loads((out / "export_report.json").read_text())["quality_gate"]
    assert not gate["skipped"] and gate["passed"] and gate["n"] == 300 and gate["max_fid_delta"] == 0.01
    fp16, ort = gate["variants"]["fp16"], gate["variants"]["ort"]
    assert fp16["passed"] and fp16["fid_vs_fp32"] < 0.01 and fp16["class_agreement"] > 0.95
    assert ort["fid_vs_fp32"] < 1e-6 and ort["mean_abs_levels"] < 0.01  # the same fp32 graph in another format


def test_corrupted_variant_fails_the_gate(checkpoint, evaluator_onnx, corrupted_fp16, tmp_path):
    # Without a limit the export succeeds and records how far the variant moved.
    recorded = export_checkpoint(
        checkpoint, tmp_path / "recorded", fp16=True, evaluator=evaluator_onnx, gate_n=300, progress=False
    )
    figures = recorded["quality_gate"]["variants"]["fp16"]
    assert recorded["variants"]["fp16"]["passed"]  # the loosened tensor check let it through
    assert figures["passed"] and figures["mean_abs_levels"] > 1.0
    # With a limit below that figure the export fails and writes nothing.
    limit = figures["fid_vs_fp32"] / 2
    out = tmp_path / "gated"
    with pytest.raises(QualityGateError) as caught:
        export_checkpoint(
            checkpoint, out, fp16=True, evaluator=evaluator_onnx, max_fid_delta=limit, gate_n=300, progress=False
        )
    message = str(caught.value)
    assert "quality gate failed" in message and "fp16: FID" in message and f"{limit:g}" in message
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gated")]  # staging folder removed


def test_gate_skipped_without_an_evaluator(checkpoint, no_default_evaluator, tmp_path):
    import torch

    ckpt = torch.load(checkpoint, weights_only=True)
    from edgegan.trainer.config import TrainConfig

    contract = checkpoint_contract(TrainConfig.from_dict(ckpt["config"]), ckpt, False, "float_nchw")
    plan = plan_gate(None, contract, None)
    gate = run_gate(plan, tmp_path, {"fp32": {"file": "generator.onnx"}}, "generator.onnx")
    assert gate["skipped"] and "no evaluator" in gate["reason"]
    assert "edgegan evaluator train --dataset npz" in gate["reason"]
    # Asking for a limit without any evaluator fails before any export work.
    with pytest.raises(QualityGateError, match="needs an evaluator"):
        export_checkpoint(checkpoint, tmp_path / "out", fp16=True, max_fid_delta=1.0, progress=False)
    assert not (tmp_path / "out").exists()


def test_gate_rejects_an_evaluator_for_other_images(evaluator_onnx, no_default_evaluator):
    contract = GeneratorContract(arch="dcgan", nz=8, num_classes=0, channels=1, height=28, width=28, dataset="npz")
    with pytest.raises(QualityGateError, match="trained on 16x16x1"):
        plan_gate(evaluator_onnx, contract, None)
    with pytest.raises(QualityGateError, match=">= 0"):
        plan_gate(evaluator_onnx, contract, -1.0)


def test_gate_scores_int8_of_a_trained_model_as_fp32(mnist_cdcgan_checkpoint, tmp_path):
    """The trained conditional MNIST fixture, its evaluator (tests/fixtures/mnist_evaluator.onnx): int8 images score
    as the fp32 model's (measured on 2,000 images: FID 0.003, class agreement 99.6%), inside --max-fid-delta 1."""
    from tests.trained_fixtures import FIXTURE_DIR

    report = export_checkpoint(
        mnist_cdcgan_checkpoint,
        tmp_path / "out",
        int8=True,
        progress=False,
        evaluator=FIXTURE_DIR / "mnist_evaluator.onnx",
        max_fid_delta=1.0,
        gate_n=512,
    )
    gate = report["quality_gate"]["variants"]["int8"]
    assert report["quality_gate"]["passed"] and gate["passed"]
    assert gate["fid_vs_fp32"] < 0.05 and gate["class_agreement"] >= 0.98, gate
