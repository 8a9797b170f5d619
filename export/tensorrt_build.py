"""TensorRT engine from a verified ONNX generator, through the TensorRT Python API (optional dependency).

tensorrt is imported only here and only when asked for; `check_tensorrt()` runs before an export writes
anything, so a missing TensorRT or GPU fails fast with a message saying what to install.
An engine is specific to the GPU and TensorRT version that built it; generator.plan.sha256 beside it lets a
deployment check it got the file that was built.

The batch profile (min, opt, max) is checked in one place, `check_batch_profile`, which the CLI, the pipeline and
`build_engine` call; the engine's optimization profile is `optimization_profile(contract, batch)`: every input of
the contract's io_spec with its batch axis set to min, opt and max (a pure function, tested without TensorRT).
Failures raise the runtime's TensorRTError (edgegan.runtime.tensorrt_backend): one class for TensorRT trouble.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgegan.export.staging import ExportOptionError
from edgegan.runtime.contract import BATCH_AXIS, GeneratorContract
from edgegan.runtime.files import atomic_write
from edgegan.runtime.tensorrt_backend import TensorRTError


def check_tensorrt() -> Any:
    """Import tensorrt and make sure a CUDA GPU is usable.

    Returns:
        The tensorrt module.

    Raises:
        TensorRTError: with what to install when either is missing.
    """
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTError(
            "--tensorrt needs NVIDIA TensorRT's Python package and a CUDA GPU: `pip install tensorrt` on a machine "
            f"with an NVIDIA driver, or export without --tensorrt ({exc})"
        ) from exc
    try:
        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        if builder is None:
            raise RuntimeError("trt.Builder returned None")
        del builder
    except Exception as exc:  # noqa: BLE001 - TensorRT raises plain errors when no CUDA device exists
        raise TensorRTError(
            f"TensorRT {getattr(trt, '__version__', '?')} is installed but cannot use a CUDA GPU here ({exc}); "
            "build the engine on the machine that will run it, or export without --tensorrt"
        ) from exc
    return trt


def check_batch_profile(batch: Sequence[int]) -> tuple[int, int, int]:
    """The TensorRT batch profile as three ints, min <= opt <= max, all >= 1 (the one check of it).

    Raises:
        ExportOptionError: any other shape or order.
    """
    profile = tuple(int(b) for b in batch)
    if len(profile) != 3 or not 1 <= profile[0] <= profile[1] <= profile[2]:
        raise ExportOptionError(f"TensorRT batch profile must be min <= opt <= max, all >= 1; got {tuple(batch)}")
    return profile


def parse_batch_profile(text: str) -> tuple[int, int, int]:
    """--trt-batch "MIN,OPT,MAX" -> (min, opt, max); ExportOptionError naming the flag's form otherwise."""
    try:
        return check_batch_profile([int(b) for b in text.split(",")])
    except (ValueError, ExportOptionError):
        raise ExportOptionError(f"{text!r}: give MIN,OPT,MAX with 1 <= MIN <= OPT <= MAX") from None


def optimization_profile(contract: GeneratorContract, batch: Sequence[int]) -> dict[str, dict[str, list[int]]]:
    """The engine's optimization profile from the contract's io_spec: every input, its batch axis at min/opt/max.

    Returns:
        {input name: {"min": shape, "opt": shape, "max": shape}}, e.g. for a conditional model with nz 16 and
        batch (1, 16, 64): {"z": {"min": [1, 16], "opt": [16, 16], "max": [64, 16]}, "label": {"min": [1], ...}}.
    """
    sizes = dict(zip(("min", "opt", "max"), check_batch_profile(batch)))
    return {
        spec.name: {key: [n if dim == BATCH_AXIS else int(dim) for dim in spec.shape] for key, n in sizes.items()}
        for spec in contract.io_spec().inputs
    }


def build_engine(
    onnx_path: str | os.PathLike,
    plan_path: str | os.PathLike,
    contract: GeneratorContract,
    *,
    batch: Sequence[int],
    fp16: bool = False,
    int8: bool = False,
    workspace_mib: int = 1024,
) -> dict[str, Any]:
    """Build a serialized engine from an ONNX generator and write it with a .sha256 beside it.

    Files are written to temp names in plan_path's folder and renamed into place once complete.

    Args:
        onnx_path: generator.onnx (or the int8 QDQ graph when int8=True: explicit quantization).
        plan_path: where the engine goes; `<plan_path>.sha256` is written beside it.
        contract: the generator's contract: its io_spec gives the optimization profile's inputs and shapes.
        batch: (min, opt, max) batch of the optimization profile, applied to every input's batch axis (the
            export's --trt-batch, default in the variant table's tensorrt row).
        fp16: allow float16 kernels (BuilderFlag.FP16).
        int8: allow int8 kernels (BuilderFlag.INT8); scales come from the graph's Q/DQ nodes.
        workspace_mib: builder workspace memory pool limit.

    Returns:
        {"tensorrt": version, "profile": {...}, "flags": [...], "sha256": hex, "size_bytes": n}.
    """
    shapes = optimization_profile(contract, batch)  # a bad profile fails before TensorRT is even imported
    trt = check_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # default (and deprecated) in TensorRT 10
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTError(f"TensorRT could not parse {Path(onnx_path).name}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    used_flags = []
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        used_flags.append("FP16")
    if int8:
        config.set_flag(trt.BuilderFlag.INT8)
        used_flags.append("INT8")
    names = {network.get_input(i).name for i in range(network.num_inputs)}
    if names != set(shapes):
        raise TensorRTError(
            f"TensorRT parsed inputs {sorted(names)} from {Path(onnx_path).name}; the contract "
            f"asks for {sorted(shapes)}"
        )
    profile = builder.create_optimization_profile()
    for name, shape in shapes.items():
        profile.set_shape(name, tuple(shape["min"]), tuple(shape["opt"]), tuple(shape["max"]))
    config.add_optimization_profile(profile)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTError(f"TensorRT failed to build an engine from {Path(onnx_path).name} (see its log above)")
    data = bytes(serialized)
    digest = hashlib.sha256(data).hexdigest()
    plan_path = Path(plan_path)
    _atomic_write(plan_path, data)
    _atomic_write(plan_path.with_name(plan_path.name + ".sha256"), f"{digest}  {plan_path.name}\n".encode())

    # Read the engine back: it must deserialize and expose the contract's tensors.
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise TensorRTError("TensorRT built an engine it cannot deserialize")
    io_tensors = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    return {
        "tensorrt": trt.__version__,
        "profile": shapes,
        "flags": used_flags,
        "sha256": digest,
        "size_bytes": len(data),
        "io_tensors": io_tensors,
        "nz": contract.nz,
    }


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))
