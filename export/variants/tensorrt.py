"""The tensorrt variant: a TensorRT engine built by edgegan.export.tensorrt_build (generator.plan + .sha256).

Built from the int8 graph when --int8 made one (explicit quantization), else from generator.onnx. onnxruntime cannot
run an engine, so its check is that TensorRT deserializes it; numeric checks of the engine run in
`edgegan bench/sample --provider tensorrt`.
"""

from __future__ import annotations

from pathlib import Path

from edgegan.export.tensorrt_build import build_engine, check_tensorrt
from edgegan.export.variants.variant import Built, Sources
from edgegan.export.verify import CheckRecord


def preflight() -> None:
    """Fail before any work when TensorRT or a CUDA GPU is missing."""
    check_tensorrt()


def build(sources: Sources, path: Path) -> Built:
    options = sources.options
    graph = sources.written["int8"] if options.int8 else sources.written["fp32"]
    engine = build_engine(graph, path, sources.contract, batch=options.trt_batch, fp16=options.fp16, int8=options.int8)
    check = CheckRecord(
        "engine_deserializes",
        True,
        kind="structure",
        detail=f"TensorRT {engine['tensorrt']} engine with io tensors {engine['io_tensors']}; "
        "numeric checks of the engine run in `edgegan bench/sample --provider tensorrt`",
    )
    return Built(
        checks=[check],
        extra={"engine": {k: engine[k] for k in ("tensorrt", "profile", "flags")}},
        precision="fp16" if options.fp16 else ("int8" if options.int8 else "fp32"),
    )
