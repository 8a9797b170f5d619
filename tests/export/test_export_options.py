"""Export options as library calls (no export runs): --atol/--rtol parsing and resolution, the relative rule in
the float and uint8 comparisons, --no-quality-gate in plan_gate, and third-party notes caught during a build."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from edgegan.export.check_records import (
    TOLERANCES,
    ToleranceOptionError,
    check_tolerance_names,
    parse_tolerances,
    resolve_tolerance,
)
from edgegan.export.library_notes import captured_notes
from edgegan.export.quality_gate import QualityGateError, plan_gate
from edgegan.export.verify import _compare_float, _compare_uint8
from edgegan.runtime.contract import GeneratorContract
from edgegan.runtime.errors import EdgeganError


def test_parse_tolerances_all_forms():
    assert parse_tolerances(["0.01", "int8=0.08"], "--atol") == {"*": 0.01, "int8": 0.08}
    assert parse_tolerances(0.5, "--atol") == {"*": 0.5}
    assert parse_tolerances({"fp16": 0.02}, "--atol") == {"fp16": 0.02}
    assert parse_tolerances(None, "--atol") == {}
    for bad in (["nan"], ["-1"], ["int8="], ["0.1", "0.2"], ["inf"]):
        with pytest.raises(ToleranceOptionError, match="--atol"):
            parse_tolerances(bad, "--atol")
    with pytest.raises(ToleranceOptionError, match="'int8' is not one of them"):
        check_tolerance_names({"int8": 0.1}, "--atol", ["fp32", "fp16"])


def test_resolve_tolerance_overrides_every_max_budget_and_says_so():
    tol, entry = resolve_tolerance("int8", "int8", {"*": 0.5, "int8": 0.2}, {})
    assert (tol.vs_torch_max, tol.batch_invariance, tol.reference) == (0.2, 0.2, 0.2)
    assert tol.vs_torch_mean == TOLERANCES["int8"].vs_torch_mean and tol.rtol == 0
    assert entry["overridden"] and entry["by"] == ["--atol"] and entry["row"] == "int8"
    tol, entry = resolve_tolerance("ort", "fp32", {"int8": 0.2}, {"*": 0.01})
    assert tol.vs_torch_max == TOLERANCES["fp32"].vs_torch_max and tol.rtol == 0.01 and entry["by"] == ["--rtol"]
    tol, entry = resolve_tolerance("fp16", "fp16", {}, {})
    assert tol is TOLERANCES["fp16"] and not entry["overridden"]


def test_rtol_is_polygraphys_rule():
    ref = np.array([[0.0, 0.5, 1.0]], np.float32)
    out = ref + np.array([[0.001, 0.001, 0.011]], np.float32)
    assert not _compare_float(out, ref, 0.002, None)[0]
    assert _compare_float(out, ref, 0.002, None, rtol=0.01)[0]  # 0.011 <= 0.002 + 0.01 * 1.0
    assert not _compare_float(out, ref, 0.0005, None, rtol=0.01)[0]  # 0.001 > 0.0005 + 0.01 * 0
    ref4 = np.full((1, 1, 1, 2), 0.5, np.float32)  # float [N, C, H, W]; 0.5 -> level 191
    off = np.array([[[[194], [191]]]], np.uint8)  # 3 levels = 0.0235 away
    assert not _compare_uint8(off, ref4, 0.01)[0]
    assert _compare_uint8(off, ref4, 0.01, rtol=0.05)[0]


def test_no_quality_gate_skips_without_reading_the_evaluator(tmp_path):
    contract = GeneratorContract(
        arch="dcgan", nz=4, num_classes=0, class_names=[], channels=1, height=8, width=8, dataset="fashion-mnist"
    )
    junk = tmp_path / "e.onnx"
    junk.write_bytes(b"junk")
    plan = plan_gate(junk, contract, None, skip=True)
    assert plan.evaluator is None and plan.skip_reason == "--no-quality-gate"
    with pytest.raises(QualityGateError, match="give one or the other"):
        plan_gate(junk, contract, 1.0, skip=True)
    with pytest.raises(EdgeganError):
        plan_gate(junk, contract, None)  # without skip the junk is read, and refused


def test_captured_notes_drop_the_known_advice_and_say_the_rest_once():
    said: list[str] = []
    root = logging.getLogger()
    handlers = root.handlers[:]
    with captured_notes(said.append, "int8"):
        for _ in range(2):
            logging.warning("Please consider to run pre-processing before quantization. Refer to example: x")
            logging.warning("Please consider pre-processing before quantization. See x")
            logging.getLogger("onnxruntime.quantization").warning("calibration saw 3 empty ranges")
            warnings.warn("something odd", UserWarning, stacklevel=2)
    assert root.handlers == handlers  # nothing installed for the rest of the process
    assert said == [
        "int8: onnxruntime.quantization: calibration saw 3 empty ranges",
        "int8: UserWarning: something odd",
    ]
