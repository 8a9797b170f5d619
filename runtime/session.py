"""Open a model file as an onnxruntime session, read its contract and check its signature against io_spec().

numpy + onnxruntime only (onnxruntime through runtime/providers.py). The TensorRT backend reads an engine's
contract through these functions too, from the generator.onnx beside it.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgegan.runtime.contract import (
    BATCH_AXIS,
    OUTPUT_IMAGE,
    ContractError,
    GeneratorContract,
    TensorSpec,
    shape_text,
)
from edgegan.runtime.errors import EdgeganError, ModelFileError
from edgegan.runtime.external_data import check_model_file
from edgegan.runtime.providers import create_session, output_device, run_io_binding

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["MODEL_SUFFIXES", "resolve_model_path", "check_signature", "read_contract", "load_session",
           "SessionRunner"]

MODEL_SUFFIXES = (".onnx", ".ort", ".plan")


def resolve_model_path(path: str | os.PathLike) -> Path:
    """Check a model path: an existing .onnx/.ort/.plan file, or a folder holding generator.onnx."""
    p = Path(path)
    if p.is_dir():
        if (p / "generator.onnx").is_file():
            return p / "generator.onnx"
        raise ModelFileError(f"{p} is a folder without generator.onnx; pass the file `edgegan export` wrote")
    if not p.exists():
        raise ModelFileError(f"model file not found: {p} (pass a generator.onnx written by `edgegan export`)")
    if p.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelFileError(
            f"{p} is not an ONNX model (expected a {', '.join(MODEL_SUFFIXES)} file written by `edgegan export`)"
        )
    return p


def _tensor_problem(role: str, arg: Any, want: TensorSpec, note: str) -> str | None:
    """What is wrong with one NodeArg (name, type, shape) against its TensorSpec, or None.

    A fixed dim of the spec must match where the model fixes it too (a symbolic or unknown dim is accepted);
    the spec's batch axis must not be fixed by the model.
    """
    dims = list(arg.shape)
    wrong_dim = any(isinstance(d, int) and isinstance(w, int) and d != w for d, w in zip(dims, want.shape))
    if arg.type != want.ort_type or len(dims) != len(want.shape) or wrong_dim:
        expected = f"{want.ort_type} {shape_text(want.shape)}"
        return f"{role} {arg.name} is {arg.type} {shape_text(dims)}, expected {expected}{note}"
    fixed = [d for d, w in zip(dims, want.shape) if w == BATCH_AXIS and isinstance(d, int)]
    if fixed:
        return f"{role} {arg.name} has a fixed batch of {fixed[0]}; the contract needs a dynamic batch axis"
    return None


def check_signature(inputs: Sequence[Any], outputs: Sequence[Any], contract: GeneratorContract) -> None:
    """Check a session's inputs and outputs (onnxruntime NodeArgs: name, type, shape) against `contract.io_spec()`:
    names, onnxruntime types, fixed dims, and a dynamic batch axis on every tensor.

    Raises:
        ContractError: naming every input or output that is missing, extra, or of the wrong type or shape.
    """
    spec = contract.io_spec()
    problems: list[str] = []
    names = [i.name for i in inputs]
    if sorted(names) != sorted(spec.input_names):
        kind = f"conditional with {contract.num_classes} classes" if contract.conditional else "unconditional"
        problems.append(f"inputs are {names} but an {kind} generator takes {spec.input_names}")
    out_names = [o.name for o in outputs]
    if out_names != spec.output_names:
        problems.append(f"outputs are {out_names}, expected {spec.output_names}")
    output_note = f" (edgegan.output={contract.output})"  # the key that decides the image's form
    for role, args, wanted, note in (("input", inputs, spec.inputs, ""),
                                     ("output", outputs, spec.outputs, output_note)):
        by_name = {t.name: t for t in wanted}
        for arg in args:
            problem = _tensor_problem(role, arg, by_name[arg.name], note) if arg.name in by_name else None
            if problem:
                problems.append(problem)
    if problems:
        raise ContractError("not an edgegan generator: " + "; ".join(problems))


def read_contract(session: "ort.InferenceSession") -> GeneratorContract:
    """Read the contract from a session's metadata (no onnx import) and check its inputs and outputs.

    Args:
        session: an onnxruntime InferenceSession.

    Returns:
        The model's GeneratorContract.

    Raises:
        ContractError: metadata missing or malformed, unknown contract version, or a mismatching signature.
    """
    contract = GeneratorContract.from_metadata(session.get_modelmeta().custom_metadata_map)
    check_signature(session.get_inputs(), session.get_outputs(), contract)
    return contract


def load_session(path: str | os.PathLike, provider: str = "cpu", options: "ort.SessionOptions | None" = None,
                 allow_fallback: bool = False) -> tuple["ort.InferenceSession", str | None]:
    """`providers.create_session` (same arguments), load failures (not ONNX, corrupt file) made ModelFileError.

    The file is scanned first (runtime/external_data.py): a model that keeps tensors in another file is refused
    before onnxruntime opens it, whichever onnxruntime version is installed.
    """
    try:
        check_model_file(path, options)  # the options may force a format: scan as onnxruntime will parse
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return create_session(path, provider, options, allow_fallback)
    except EdgeganError:
        raise
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf / InvalidGraph classes
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"onnxruntime cannot load {path} as an ONNX model: {reason}") from exc


class SessionRunner:
    """Runs one batch on an onnxruntime session, through IO binding where outputs live on a device.

    The Generator's other runner is runtime/tensorrt_backend.py's TensorRTEngine: both offer `run(feeds)`,
    `providers`, `fallback` and `max_batch`.
    """

    max_batch: int | None = None

    def __init__(self, session: "ort.InferenceSession", fallback: str | None, io_binding: bool | None):
        self.session = session
        self.fallback = fallback
        self.device = output_device(session)
        self.io_binding = (self.device != "cpu") if io_binding is None else io_binding

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One batch: feeds z [b, nz] (+ label [b]) -> the image output as a host array."""
        if self.io_binding:
            return run_io_binding(self.session, feeds, OUTPUT_IMAGE, self.device)
        return self.session.run([OUTPUT_IMAGE], feeds)[0]
