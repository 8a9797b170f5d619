"""The structural checks of an exported file: the ONNX checker, the graph's interface against an IOSpec
(GeneratorContract.io_spec()), and its metadata against the contract (edgegan.export.verify runs them; the
evaluator's export, edgegan.export.evaluator_onnx, runs the first two)."""

from __future__ import annotations

from pathlib import Path

import onnx

from edgegan.export.check_records import CheckRecord
from edgegan.runtime.contract import GeneratorContract, IOSpec
from edgegan.runtime.errors import EdgeganError

_ONNX_DTYPES = {1: "float32", 10: "float16", 7: "int64", 2: "uint8", 3: "int8", 6: "int32"}
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(int32)": "int32",
}
#: (name -> (dtype, dims), input names, output names, metadata_props) as a file declares them
Interface = tuple[dict[str, tuple[str, list]], list[str], list[str], dict[str, str]]


def check_onnx_checker(path: Path) -> CheckRecord:
    onnx.checker.check_model(str(path), full_check=True)
    return CheckRecord("onnx_checker", True, detail="onnx.checker.check_model(full_check=True)", kind="structure")


def interface_from_onnx(path: Path) -> Interface:
    model = onnx.load(str(path), load_external_data=False)

    def describe(v) -> tuple[str, list]:
        t = v.type.tensor_type
        dims = [d.dim_param if d.dim_param else (d.dim_value if d.HasField("dim_value") else "?") for d in t.shape.dim]
        return _ONNX_DTYPES.get(t.elem_type, f"onnx type {t.elem_type}"), dims

    inits = {i.name for i in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in inits]
    found = {v.name: describe(v) for v in [*inputs, *model.graph.output]}
    meta = {p.key: p.value for p in model.metadata_props}
    return found, [v.name for v in inputs], [v.name for v in model.graph.output], meta


def interface_from_session(session) -> Interface:
    def describe(v) -> tuple[str, list]:
        return _ORT_DTYPES.get(v.type, v.type), [d if d is not None else "?" for d in v.shape]

    found = {v.name: describe(v) for v in [*session.get_inputs(), *session.get_outputs()]}
    meta = dict(session.get_modelmeta().custom_metadata_map)
    return found, [v.name for v in session.get_inputs()], [v.name for v in session.get_outputs()], meta


def check_interface(
    found: dict[str, tuple[str, list]], inputs: list[str], outputs: list[str], spec: IOSpec
) -> CheckRecord:
    """Names, order, dtypes and shapes (batch axis named) against an IOSpec: a generator's contract.io_spec(),
    or the evaluator's (export/evaluator_onnx.py)."""
    problems = []
    if inputs != spec.input_names:
        problems.append(f"inputs {inputs} != {spec.input_names}")
    if outputs != spec.output_names:
        problems.append(f"outputs {outputs} != {spec.output_names}")
    tensors = (*spec.inputs, *spec.outputs)
    for tensor in tensors:
        if tensor.name not in found:
            continue
        got_dtype, got_dims = found[tensor.name]
        if got_dtype != tensor.dtype:
            problems.append(f"{tensor.name} is {got_dtype}, expected {tensor.dtype}")
        if got_dims != list(tensor.shape):
            problems.append(f"{tensor.name} has shape {got_dims}, expected {list(tensor.shape)}")
    detail = "; ".join(problems) or ", ".join(f"{t.name} {t.dtype} {list(t.shape)}" for t in tensors)
    return CheckRecord("interface", not problems, detail=detail, kind="structure")


def check_metadata(meta: dict[str, str], contract: GeneratorContract) -> CheckRecord:
    expected = contract.to_metadata()
    problems = [f"{k}: {meta.get(k)!r} != {v!r}" for k, v in expected.items() if meta.get(k) != v]
    extra = sorted(set(meta) - set(expected))
    if extra:
        problems.append(f"unexpected keys {extra}")
    try:
        GeneratorContract.from_metadata(meta)
    except EdgeganError as exc:
        problems.append(str(exc))
    detail = "; ".join(problems) or f"{len(expected)} contract keys match exactly"
    return CheckRecord("metadata", not problems, detail=detail[:1000], kind="structure")
