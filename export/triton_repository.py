"""Triton Inference Server model repository for a verified generator: triton/edgegan_<name>/{config.pbtxt, 1/model.onnx}.

The config uses the onnxruntime backend, Triton's batching (max_batch_size + dynamic_batching) and the
contract's tensors (GeneratorContract.io_spec()) with the batch axis left out of dims (Triton adds it). "label" is
int64 [batch] in the graph; Triton needs at least one dim per item, so it is declared dims [1] with reshape []
(Triton's idiom for per-item scalars). check_repository parses the written config with Triton's own protobuf and
compares it with the same io_spec().
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from edgegan.export.verify import CheckRecord
from edgegan.runtime.contract import GeneratorContract, TensorSpec
from edgegan.runtime.errors import install_hint
from edgegan.runtime.files import file_sha256

PLATFORM = "onnxruntime_onnx"
MAX_QUEUE_DELAY_US = 100  # how long Triton may hold a request to batch it with others


def model_name(out_dir: str | Path) -> str:
    """edgegan_<folder name>, with characters Triton's repository layout dislikes replaced by '_'."""
    return "edgegan_" + re.sub(r"[^A-Za-z0-9_-]", "_", Path(out_dir).resolve().name)


#: numpy dtype name (TensorSpec.dtype) -> Triton's DataType name
TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64", "uint8": "TYPE_UINT8"}


@dataclass(frozen=True)
class TritonTensor:
    """One config.pbtxt input/output entry: Triton's type, the dims after the batch axis, and whether the model
    takes the item as a scalar (dims [1] reshaped to [], Triton's idiom for a per-item scalar such as "label")."""

    name: str
    data_type: str
    dims: list[int]
    scalar: bool = False

    def text(self) -> str:
        reshape = "\n    reshape: { shape: [ ] }" if self.scalar else ""
        dims = ", ".join(str(d) for d in self.dims)
        return f'  {{\n    name: "{self.name}"\n    data_type: {self.data_type}\n    dims: [ {dims} ]{reshape}\n  }}'


def triton_tensor(spec: TensorSpec) -> TritonTensor:
    """The config entry of one contract tensor: its shape without the leading batch axis (Triton adds it)."""
    dims = [int(d) for d in spec.shape[1:]]
    return TritonTensor(spec.name, TRITON_TYPES[spec.dtype], dims or [1], scalar=not dims)


def config_text(name: str, contract: GeneratorContract, max_batch_size: int) -> str:
    """config.pbtxt for the contract (protobuf text format of inference.ModelConfig)."""
    spec = contract.io_spec()
    inputs = ",\n".join(triton_tensor(t).text() for t in spec.inputs)
    outputs = ",\n".join(triton_tensor(t).text() for t in spec.outputs)
    return (
        f'name: "{name}"\n'
        f'platform: "{PLATFORM}"\n'
        f"max_batch_size: {max_batch_size}\n"
        f"input [\n{inputs}\n]\n"
        f"output [\n{outputs}\n]\n"
        f"dynamic_batching {{\n  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}\n}}\n"
    )


def write_repository(
    onnx_path: str | Path, repo_dir: str | Path, name: str, contract: GeneratorContract, *, max_batch_size: int = 64
) -> dict[str, Any]:
    """Write <repo_dir>/<name>/config.pbtxt and <repo_dir>/<name>/1/model.onnx (a copy of onnx_path).

    Args:
        onnx_path: the verified generator.onnx.
        repo_dir: the model repository root (export writes it inside its private temp folder first).
        name: Triton model name (see model_name).
        contract: the generator's contract.
        max_batch_size: largest batch Triton may form.

    Returns:
        {"model": name, "config": relative path, "model_file": relative path, "max_batch_size": n, "sha256": hex}.
    """
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
    model_dir = Path(repo_dir) / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, model_dir / "1" / "model.onnx")
    (model_dir / "config.pbtxt").write_text(config_text(name, contract, max_batch_size))
    digest = file_sha256(model_dir / "1" / "model.onnx")
    return {
        "model": name,
        "config": f"{name}/config.pbtxt",
        "model_file": f"{name}/1/model.onnx",
        "max_batch_size": max_batch_size,
        "sha256": digest,
    }


def load_model_config_pb2() -> ModuleType | None:
    """Triton's own ModelConfig protobuf module from the tritonclient package, or None when not installed.

    `tritonclient.grpc.model_config_pb2` imports grpc through its package; where the grpc extra is missing,
    the generated module is loaded from its file directly (it needs only protobuf).
    """
    try:
        return importlib.import_module("tritonclient.grpc.model_config_pb2")
    except Exception:  # noqa: BLE001 - ImportError or tritonclient's RuntimeError about grpc
        pass
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "grpc" / "model_config_pb2.py"
    if not path.is_file():
        return None
    module_spec = importlib.util.spec_from_file_location("edgegan_triton_model_config_pb2", path)
    if module_spec is None or module_spec.loader is None:  # not for a .py file; then there is no module to load
        return None
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception:  # noqa: BLE001 - a protobuf runtime too old/new for the generated code
        return None
    return module


def parse_config(path: str | Path) -> Any:
    """Parse config.pbtxt with Triton's ModelConfig protobuf (raises if tritonclient is missing)."""
    from google.protobuf import text_format  # type: ignore[import-untyped]  # protobuf ships no stubs (types-protobuf)

    pb2 = load_model_config_pb2()
    if pb2 is None:
        raise ImportError(f"tritonclient is not installed ({install_hint('triton')})")
    return text_format.Parse(Path(path).read_text(), pb2.ModelConfig())


def _config_problems(cfg: Any, name: str, contract: GeneratorContract, max_batch_size: int) -> list[str]:
    """How a parsed ModelConfig differs from what config_text writes for the contract."""
    pb2 = load_model_config_pb2()
    if pb2 is None:  # the caller has checked tritonclient is installed
        raise ImportError(f"tritonclient is not installed ({install_hint('triton')})")
    dtype = pb2.DataType.Name
    problems = []
    if cfg.name != name or cfg.platform != PLATFORM or cfg.max_batch_size != max_batch_size:
        problems.append(f"name/platform/max_batch_size {cfg.name}/{cfg.platform}/{cfg.max_batch_size}")
    if not cfg.HasField("dynamic_batching"):
        problems.append("no dynamic_batching")
    spec = contract.io_spec()
    for kind, entries, tensors in (("inputs", cfg.input, spec.inputs), ("outputs", cfg.output, spec.outputs)):
        found = {e.name: (dtype(e.data_type), list(e.dims)) for e in entries}
        wanted = {t.name: (t.data_type, t.dims) for t in map(triton_tensor, tensors)}
        if found != wanted:
            problems.append(f"{kind} {found} != {wanted}")
    return problems


def check_repository(
    config_path: Path, onnx_path: Path, model_file: Path, name: str, contract: GeneratorContract, max_batch_size: int
) -> list[CheckRecord]:
    """The repository's model is byte-identical to generator.onnx, and Triton's own protobuf parses the config
    into the fields the contract implies (a skipped record when tritonclient is not installed)."""
    same = file_sha256(onnx_path) == file_sha256(model_file)
    records = [
        CheckRecord(
            "model_file",
            same,
            kind="structure",
            detail="1/model.onnx is generator.onnx" if same else "1/model.onnx differs from generator.onnx",
        )
    ]
    if load_model_config_pb2() is None:
        records.append(
            CheckRecord(
                "config_parses",
                True,
                kind="structure",
                skipped=True,
                detail="tritonclient not installed: config.pbtxt not parsed",
            )
        )
        return records
    try:
        cfg = parse_config(config_path)
    except Exception as exc:  # noqa: BLE001 - a parse error is a failed check, reported with the rest
        return [*records, CheckRecord("config_parses", False, kind="structure", detail=str(exc)[:500])]
    problems = _config_problems(cfg, name, contract, max_batch_size)
    records.append(
        CheckRecord(
            "config_parses",
            not problems,
            kind="structure",
            detail="; ".join(problems)
            or "Triton's ModelConfig protobuf parses config.pbtxt; name, platform, batching, inputs and outputs match",
        )
    )
    return records
