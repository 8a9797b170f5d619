"""The int8 variant: static quantization by edgegan.export.int8_quantize.build_int8 (generator.int8.onnx).

The float graph torch exported (ConvTranspose form, float NCHW) is quantized; with --pixels uint8 the uint8 tail
is appended after, in fp32, so the pixel scaling stays exact.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import onnx

from edgegan.export.onnx import append_uint8_tail, op_counts
from edgegan.export.staging import ExportOptionError
from edgegan.export.variants.variant import Built, Sources
from edgegan.runtime.contract import OUTPUT_FLOAT_NCHW, OUTPUT_UINT8_NHWC

INT8_MODULE = "edgegan.export.int8_quantize"  # imported only when --int8 asks: it needs onnxruntime.quantization


def _int8_module():
    try:
        return importlib.import_module(INT8_MODULE)
    except ImportError as exc:
        raise ExportOptionError(f"--int8 is not available in this install ({exc})") from exc


def preflight() -> None:
    """Fail before any work when the quantizer cannot be imported."""
    _int8_module()


def build(sources: Sources, path: Path) -> Built:
    """The quantized core graph, plus the uint8 tail when the contract asks for pixels."""
    core_path, raw8_path = sources.work / "core.fp32.onnx", sources.work / "core.int8.onnx"
    onnx.save_model(sources.core, str(core_path))
    float_contract = dataclasses.replace(sources.contract, precision="int8", output=OUTPUT_FLOAT_NCHW)
    info = _int8_module().build_int8(core_path, raw8_path, float_contract)
    model = onnx.load(str(raw8_path))
    if sources.contract.output == OUTPUT_UINT8_NHWC:
        model = append_uint8_tail(model)
    extra = {"int8": json.loads(json.dumps(info, default=str))} if info else None
    return Built(model, ops=op_counts(model), extra=extra)
