"""The ONNX IR version a model must carry for the installed onnxruntime to load it.

onnx.helper.make_model stamps the installed onnx's newest IR version (onnx.IR_VERSION), and onnxruntime refuses
any model above the IR version of the onnx it was built with: onnx 1.23 (IR 14) beside onnxruntime 1.30 gives
"Unsupported model IR version: 14, max supported IR version: 13". The two packages are released separately and
pyproject allows a range of both, so no table of versions stays right: the installed onnxruntime is asked, once,
by loading a one-node model. Imports onnx and onnxruntime only (no torch), so runtime tests may use it too.
"""

from __future__ import annotations

import functools

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

#: The oldest IR version onnxruntime loads (IR 3 brought opset_import).
_OLDEST_IR = 3


@functools.cache
def ort_max_ir_version() -> int:
    """The highest IR version, at most onnx.IR_VERSION, whose models the installed onnxruntime loads.

    Returns:
        The IR version (e.g. 13 for onnxruntime 1.30, 14 for 1.32).

    Raises:
        RuntimeError: onnxruntime refused the probe model for another reason than its IR version.
    """
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "ir_probe",
        [value],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    for ir in range(onnx.IR_VERSION, _OLDEST_IR - 1, -1):
        probe.ir_version = ir
        try:
            ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's Fail is not importable under a stable name
            if "IR version" not in str(exc):
                raise RuntimeError(f"onnxruntime refused a one-node IR {ir} model: {exc}") from exc
            continue
        return ir
    raise RuntimeError(f"onnxruntime {ort.__version__} loads no IR version from {onnx.IR_VERSION} down to {_OLDEST_IR}")


def cap_ir_version(model: onnx.ModelProto) -> onnx.ModelProto:
    """Lower `model.ir_version` (in place) to what the installed onnxruntime loads; returns the model.

    Our graphs use no feature newer than IR 8 (opset 18 needs IR 8), so the lower stamp changes nothing else.
    """
    model.ir_version = min(model.ir_version, ort_max_ir_version())
    return model
