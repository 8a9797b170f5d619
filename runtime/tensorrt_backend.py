"""Run a TensorRT engine (`generator.plan`, written by `edgegan export --tensorrt`) with the tensorrt Python API.

An engine file carries no edgegan metadata, so the contract is read from the `generator.onnx` in the same
folder (the model it was built from; export writes both). The engine is refused unless its bytes match
`generator.plan.sha256` (a hex digest, optionally followed by the file name as sha256sum writes it): a stale or
corrupt engine would otherwise run and draw wrong pictures.

Device memory comes from onnxruntime-gpu's OrtValue (the GPU runtime this package already relies on), so no
pycuda/cupy/torch is needed; the engine runs on the default CUDA stream, so the copy back after it is ordered.
`tensorrt` is imported only when an engine is loaded.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from edgegan.runtime.contract import INPUT_LATENT, OUTPUT_IMAGE, GeneratorContract
from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.providers import session_options
from edgegan.runtime.session import load_session, read_contract

__all__ = ["TensorRTError", "TensorRTEngine", "verify_engine_digest", "engine_contract", "check_engine_tensors"]


class TensorRTError(EdgeganError):
    """TensorRT cannot serve this model: an engine that cannot be parsed or built (export), or one that cannot be
    used (digest mismatch, missing files, no tensorrt/CUDA here)."""


def verify_engine_digest(plan: str | os.PathLike) -> bytes:
    """Read an engine file after checking it against its `.sha256` file.

    Args:
        plan: path to generator.plan; PLAN.sha256 must sit beside it.

    Returns:
        The engine bytes.

    Raises:
        TensorRTError: the digest file is missing or malformed, or does not match the engine.
    """
    plan = Path(plan)
    digest_file = plan.with_name(plan.name + ".sha256")
    if not digest_file.is_file():
        raise TensorRTError(
            f"{digest_file} is missing; an engine is only run when its digest can be checked "
            "(re-run `edgegan export --tensorrt`)"
        )
    fields = digest_file.read_text().split()
    expected = fields[0].lower() if fields else ""
    if len(expected) != 64 or any(ch not in "0123456789abcdef" for ch in expected):
        raise TensorRTError(f"{digest_file} does not hold a sha256 hex digest")
    data = plan.read_bytes()
    import hashlib  # only when an engine is checked: not part of every runtime import

    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise TensorRTError(
            f"refusing {plan}: its sha256 {actual[:16]}... does not match {digest_file.name} ({expected[:16]}...); "
            "the engine is stale or corrupt; rebuild it with `edgegan export --tensorrt`"
        )
    return data


def engine_contract(plan: str | os.PathLike) -> GeneratorContract:
    """The contract of an engine: read from the generator.onnx beside it, on a CPU session (no graph work)."""
    onnx_path = Path(plan).with_name("generator.onnx")
    if not onnx_path.is_file():
        raise TensorRTError(
            f"{onnx_path} is missing: a TensorRT engine takes its contract (latent size, classes, image shape) "
            "from the generator.onnx it was built from, in the same folder"
        )
    session, _ = load_session(onnx_path, "cpu", session_options(graph_optimization="disable"))
    return read_contract(session)


def check_engine_tensors(names: list[str], input_names: list[str], contract: GeneratorContract) -> None:
    """Check an engine's I/O tensor names (all of them, and those that are inputs) against `contract.io_spec()`.

    Raises:
        TensorRTError: naming the engine's tensors and the inputs and outputs the contract asks for.
    """
    spec = contract.io_spec()
    output_names = [n for n in names if n not in input_names]
    if sorted(input_names) != sorted(spec.input_names) or sorted(output_names) != sorted(spec.output_names):
        raise TensorRTError(
            f"engine tensors {names} do not match the contract (inputs {spec.input_names}, outputs {spec.output_names})"
        )


def _import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTError(
            "running a .plan engine needs the `tensorrt` Python package and a CUDA GPU: pip install tensorrt "
            "onnxruntime-gpu (or run generator.onnx with provider 'tensorrt' or 'cuda')"
        ) from exc
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise TensorRTError(
            "running a .plan engine needs onnxruntime-gpu for device memory: pip install onnxruntime-gpu"
        )
    return tensorrt


_NUMPY_TYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT64": np.int64, "INT32": np.int32, "UINT8": np.uint8}


class TensorRTEngine:
    """A deserialized engine plus one execution context; `run` is serialized by a lock (contexts are not
    thread-safe), so a Generator holding it stays safe to share.

    Args:
        plan: path to generator.plan (with generator.plan.sha256 and generator.onnx beside it).
        device_id: CUDA device.
    """

    fallback: str | None = None

    def __init__(self, plan: str | os.PathLike, device_id: int = 0):
        self.path = Path(plan)
        data = verify_engine_digest(self.path)  # checked before tensorrt is even imported
        self.contract = engine_contract(self.path)
        trt = _import_tensorrt()
        self._trt = trt
        self.device_id = device_id
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise TensorRTError(
                f"TensorRT could not deserialize {self.path} (built by another TensorRT version or GPU?)"
            )
        self.context = self.engine.create_execution_context()
        self._lock = threading.Lock()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        check_engine_tensors(
            names, [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT], self.contract
        )
        self._types = {n: _NUMPY_TYPES.get(self.engine.get_tensor_dtype(n).name, np.float32) for n in names}
        # Largest batch the engine's first optimization profile accepts: [min, opt, max] shapes of z.
        self.max_batch = int(self.engine.get_tensor_profile_shape(INPUT_LATENT, 0)[2][0])

    @property
    def providers(self) -> list[str]:
        return ["TensorRT engine"]

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One batch: host inputs -> device (one copy each), execute, image -> host (one copy)."""
        import onnxruntime as ort

        with self._lock:
            device_inputs = []
            for name, array in feeds.items():
                array = np.ascontiguousarray(array, dtype=self._types[name])
                value = ort.OrtValue.ortvalue_from_numpy(array, "cuda", self.device_id)
                device_inputs.append(value)  # keep alive until the run is done
                self.context.set_input_shape(name, array.shape)
                self.context.set_tensor_address(name, value.data_ptr())
            shape = tuple(self.context.get_tensor_shape(OUTPUT_IMAGE))
            output = ort.OrtValue.ortvalue_from_shape_and_type(shape, self._types[OUTPUT_IMAGE], "cuda", self.device_id)
            self.context.set_tensor_address(OUTPUT_IMAGE, output.data_ptr())
            if not self.context.execute_async_v3(0):  # default stream: the blocking copy below waits for it
                raise TensorRTError(f"TensorRT failed to run {self.path}")
            result = output.numpy()
        # An fp16 engine output is widened so callers always see the contract's float32.
        return result.astype(np.float32) if result.dtype == np.float16 else result
