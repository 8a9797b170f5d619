"""edgegan.export.ir_version: models built with onnx.helper load on the installed onnxruntime."""

from __future__ import annotations

import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edgegan.export.ir_version import cap_ir_version, ort_max_ir_version


def _identity(ir_version: int) -> bytes:
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [value],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=ir_version
    ).SerializeToString()


def test_the_highest_ir_version_loads_and_the_next_is_refused():
    top = ort_max_ir_version()
    assert 8 <= top <= onnx.IR_VERSION  # opset 18 needs IR 8
    ort.InferenceSession(_identity(top), providers=["CPUExecutionProvider"])
    if top < onnx.IR_VERSION:  # else onnx itself is the cap (an older onnx beside a newer onnxruntime)
        with pytest.raises(Exception, match="IR version"):
            ort.InferenceSession(_identity(top + 1), providers=["CPUExecutionProvider"])


def test_cap_only_lowers():
    model = onnx.ModelProto.FromString(_identity(onnx.IR_VERSION))
    assert cap_ir_version(model) is model and model.ir_version == ort_max_ir_version()
    old = onnx.ModelProto.FromString(_identity(8))
    assert cap_ir_version(old).ir_version == 8
