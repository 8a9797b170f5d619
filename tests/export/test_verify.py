"""Verification collects every check before failing, with typed errors (ShapeError / AtolError)."""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import onnx
import pytest
import torch

from edgegan.export.onnx import _ContractModule, export_generator, set_contract_metadata
from edgegan.export.pipeline import _torch_reference
from edgegan.export.verify import (
    TOLERANCES,
    AtolError,
    CachedReference,
    ShapeError,
    VerificationError,
    _compare_uint8,
    verify_variant,
)
from edgegan.runtime.contract import KEY_NZ, OUTPUT_FLOAT_NCHW
from edgegan.runtime.errors import EdgeganError
from edgegan.trainer.contract import checkpoint_contract
from edgegan.trainer.sample import load_generator

ALL_CHECKS = [
    "onnx_checker",
    "interface",
    "metadata",
    "vs_torch_batch1",
    "vs_torch_batch3",
    "vs_torch_batch17",
    "batch_invariance",
    "output_range",
    "labels_full_range",
    "reference_evaluator",
]


@pytest.fixture(scope="module")
def cond(dcgan_cond_ckpt):
    G, cfg, state = load_generator(dcgan_cond_ckpt)
    contract = checkpoint_contract(cfg, state, ema=True, output=OUTPUT_FLOAT_NCHW)
    return G, contract, CachedReference(_torch_reference(G))


@pytest.fixture(scope="module")
def good_path(cond, tmp_path_factory):
    G, contract, _ = cond
    model, _ = export_generator(G, contract)
    path = tmp_path_factory.mktemp("verify") / "generator.onnx"
    onnx.save(model, path)
    return path


def test_tolerance_table_holds_the_issue_figures():
    assert TOLERANCES["fp32"].vs_torch_max == 1e-4
    assert TOLERANCES["fp32"].batch_invariance == 1e-5
    assert TOLERANCES["fp32"].reference == 1e-4
    assert TOLERANCES["fp16"].vs_torch_max == 1e-2
    assert set(TOLERANCES) == {"fp32", "fp16", "int8"}


def test_good_export_passes_every_check_with_figures(good_path, cond):
    _, contract, reference = cond
    result = verify_variant(good_path, contract, reference)
    assert [r.name for r in result.records] == ALL_CHECKS
    assert result.passed, [r for r in result.records if not r.passed]
    numeric = [r for r in result.records if r.name.startswith("vs_torch")]
    assert all(r.max_err is not None and r.max_err <= 1e-4 and r.tolerance == 1e-4 for r in numeric)
    assert sorted(result.outputs) == [1, 3, 17]
    assert result.outputs[17].shape == (17, 1, 28, 28)
    max_err, mean_err = result.error_figures()
    assert 0 <= mean_err <= max_err <= 1e-4
    result.raise_if_failed()  # no error


def test_batchnorm_left_in_training_mode_is_caught_with_every_failure_collected(cond, tmp_path):
    G, contract, reference = cond
    # The TorchScript exporter in TRAINING mode keeps BatchNormalization on batch statistics: each image then
    # depends on the others in its batch (the dynamo exporter always exports inference BatchNorm).
    module = _ContractModule(copy.deepcopy(G).train(), conditional=True).train()
    buffer = io.BytesIO()
    args = (torch.zeros(2, contract.nz), torch.zeros(2, dtype=torch.int64))
    axes = {name: {0: "batch"} for name in ("z", "label", "image")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buffer,
            dynamo=False,
            training=torch.onnx.TrainingMode.TRAINING,
            input_names=["z", "label"],
            output_names=["image"],
            dynamic_axes=axes,
            opset_version=18,
        )
    model = onnx.load_from_string(buffer.getvalue())
    set_contract_metadata(model, contract)
    path = tmp_path / "generator.onnx"
    onnx.save(model, path)
    result = verify_variant(path, contract, reference)
    assert [r.name for r in result.records] == ALL_CHECKS  # every check ran despite failures
    failed = {r.name for r in result.records if not r.passed}
    assert "batch_invariance" in failed
    assert {"vs_torch_batch3", "vs_torch_batch17"} <= failed
    assert {"onnx_checker", "interface", "metadata"}.isdisjoint(failed)
    with pytest.raises(AtolError) as info:
        result.raise_if_failed()
    err = info.value
    assert isinstance(err, VerificationError) and isinstance(err, EdgeganError)
    assert err.records is result.records
    assert "batch_invariance" in str(err) and "vs_torch_batch17" in str(err)


def test_batch_size_baked_into_the_graph_is_a_shape_error(cond, tmp_path):
    G, contract, reference = cond
    buffer = io.BytesIO()
    args = (torch.zeros(2, contract.nz), torch.zeros(2, dtype=torch.int64))
    # TorchScript exporter without dynamic axes: batch 2 is baked into every shape (and the Reshape).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            G, args, buffer, dynamo=False, input_names=["z", "label"], output_names=["image"], opset_version=18
        )
    model = onnx.load_from_string(buffer.getvalue())
    set_contract_metadata(model, contract)
    path = tmp_path / "generator.onnx"
    onnx.save(model, path)
    result = verify_variant(path, contract, reference)
    failed = {r.name: r for r in result.records if not r.passed}
    assert "interface" in failed and "'batch'" in failed["interface"].detail
    assert {"vs_torch_batch1", "vs_torch_batch3", "vs_torch_batch17"} <= set(failed)
    assert "raised" in failed["vs_torch_batch17"].detail  # onnxruntime's error became a record
    with pytest.raises(ShapeError):
        result.raise_if_failed()


def test_wrong_metadata_fails_only_the_metadata_check(good_path, cond, tmp_path):
    _, contract, reference = cond
    model = onnx.load(good_path)
    for prop in model.metadata_props:
        if prop.key == KEY_NZ:
            prop.value = "99"
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, "extra.key": "x"})
    path = tmp_path / "generator.onnx"
    onnx.save(model, path)
    result = verify_variant(path, contract, reference)
    failed = [r for r in result.records if not r.passed]
    assert [r.name for r in failed] == ["metadata"]
    assert "edgegan.nz" in failed[0].detail and "extra.key" in failed[0].detail
    with pytest.raises(ShapeError, match="metadata"):
        result.raise_if_failed()


def test_unreadable_file_is_one_clear_failure(tmp_path, cond):
    _, contract, reference = cond
    path = tmp_path / "generator.onnx"
    path.write_bytes(b"not an onnx file")
    result = verify_variant(path, contract, reference)
    assert not result.passed
    assert {r.name for r in result.records} == {"onnx_checker", "onnxruntime_load"}
    with pytest.raises(ShapeError):
        result.raise_if_failed()


def test_uint8_comparison_allows_only_what_float_error_explains():
    # PyTorch floats that land at 127.5 * (x + 1) = 10.5 exactly (a rounding tie) and at 20.0 (far from one).
    ref = np.array([10.5 / 127.5 - 1, 20.0 / 127.5 - 1], np.float32).reshape(1, 1, 1, 2)
    out_tie = np.array([11, 20], np.uint8).reshape(1, 1, 2, 1)  # NHWC
    ok, max_err, _, _ = _compare_uint8(out_tie, ref, 1e-4)
    assert ok and max_err == 1  # 10.5 rounds to 10 (half to even) but 10.5 + float error may round to 11
    out_bad = np.array([10, 21], np.uint8).reshape(1, 1, 2, 1)
    ok, max_err, _, detail = _compare_uint8(out_bad, ref, 1e-4)
    assert not ok and max_err == 1 and "1 beyond" in detail
