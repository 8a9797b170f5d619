"""Precision and format variants of a contract graph: float16 weights and compute, and onnxruntime's .ort format.

float16: written here with onnx alone (onnxconverter-common pins an old protobuf). Every float32 initializer,
Constant and internal Cast becomes float16; Casts at the graph's edges keep "z" and "image" float32, so callers
never see the precision change (onnxconverter-common's keep_io_types). Nodes of the uint8 tail
(edgegan.export.onnx.TAIL_PREFIX) are left out of the conversion and stay float32, so the pixel scaling is exact.
On the CPU provider onnxruntime runs float16 nodes it has no kernel for through inserted Casts to float32: the
variant halves the file and targets GPUs; it does not make CPU inference faster.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgegan.export.onnx import TAIL_PREFIX
from edgegan.runtime.contract import INPUT_LATENT, OUTPUT_IMAGE
from edgegan.runtime.errors import EdgeganError

_FP16_MAX = float(np.finfo(np.float16).max)  # 65504


class VariantError(EdgeganError, RuntimeError):
    """A variant could not be built from generator.onnx."""


def _to_fp16_tensor(tensor: onnx.TensorProto) -> onnx.TensorProto:
    array = numpy_helper.to_array(tensor)
    if np.isfinite(array).all() and np.abs(array).max(initial=0.0) > _FP16_MAX:
        raise VariantError(
            f"weight {tensor.name!r} holds values beyond float16's range (|x| > {_FP16_MAX:g}); "
            "export without --fp16"
        )
    return numpy_helper.from_array(array.astype(np.float16), tensor.name)


def convert_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """float16 copy of a float32 contract graph with float32 inputs and outputs.

    Args:
        model: an fp32 generator graph (its "image" may be float32 NCHW or the uint8 tail's output).

    Returns:
        A new ModelProto; initializers, Constants and internal float32 Casts in float16, "z" cast to float16 on
        entry and the float image cast back to float32 on exit. Metadata is copied unchanged (set precision
        afterwards).
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    tail = [n for n in graph.node if n.name.startswith(TAIL_PREFIX)]
    body = [n for n in graph.node if not n.name.startswith(TAIL_PREFIX)]
    tail_inputs = {i for n in tail for i in n.input}
    tail_consts = {i for i in tail_inputs if i.startswith(TAIL_PREFIX)}

    # Name of the float image the body produces: "image" itself, or the uint8 tail's input.
    body_outputs = {o for n in body for o in n.output}
    float_image = OUTPUT_IMAGE if OUTPUT_IMAGE in body_outputs else next(i for i in tail_inputs if i in body_outputs)

    for index, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT and init.name not in tail_consts:
            graph.initializer[index].CopyFrom(_to_fp16_tensor(init))
    for node in body:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    attr.t.CopyFrom(_to_fp16_tensor(attr.t))
                elif attr.name in ("value_float", "value_floats"):
                    raise VariantError(f"Constant {node.name!r} uses {attr.name}, which this float16 pass does not convert")
        elif node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16
        elif node.op_type in ("ConstantOfShape", "RandomNormal", "RandomNormalLike", "RandomUniform", "EyeLike"):
            # Their output dtype comes from an attribute; generators exported from eval-mode G have none.
            raise VariantError(f"float16 pass does not handle {node.op_type} (node {node.name!r})")

    # Edges: "z" float32 -> float16 on entry; the float image float16 -> float32 on exit.
    z16, image16 = f"{INPUT_LATENT}_fp16", f"{float_image}_fp16"
    for node in body:
        node.input[:] = [z16 if i == INPUT_LATENT else i for i in node.input]
        node.output[:] = [image16 if o == float_image else o for o in node.output]
    entry = helper.make_node("Cast", [INPUT_LATENT], [z16], name="edgegan_fp16/z_to_fp16", to=TensorProto.FLOAT16)
    exit_ = helper.make_node("Cast", [image16], [float_image], name="edgegan_fp16/image_to_fp32", to=TensorProto.FLOAT)
    del graph.node[:]
    graph.node.extend([entry, *body, exit_, *tail])
    del graph.value_info[:]  # stale float32 annotations; shape inference below re-derives them
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model


def convert_to_ort(onnx_path: str | os.PathLike, ort_path: str | os.PathLike) -> dict[str, Any]:
    """Convert with onnxruntime's own tool (convert_onnx_models_to_ort, runtime optimization style: basic graph optimizations baked in, the platform-specific ones applied when the .ort is loaded, so the file stays portable to mobile builds).

    Args:
        onnx_path: the .onnx to convert.
        ort_path: where the .ort goes (written in place; the caller's folder is a private temp folder).

    Returns:
        {"optimized_onnx": ModelProto of the optimized graph the .ort holds (for operator counts),
         "optimization_style": "Runtime"}.
    """
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    onnx_path, ort_path = Path(onnx_path), Path(ort_path)
    with tempfile.TemporaryDirectory(dir=ort_path.parent, prefix=".ort-convert-") as work:
        work = Path(work)
        src = work / "model.onnx"
        shutil.copyfile(onnx_path, src)
        chatter = io.StringIO()  # the tool prints each step; keep it for the error message only
        tool_logger = logging.getLogger("ort_format_model.utils")
        level = tool_logger.level
        tool_logger.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                convert_onnx_models_to_ort(
                    src, output_dir=work / "out", optimization_styles=[OptimizationStyle.Runtime],
                    save_optimized_onnx_model=True, allow_conversion_failures=False,
                )
        except Exception as exc:  # noqa: BLE001 - the tool raises plain exceptions; say which step failed
            raise VariantError(
                f"onnxruntime could not convert {onnx_path.name} to .ort: {exc}\n{chatter.getvalue()[-2000:]}"
            ) from exc
        finally:
            tool_logger.setLevel(level)
        produced = sorted((work / "out").glob("*.ort"))
        if not produced:
            raise VariantError(f"onnxruntime's converter wrote no .ort file for {onnx_path.name}")
        optimized = sorted((work / "out").glob("*.optimized.onnx"))
        optimized_model = onnx.load(optimized[0]) if optimized else None
        os.replace(produced[0], ort_path)
    return {"optimized_onnx": optimized_model, "optimization_style": "Runtime"}
