"""Exact ONNX graph rewrites that make a DCGAN generator faster on onnxruntime's CPU provider.

All rewrites work on an `onnx.ModelProto` and keep the graph's inputs, outputs, dynamic batch axis and
metadata_props; each one computes the same function as the graph it replaces (up to float rounding, which the
tests bound at 1e-5 on [-1, 1] images). This module holds the first-layer and activation rewrites and the
public pipelines (`to_subpixel`, `optimize_fp32`); the ConvTranspose maths is in export/subpixel.py, the graph
plumbing (and why it is ours, not onnx_ir) in export/graph_edit.py.

BatchNorm is not folded here: export/onnx.py folds it once, in PyTorch (torch.nn.utils.fusion), before either
exporter runs. That fold is the one needed: the TorchScript fallback exporter keeps BatchNormalization nodes (the
dynamo exporter's optimizer folds them too), and the pipeline measures the fold against the unfolded G in
PyTorch. So no graph export hands this module has a BatchNormalization; one given anyway stays (still exact).

The first layer maps z [B, nz] viewed as [B, nz, 1, 1] through a ConvTranspose whose kernel is the output
size; it is a matrix product: Gemm(z, W.reshape(nz, Cout*k*k)) + Reshape to [B, Cout, k, k].

On onnxruntime's CPU provider the "phases" form interleaved channels-last wins (see optimize_fp32 for the
figures): the Transposes to and from NHWC fold into onnxruntime's NCHWc reorders, and the interleave then moves
whole Cout-float blocks instead of single floats as DepthToSpace does. Measured with benchmarks/probes/graph_forms.py;
results in benchmarks/results/graph_forms.md.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from edgegan.export.graph_edit import (
    ACTIVATIONS,
    EditableGraph,
    convtranspose_attrs,
    convtranspose_weights,
    copy_model,
    inferred_shapes,
)
from edgegan.export.subpixel import LAYOUTS, SUBPIXEL_FORMS, convtranspose_to_subpixel, subpixel_kernels

__all__ = [
    "IMAGE_LAYER_CHANNELS",
    "LAYOUTS",
    "SUBPIXEL_FORMS",
    "convtranspose_to_subpixel",
    "first_layer_to_gemm",
    "hoist_activations",
    "optimize_fp32",
    "subpixel_kernels",
    "to_subpixel",
]

_LAYOUT_OPS = ("Reshape", "DepthToSpace", "Slice")
# ConvTransposes with fewer output channels are image layers (1 or 3 channels): onnxruntime's NCHWc Conv pads
# output channels to its block of 16, so their sub-pixel Conv wastes most of its work; they stay ConvTranspose.
IMAGE_LAYER_CHANNELS = 8


# ------------------------------------------------------------------------------------------ first layer
def first_layer_to_gemm(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite ConvTranspose over a 1x1 input (kernel = output size, no padding) as Gemm + Reshape.

    y[b, co, h, w] = sum_ci x[b, ci] W[ci, co, h, w] + bias[co] is Gemm(x [B, Cin], W [Cin, Cout*kH*kW]) with
    the bias tiled over kH*kW. When x is itself a Reshape of a rank-2 tensor [B, Cin] (the exporter's `view`),
    the Gemm reads that tensor directly.

    Args:
        model: the model; not modified.

    Returns:
        A new model with each such ConvTranspose replaced.
    """
    model = copy_model(model)
    shapes = inferred_shapes(model)
    g = EditableGraph(model)
    for node in [n for n in g.graph.node if n.op_type == "ConvTranspose"]:
        attrs = convtranspose_attrs(node)
        wb = convtranspose_weights(g, node)
        shape = shapes.get(node.input[0])
        if attrs is None or wb is None or shape is None or len(shape) != 4 or shape[2:] != [1, 1]:
            continue
        if any(attrs["pads"]):
            continue
        w, b = wb
        cin, cout, kh, kw = w.shape
        flat = _rank2_source(g, node.input[0], shapes, cin)
        new: list[onnx.NodeProto] = []
        if flat is None:  # x [B, Cin, 1, 1] -> [B, Cin]
            flat = g.fresh("gemm_in")
            new.append(
                helper.make_node(
                    "Reshape",
                    [node.input[0], g.add_init("shape", np.array([-1, cin], np.int64))],
                    [flat],
                    name=g.fresh("gemm_in_reshape"),
                )
            )
        gemm_out = g.fresh("gemm_out")  # [B, Cout*kH*kW]
        new.append(
            helper.make_node(
                "Gemm",
                [
                    flat,
                    g.add_init("gemm_w", w.reshape(cin, cout * kh * kw)),
                    g.add_init("gemm_b", np.repeat(b, kh * kw)),
                ],
                [gemm_out],
                name=g.fresh((node.name or "convtranspose") + "_gemm"),
            )
        )
        new.append(
            helper.make_node(
                "Reshape",
                [gemm_out, g.add_init("shape", np.array([-1, cout, kh, kw], np.int64))],
                [node.output[0]],
                name=g.fresh("gemm_out_reshape"),
            )
        )
        g.replace(node, new)
    g.remove_unused()
    return model


def _rank2_source(g: EditableGraph, name: str, shapes: dict[str, list], cin: int) -> str | None:
    """The rank-2 [B, Cin] tensor that a Reshape turned into `name` ([B, Cin, 1, 1]), else None."""
    producer = g.producer(name)
    if producer is None or producer.op_type != "Reshape":
        return None
    src = shapes.get(producer.input[0])
    if src is None or len(src) != 2 or src[1] != cin:
        return None
    return producer.input[0]


def hoist_activations(model: onnx.ModelProto) -> onnx.ModelProto:
    """Move an elementwise activation ahead of the Reshape/DepthToSpace/Slice chain that alone feeds it.

    relu(reshape(x)) == reshape(relu(x)); once the activation sits right after a Conv or Gemm, onnxruntime
    fuses the two (FusedConv / FusedGemm) and saves a pass over memory.

    Args:
        model: the model; not modified.

    Returns:
        A new model with the activations moved.
    """
    model = copy_model(model)
    g = EditableGraph(model)
    changed = True
    while changed:
        changed = False
        for act in [n for n in g.graph.node if n.op_type in ACTIVATIONS]:
            layout = g.producer(act.input[0])
            if layout is None or layout.op_type not in _LAYOUT_OPS:
                continue
            if len(g.consumers(layout.output[0])) != 1 or g.is_graph_output(layout.output[0]):
                continue
            src = layout.input[0]
            if len(g.consumers(src)) != 1 or g.is_graph_output(src) or src in g.inits:
                continue
            # x -> layout -> act -> y   becomes   x -> act -> layout -> y
            moved_act = helper.make_node(act.op_type, [src], [g.fresh(act.op_type.lower() + "_early")], name=act.name)
            moved_act.attribute.extend(act.attribute)
            moved_layout = onnx.NodeProto()
            moved_layout.CopyFrom(layout)
            moved_layout.input[0] = moved_act.output[0]
            moved_layout.output[0] = act.output[0]
            g.replace(act, [])
            g.replace(layout, [moved_act, moved_layout])
            changed = True
            break
    g.remove_unused()
    return model


# ------------------------------------------------------------------------------------------- public API
def to_subpixel(
    model: onnx.ModelProto, form: str = "phases", layout: str = "nhwc", min_out_channels: int = IMAGE_LAYER_CHANNELS
) -> onnx.ModelProto:
    """The form export/int8_quantize.py quantizes: first layer as Gemm, stride-2 ConvTransposes as sub-pixel
    Convs (which the CPU provider runs as QLinearConv once quantized; it has no int8 ConvTranspose).

    The defaults are build_int8's: "phases"/"nhwc" with the image layer kept as a ConvTranspose (int8 keeps it
    in float). Measured, int8 of this form at DCGAN 28x28 (trained weights), 1 thread: batch 1 0.24 ms, batch
    64 12.1 ms, 0.30x / 0.24x the naive fp32 export and 0.10x / 0.26x torch eager, max / mean error 1.8e-2 /
    1.9e-3; docs/reference_figures.md's 3x3 form quantized: 0.44 ms / 23.0 ms (benchmarks/results/graph_forms.md).

    Args:
        model: an fp32 generator (ConvTranspose form) with BatchNorm folded, as export_generator makes it; a
            BatchNormalization left in the graph stays there (still exact, but its layer's activation is not fused).
        form: sub-pixel arrangement, see `convtranspose_to_subpixel`.
        layout: phase interleave layout, see `convtranspose_to_subpixel`.
        min_out_channels: ConvTransposes with fewer output channels keep their form (1: rewrite them all).

    Returns:
        A new, checked model with the same inputs, outputs, batch axis and metadata.
    """
    out = first_layer_to_gemm(model)
    out = convtranspose_to_subpixel(out, form, layout, min_out_channels)
    out = hoist_activations(out)
    onnx.checker.check_model(out)
    return out


def optimize_fp32(model: onnx.ModelProto) -> onnx.ModelProto:
    """The exact fp32 rewrites that measured faster on onnxruntime's CPU provider (max error vs the original
    graph ~1e-6).

    First layer as Gemm (+Relu fused), each stride-2 ConvTranspose as four 2x2 phase Convs (exactly the
    ConvTranspose's multiply-adds; onnxruntime runs them in its NCHWc layout) interleaved channels-last, the
    1-channel image layer kept as ConvTranspose. Measured against the naive export in one interleaved run
    (benchmarks/results/graph_forms.md, 12 rounds, medians, 1 intra-op thread, spreads 1-7%):

    | model, batch | naive ms | optimized ms | ratio | optimized / torch eager |
    | --- | ---: | ---: | ---: | ---: |
    | DCGAN 28x28, 1 | 0.80 | 0.54 | 0.67 | 0.21 |
    | DCGAN 28x28, 64 | 50.7 | 31.4 | 0.62 | 0.68 |
    | DCGAN 64x64, 1 | 2.61 | 2.27-2.76 | 0.87-1.06 | 0.37-0.45 |
    | DCGAN 64x64, 64 | 141 | 125 | 0.88 | 0.66 |

    At 2 threads (another process held one of the two cores in that run) the ratio was 0.48-0.72 at 28x28 and
    0.70-0.88 at 64x64. Forms that lost: one 2x2 Conv with 4*Cout outputs + crop ((H+1)^2/H^2 the work:
    0.74-0.86), NCHW DepthToSpace interleave (0.67-0.88), docs/reference_figures.md's 3x3 Conv (1.4-2.2x slower), the Gemm
    first layer alone (0.88-0.94), sub-pixel image layers (NCHWc pads 1-4 output channels to 16).

    Args:
        model: an fp32 generator as exported (ConvTranspose form).

    Returns:
        A new, checked model with the same inputs, outputs, batch axis and metadata.
    """
    return to_subpixel(model, "phases", "nhwc", min_out_channels=IMAGE_LAYER_CHANNELS)
