"""Triton Inference Server model repository for a verified generator: triton/edgegan_<name>/{config.pbtxt, 1/model.onnx}.

The config uses the onnxruntime backend, Triton's batching (max_batch_size + dynamic_batching) and the
contract's tensors with the batch axis left out of dims (Triton adds it). "label" is int64 [batch] in the
graph; Triton needs at least one dim per item, so it is declared dims [1] with reshape [] (Triton's idiom
for per-item scalars).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

from edgegan.runtime.contract import INPUT_LABEL, INPUT_LATENT, OUTPUT_IMAGE, OUTPUT_UINT8_NHWC, GeneratorContract

PLATFORM = "onnxruntime_onnx"
MAX_QUEUE_DELAY_US = 100  # how long Triton may hold a request to batch it with others


def model_name(out_dir: str | Path) -> str:
    """edgegan_<folder name>, with characters Triton's repository layout dislikes replaced by '_'."""
    return "edgegan_" + re.sub(r"[^A-Za-z0-9_-]", "_", Path(out_dir).resolve().name)


def config_text(name: str, contract: GeneratorContract, max_batch_size: int) -> str:
    """config.pbtxt for the contract (protobuf text format of inference.ModelConfig)."""
    c, h, w = contract.image_shape_nchw
    if contract.output == OUTPUT_UINT8_NHWC:
        image_type, image_dims = "TYPE_UINT8", [h, w, c]
    else:
        image_type, image_dims = "TYPE_FP32", [c, h, w]
    inputs = [f'  {{\n    name: "{INPUT_LATENT}"\n    data_type: TYPE_FP32\n    dims: [ {contract.nz} ]\n  }}']
    if contract.conditional:
        inputs.append(
            f'  {{\n    name: "{INPUT_LABEL}"\n    data_type: TYPE_INT64\n    dims: [ 1 ]\n    reshape: {{ shape: [ ] }}\n  }}'
        )
    dims = ", ".join(str(d) for d in image_dims)
    return (
        f'name: "{name}"\n'
        f'platform: "{PLATFORM}"\n'
        f"max_batch_size: {max_batch_size}\n"
        "input [\n" + ",\n".join(inputs) + "\n]\n"
        f'output [\n  {{\n    name: "{OUTPUT_IMAGE}"\n    data_type: {image_type}\n    dims: [ {dims} ]\n  }}\n]\n'
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
    digest = hashlib.sha256((model_dir / "1" / "model.onnx").read_bytes()).hexdigest()
    return {"model": name, "config": f"{name}/config.pbtxt", "model_file": f"{name}/1/model.onnx",
            "max_batch_size": max_batch_size, "sha256": digest}


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
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception:  # noqa: BLE001 - a protobuf runtime too old/new for the generated code
        return None
    return module


def parse_config(path: str | Path) -> Any:
    """Parse config.pbtxt with Triton's ModelConfig protobuf (raises if tritonclient is missing)."""
    from google.protobuf import text_format

    pb2 = load_model_config_pb2()
    if pb2 is None:
        raise ImportError("tritonclient is not installed (pip install 'edgegan[triton]')")
    return text_format.Parse(Path(path).read_text(), pb2.ModelConfig())
