"""Multiply-adds counted in an ONNX graph at a given batch size, for the benchmark's effective GFLOP/s.

Counted: Conv, ConvTranspose, Gemm, MatMul and their int8 forms (QLinearConv, ConvInteger, QLinearMatMul,
MatMulInteger), the ops that hold all but a rounding error of a generator's arithmetic. Shapes come from onnx's
shape inference with the dynamic batch axis set to the run's batch, so the count is exactly what the graph
asks for at that batch (a sub-pixel graph's padding work included). `onnx` is imported inside the function: it
is not part of the base install, and without it the count is simply unavailable (None). The file is scanned for
external data (runtime/external_data.py) before onnx reads it, and a file onnx cannot parse is a ModelFileError,
so `run_bench` can count everything before it times anything.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

# op type -> (index of the data input, index of the weight input); weights are [M, C/g, *k] for Conv forms
# and [C, M/g, *k] for ConvTranspose.
_CONV_INPUTS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3)}
# op type -> (index of A, index of B) for matrix products
_MATMUL_INPUTS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}
COUNTED_OPS = (*_CONV_INPUTS, "ConvTranspose", "Gemm", *_MATMUL_INPUTS)


@dataclass
class MacCount:
    """Multiply-adds of one graph at one batch size.

    Attributes:
        batch: the batch size the count is for.
        total: all counted multiply-adds (FLOPs = 2 * total).
        by_op: op type -> multiply-adds.
        uncounted: "op_type name" of counted op types whose shapes shape inference could not give.
    """

    batch: int
    total: int
    by_op: dict[str, int] = field(default_factory=dict)
    uncounted: list[str] = field(default_factory=list)


def _dims(shapes: dict[str, list[int | None]], name: str) -> list[int] | None:
    dims = shapes.get(name)
    if dims is None:
        return None
    known = [int(d) for d in dims if d is not None and d > 0]
    return known if len(known) == len(dims) else None


def _node_macs(node, shapes: dict[str, list[int | None]]) -> int | None:
    """Multiply-adds of one node, or None when a needed shape is unknown."""
    op = node.op_type
    if op in _CONV_INPUTS:
        _, w_index = _CONV_INPUTS[op]
        weight = _dims(shapes, node.input[w_index])  # [M, C/g, *k]
        out = _dims(shapes, node.output[0])  # [N, M, *spatial]
        if weight is None or out is None:
            return None
        return math.prod(out) * math.prod(weight[1:])  # each output element: C/g * prod(k) products
    if op == "ConvTranspose":
        x = _dims(shapes, node.input[0])  # [N, C, *spatial_in]
        weight = _dims(shapes, node.input[1])  # [C, M/g, *k]
        if x is None or weight is None:
            return None
        return math.prod(x) * math.prod(weight[1:])  # each input element scatters into M/g * prod(k) outputs
    if op == "Gemm":
        a = _dims(shapes, node.input[0])
        out = _dims(shapes, node.output[0])  # [M, N]
        if a is None or out is None:
            return None
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        k = a[0] if trans_a else a[1]
        return math.prod(out) * k
    if op in _MATMUL_INPUTS:
        a_index, _ = _MATMUL_INPUTS[op]
        a = _dims(shapes, node.input[a_index])  # [..., M, K] or [K]
        out = _dims(shapes, node.output[0])  # [..., M, N]
        if a is None or out is None:
            return None
        return max(math.prod(out), 1) * a[-1]
    return 0


def count_macs(path: str | os.PathLike, batch: int) -> MacCount | None:
    """Count the multiply-adds of an ONNX generator at `batch`.

    Args:
        path: an .onnx file (a .plan or .ort file is counted from the generator.onnx beside it, when there is
            one: they are built from it).
        batch: the batch size to set on the dynamic batch axis.

    Returns:
        A MacCount, or None when onnx is not installed, there is no ONNX file to read, or shape inference fails.

    Raises:
        ModelFileError: the ONNX file keeps data in another file, or onnx cannot read it (one line, naming it).
    """
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:
        return None
    from edgegan.runtime.errors import ModelFileError, first_line
    from edgegan.runtime.external_data import check_model_file

    asked = Path(path)
    path = asked
    if path.suffix.lower() != ".onnx":
        path = path.with_name("generator.onnx")
        if not path.is_file():
            return None
    beside = f" (read beside {asked.name} to count its multiply-adds)" if path != asked else ""
    try:
        check_model_file(path)
        model = onnx.load(str(path), load_external_data=False)
    except ModelFileError as exc:
        raise ModelFileError(f"{exc}{beside}") from exc
    except Exception as exc:  # noqa: BLE001 - DecodeError, OSError, ...: any unreadable file
        reason = first_line(exc)
        raise ModelFileError(f"onnx cannot read {path}{beside}: {reason}") from exc
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch  # the dynamic batch axis, now concrete
    try:
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - a graph onnx cannot infer: the count is unavailable, not an error
        return None
    shapes: dict[str, list[int | None]] = {}
    graph = inferred.graph
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor = info.type.tensor_type
        if tensor.HasField("shape"):
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    for node in graph.node:  # Constant nodes carry weights too
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = list(attr.t.dims)
    count = MacCount(batch=batch, total=0)
    for node in graph.node:
        if node.op_type not in COUNTED_OPS or node.domain not in ("", "ai.onnx", "com.microsoft"):
            continue
        macs = _node_macs(node, shapes)
        if macs is None:
            count.uncounted.append(f"{node.op_type} {node.name}".strip())
            continue
        count.total += macs
        count.by_op[node.op_type] = count.by_op.get(node.op_type, 0) + macs
    return count
