"""The sub-pixel rewrite: each stride-2, kernel-4, padding-1 ConvTranspose as 2x2 phase Convs + interleave.

Exact: the Convs compute the same function as the ConvTranspose (up to float rounding, which the tests bound at
1e-5 on [-1, 1] images). Written out along one axis, the ConvTranspose is

    y[2m]     = x[m-1] * w[3] + x[m]   * w[1]
    y[2m + 1] = x[m]   * w[2] + x[m+1] * w[0]

so each output phase r in {0, 1} is a 2-tap correlation with taps w[3 - r - 2t] (t = 0, 1) over the input
shifted by r. In 2D there are four phases (ry, rx), each a 2x2 Conv with Cout outputs: together exactly the
ConvTranspose's multiply-adds, where onnxruntime's ConvTranspose pays a per-image GEMM plus a col2im scatter.
Two arrangements are exact (docs/reference_figures.md's 3x3 Conv + DepthToSpace is exact too, at 2.25x the work):

- "crop": one 2x2 Conv with 4*Cout outputs and padding 1 computes every phase on an (H+1)x(W+1) grid; with the
  phase blocks ordered (1-ry, 1-rx), DepthToSpace gives a (2H+2)x(2W+2) map whose interior [1:-1, 1:-1] is
  exactly y. Work: ((H+1)/H)^2 of the ConvTranspose (1.31x at 7x7, 1.15x at 14x14), one Conv per layer, so
  int8 runs one QLinearConv per layer.
- "phases": four 2x2 Convs with asymmetric pads (top/left 1 for phase 0, bottom/right 1 for phase 1), each
  HxW x Cout: exactly 1x the work, then Concat + DepthToSpace.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import helper

from edgegan.export.graph_edit import (
    ACTIVATIONS,
    EditableGraph,
    convtranspose_attrs,
    convtranspose_weights,
    copy_model,
    default_opset,
    inferred_shapes,
)

SUBPIXEL_FORMS = ("crop", "phases", "3x3")
LAYOUTS = ("nchw", "nhwc")


def subpixel_kernels(w: np.ndarray) -> np.ndarray:
    """The four 2x2 phase kernels of a stride-2, kernel-4, padding-1 ConvTranspose.

    Args:
        w: ConvTranspose weight [Cin, Cout, 4, 4].

    Returns:
        k [2, 2, Cout, Cin, 2, 2] float32: k[ry, rx] is the Conv weight of output phase (ry, rx), whose tap
        (ty, tx) is w[:, :, 3 - ry - 2*ty, 3 - rx - 2*tx], applied to input rows m - 1 + ry + ty (cols alike).
    """
    k = np.empty((2, 2, w.shape[1], w.shape[0], 2, 2), np.float32)
    for ry, rx, ty, tx in itertools.product(range(2), repeat=4):
        k[ry, rx, :, :, ty, tx] = w[:, :, 3 - ry - 2 * ty, 3 - rx - 2 * tx].T  # [Cout, Cin]
    return k


def _static_hw(hw: tuple[int, int] | None) -> tuple[int, int]:
    """The input's static (H, W), which the "nhwc" layout's Reshapes need."""
    if hw is None:
        raise ValueError("layout 'nhwc' needs the ConvTranspose input's static height and width (hw)")
    return hw


def _subpixel_nodes(
    g: EditableGraph,
    node: onnx.NodeProto,
    w: np.ndarray,
    b: np.ndarray,
    form: str,
    act: onnx.NodeProto | None,
    layout: str,
    hw: tuple[int, int] | None,
) -> list[onnx.NodeProto]:
    """Nodes computing `node` (a stride-2 k4 p1 ConvTranspose over x [B, Cin, H, W]) in a sub-pixel form.

    `act`, when given, is an elementwise activation that consumed the ConvTranspose alone: it is applied right
    after the Conv(s), before the data movement, so onnxruntime fuses it into the Conv, and the last node writes
    the activation's output name. `layout` "nhwc" interleaves the phases channels-last (blocks of Cout floats
    move at once; onnxruntime folds the Transposes into its NCHWc reorders) and needs the static `hw`;
    "nchw" uses DepthToSpace.
    """
    cout = w.shape[1]
    k = subpixel_kernels(w)  # [2, 2, Cout, Cin, 2, 2]
    x = node.input[0]
    out = act.output[0] if act is not None else node.output[0]
    stem = node.name or "convtranspose"
    nodes: list[onnx.NodeProto] = []

    def add(op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        output = output or g.fresh(f"{stem}_{op.lower()}")
        nodes.append(helper.make_node(op, inputs, [output], name=g.fresh(f"{stem}_{op.lower()}_node"), **attrs))
        return output

    def ints(*values: int) -> str:
        return g.add_init(stem + "_i64", np.array(values, np.int64))

    def conv(weight: np.ndarray, bias: np.ndarray, kernel: int, pads: list[int]) -> str:
        y = add(
            "Conv",
            [x, g.add_init(stem + "_w", weight), g.add_init(stem + "_b", bias)],
            kernel_shape=[kernel, kernel],
            pads=pads,
            strides=[1, 1],
        )
        if act is None:
            return y
        node_act = helper.make_node(act.op_type, [y], [g.fresh(stem + "_act")], name=g.fresh(stem + "_act_node"))
        node_act.attribute.extend(act.attribute)
        nodes.append(node_act)
        return node_act.output[0]

    def to_nhwc(src: str) -> str:
        return add("Transpose", [src], perm=[0, 2, 3, 1])

    if form == "crop":
        # Block (by, bx) holds phase (1 - by, 1 - bx); the conv output [B, 4*Cout, H+1, W+1] is computed over x
        # padded by 1. Interleaved, it is a (2H+2)x(2W+2) map whose interior [1:-1, 1:-1] is y.
        blocks = np.concatenate([k[1 - by, 1 - bx] for by in range(2) for bx in range(2)])  # [4*Cout, Cin, 2, 2]
        wide = conv(blocks, np.tile(b, 4), 2, [1, 1, 1, 1])
        if layout == "nhwc":
            height, width = _static_hw(hw)
            h1, w1 = height + 1, width + 1
            t = add("Reshape", [to_nhwc(wide), ints(0, h1, w1, 2, 2, cout)])  # [B, H+1, W+1, by, bx, Cout]
            t = add("Transpose", [t], perm=[0, 1, 3, 2, 4, 5])  # [B, H+1, by, W+1, bx, Cout]
            t = add("Reshape", [t, ints(0, 2 * h1, 2 * w1, cout)])  # [B, 2H+2, 2W+2, Cout]
            t = add("Slice", [t, ints(1, 1), ints(-1, -1), ints(1, 2)])  # [B, 2H, 2W, Cout]
            add("Transpose", [t], out, perm=[0, 3, 1, 2])
        else:
            # DepthToSpace DCR: channel (by*2 + bx)*Cout + c goes to pixel (2a + by, 2b + bx) of channel c.
            full = add("DepthToSpace", [wide], blocksize=2, mode="DCR")  # [B, Cout, 2H+2, 2W+2]
            add("Slice", [full, ints(1, 1), ints(-1, -1), ints(2, 3)], out)
    elif form == "phases":
        parts = {}
        for ry, rx in itertools.product(range(2), repeat=2):
            # Phase 0 reads rows m-1, m (pad before); phase 1 reads rows m, m+1 (pad after). [B, Cout, H, W]
            parts[ry, rx] = conv(k[ry, rx], b, 2, [1 - ry, 1 - rx, ry, rx])
        if layout == "nhwc":
            height, width = _static_hw(hw)
            # [B, H, 1, W, 1, Cout] each; concat over rx (axis 4) then ry (axis 2): [B, H, 2, W, 2, Cout]
            cells = {key: add("Unsqueeze", [to_nhwc(p), ints(2, 4)]) for key, p in parts.items()}
            rows = [add("Concat", [cells[ry, 0], cells[ry, 1]], axis=4) for ry in range(2)]
            t = add("Concat", rows, axis=2)
            t = add("Reshape", [t, ints(0, 2 * height, 2 * width, cout)])  # [B, 2H, 2W, Cout]
            add("Transpose", [t], out, perm=[0, 3, 1, 2])
        else:
            stacked = add("Concat", [parts[ry, rx] for ry, rx in itertools.product(range(2), repeat=2)], axis=1)
            add("DepthToSpace", [stacked], out, blocksize=2, mode="DCR")  # block (ry, rx) -> pixel phase (ry, rx)
    elif form == "3x3":
        # One 3x3 Conv (padding 1) over x: phase (ry, rx) uses taps (ry + ty, rx + tx) of the 3x3 window.
        big = np.zeros((4 * cout, w.shape[0], 3, 3), np.float32)
        for ry, rx in itertools.product(range(2), repeat=2):
            block = (ry * 2 + rx) * cout
            big[block : block + cout, :, ry : ry + 2, rx : rx + 2] = k[ry, rx]
        add("DepthToSpace", [conv(big, np.tile(b, 4), 3, [1, 1, 1, 1])], out, blocksize=2, mode="DCR")
    else:
        raise ValueError(f"unknown sub-pixel form {form!r}; choose one of {SUBPIXEL_FORMS}")
    return nodes


def convtranspose_to_subpixel(
    model: onnx.ModelProto, form: str = "crop", layout: str = "nchw", min_out_channels: int = 1
) -> onnx.ModelProto:
    """Rewrite each stride-2, kernel-4, padding-1 ConvTranspose as sub-pixel Conv(s) + interleave.

    Args:
        model: the model; not modified.
        form: "crop" (one Conv, 4*Cout outputs), "phases" (four Convs + Concat) or "3x3" (docs/reference_figures.md's form).
        layout: "nchw" (DepthToSpace) or "nhwc" (channels-last Transpose/Concat; "3x3" always uses nchw).
        min_out_channels: leave ConvTransposes with fewer output channels alone (the image layer: onnxruntime's
            NCHWc Conv pads output channels to 16, so a 1- or 3-channel sub-pixel Conv wastes most of its work).

    Returns:
        A new model; an elementwise activation that alone consumed a rewritten layer is applied right after its
        Conv(s), where onnxruntime fuses it.
    """
    if form not in SUBPIXEL_FORMS:
        raise ValueError(f"unknown sub-pixel form {form!r}; choose one of {SUBPIXEL_FORMS}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
    opset = default_opset(model)
    if opset < 11:  # DepthToSpace's mode and Slice's tensor inputs need opset 11 / 10
        return copy_model(model)
    if opset < 13:  # Unsqueeze takes its axes as an input from opset 13
        layout = "nchw"
    model = copy_model(model)
    shapes = inferred_shapes(model) if layout == "nhwc" else {}
    g = EditableGraph(model)
    for node in [n for n in g.graph.node if n.op_type == "ConvTranspose"]:
        attrs = convtranspose_attrs(node)
        wb = convtranspose_weights(g, node)
        if attrs is None or wb is None or wb[0].shape[1] < min_out_channels:
            continue
        if attrs["kernel"] != [4, 4] or attrs["strides"] != [2, 2] or attrs["pads"] != [1, 1, 1, 1]:
            continue
        shape = shapes.get(node.input[0]) or []
        hw = (shape[2], shape[3]) if len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape[2:]) else None
        node_layout = layout if (hw is not None and form != "3x3") else "nchw"
        consumers = g.consumers(node.output[0])
        act = None
        if len(consumers) == 1 and consumers[0].op_type in ACTIVATIONS and not g.is_graph_output(node.output[0]):
            act = consumers[0]
        new = _subpixel_nodes(g, node, *wb, form, act, node_layout, hw)
        if act is not None:
            g.replace(act, [])  # first: the new nodes take over its output name
        g.replace(node, new)
    g.remove_unused()
    return model
