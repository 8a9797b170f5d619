"""The fp16 variant: float16 weights and compute with float32 inputs and outputs (generator.fp16.onnx).

float16 is written here with onnx alone. Every float32 initializer, Constant and internal Cast becomes float16;
Casts at the graph's edges keep "z" and "image" float32, so callers never see the precision change (the
keep_io_types of onnxruntime's converter). Nodes of the uint8 tail (edgegan.export.onnx.TAIL_PREFIX) are left out
of the conversion and stay float32, so the pixel scaling is exact. On the CPU provider onnxruntime runs float16
nodes it has no kernel for through inserted Casts to float32: the variant halves the file and targets GPUs; it
does not make CPU inference faster.

Why not onnxruntime.transformers.float16.convert_float_to_float16(model, keep_io_types=True,
node_block_list=<tail nodes>) (onnxruntime 1.32, measured on the test suite's tiny checkpoints):
- its graph fails onnx.checker.check_model: it appends the input Casts at the end of the node list, so the graph
  is no longer topologically sorted, and our onnx_checker check (and any strict consumer) rejects the file;
- it rounds the output of every node it leaves in float32 through a float16 Cast pair, so the uint8 tail is no
  longer exact: 4-5% of pixels land one level away from this conversion's (9163 of 196608 for the 32x32 RGB DCGAN,
  2045 of 50176 for the conditional MLP, 64 images each);
- on float images (no tail) its outputs equal this conversion's (max abs difference 0; tests/export/
  test_variants.py keeps that comparison), so it offers nothing this pass does not do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgegan.export.onnx import TAIL_PREFIX, op_counts
from edgegan.export.variants.variant import Built, Sources, VariantError
from edgegan.runtime.contract import INPUT_LATENT, OUTPUT_IMAGE

_FP16_MAX = float(np.finfo(np.float16).max)  # 65504


def _to_fp16_tensor(tensor: onnx.TensorProto) -> onnx.TensorProto:
    array = numpy_helper.to_array(tensor)
    if np.isfinite(array).all() and np.abs(array).max(initial=0.0) > _FP16_MAX:
        raise VariantError(
            f"weight {tensor.name!r} holds values beyond float16's range (|x| > {_FP16_MAX:g}); export without --fp16"
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
                    raise VariantError(
                        f"Constant {node.name!r} uses {attr.name}, which this float16 pass does not convert"
                    )
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


def build(sources: Sources, path: Path) -> Built:
    """generator.onnx converted by convert_fp16 (the pipeline stamps the fp16 contract and saves it)."""
    model = convert_fp16(sources.fp32)
    return Built(model, ops=op_counts(model))
