"""Exact ONNX graph rewrites that make a DCGAN generator faster on onnxruntime's CPU provider.

All rewrites work on an `onnx.ModelProto` and keep the graph's inputs, outputs, dynamic batch axis and
metadata_props; each one computes the same function as the graph it replaces (up to float rounding, which the
tests bound at 1e-5 on [-1, 1] images).

The DCGAN upsampling layer is ConvTranspose(kernel 4, stride 2, padding 1). Written out along one axis,

    y[2m]     = x[m-1] * w[3] + x[m]   * w[1]
    y[2m + 1] = x[m]   * w[2] + x[m+1] * w[0]

so each output phase r in {0, 1} is a 2-tap correlation with taps w[3 - r - 2t] (t = 0, 1) over the input
shifted by r. In 2D there are four phases (ry, rx), each a 2x2 Conv with Cout outputs: together exactly the
ConvTranspose's multiply-adds, where onnxruntime's ConvTranspose pays a per-image GEMM plus a col2im scatter.
Two arrangements are exact (REFERENCE.md's 3x3 Conv + DepthToSpace is exact too, at 2.25x the work):

- "crop": one 2x2 Conv with 4*Cout outputs and padding 1 computes every phase on an (H+1)x(W+1) grid; with the
  phase blocks ordered (1-ry, 1-rx), DepthToSpace gives a (2H+2)x(2W+2) map whose interior [1:-1, 1:-1] is
  exactly y. Work: ((H+1)/H)^2 of the ConvTranspose (1.31x at 7x7, 1.15x at 14x14), one Conv per layer, so
  int8 runs one QLinearConv per layer.
- "phases": four 2x2 Convs with asymmetric pads (top/left 1 for phase 0, bottom/right 1 for phase 1), each
  HxW x Cout: exactly 1x the work, then Concat + DepthToSpace.

The first layer maps z [B, nz] viewed as [B, nz, 1, 1] through a ConvTranspose whose kernel is the output
size; it is a matrix product: Gemm(z, W.reshape(nz, Cout*k*k)) + Reshape to [B, Cout, k, k].

On onnxruntime's CPU provider the "phases" form interleaved channels-last wins (see optimize_fp32 for the
figures): the Transposes to and from NHWC fold into onnxruntime's NCHWc reorders, and the interleave then moves
whole Cout-float blocks instead of single floats as DepthToSpace does. Measured with benchmarks/graph_forms.py;
results in benchmarks/results/graph_forms.md.
"""
from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

# Elementwise activations that commute with pure data movement (Reshape, DepthToSpace, Slice, Concat), so they
# can move ahead of it and fuse into the Conv/Gemm that produces the data (onnxruntime's FusedConv/FusedGemm).
_ACTIVATIONS = ("Relu", "Tanh", "Sigmoid", "LeakyRelu")
_LAYOUT_OPS = ("Reshape", "DepthToSpace", "Slice")
SUBPIXEL_FORMS = ("crop", "phases", "3x3")
LAYOUTS = ("nchw", "nhwc")
# ConvTransposes with fewer output channels are image layers (1 or 3 channels): onnxruntime's NCHWc Conv pads
# output channels to its block of 16, so their sub-pixel Conv wastes most of its work; they stay ConvTranspose.
IMAGE_LAYER_CHANNELS = 8


class _Graph:
    """Small mutable view of a GraphProto: constants by name, producers and consumers of each tensor."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.graph = model.graph
        self.inits = {t.name: t for t in self.graph.initializer}
        self._names = itertools.count()

    def const(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant node output, else None."""
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producer(name)
        if node is not None and node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def producer(self, name: str) -> onnx.NodeProto | None:
        for node in self.graph.node:
            if name in node.output:
                return node
        return None

    def consumers(self, name: str) -> list[onnx.NodeProto]:
        return [node for node in self.graph.node if name in node.input]

    def is_graph_output(self, name: str) -> bool:
        return any(o.name == name for o in self.graph.output)

    def fresh(self, stem: str) -> str:
        """A tensor/node name not used yet (stem + counter)."""
        taken = {t.name for t in self.graph.initializer} | {o for n in self.graph.node for o in n.output}
        while True:
            name = f"{stem}_{next(self._names)}"
            if name not in taken:
                return name

    def add_init(self, stem: str, value: np.ndarray) -> str:
        name = self.fresh(stem)
        tensor = numpy_helper.from_array(np.ascontiguousarray(value), name)
        self.graph.initializer.append(tensor)
        self.inits[name] = tensor
        return name

    def replace(self, old: onnx.NodeProto, new: list[onnx.NodeProto]) -> None:
        """Put `new` where `old` was, keeping the node list topologically sorted."""
        # Protobuf hands out fresh wrappers, so nodes are matched by their outputs (unique in a valid graph).
        nodes = list(self.graph.node)
        index = next(i for i, n in enumerate(nodes) if list(n.output) == list(old.output))
        nodes[index:index + 1] = new
        del self.graph.node[:]
        self.graph.node.extend(nodes)

    def remove_unused(self) -> None:
        """Drop nodes, initializers and value_info entries nothing uses any more."""
        outputs = {o.name for o in self.graph.output}
        while True:  # dead nodes, e.g. the exporter's Reshape to [B, nz, 1, 1] once the Gemm reads z directly
            used = {i for n in self.graph.node for i in n.input} | outputs
            dead = [n for n in self.graph.node if not any(o in used for o in n.output if o)]
            if not dead:
                break
            for node in dead:
                self.replace(node, [])
        produced = {o for n in self.graph.node for o in n.output}
        keep = [t for t in self.graph.initializer if t.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(keep)
        self.inits = {t.name: t for t in keep}
        infos = [v for v in self.graph.value_info if v.name in produced]
        del self.graph.value_info[:]
        self.graph.value_info.extend(infos)


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _plain_attrs(node: onnx.NodeProto, rank: int = 2) -> dict | None:
    """ConvTranspose attributes with defaults filled in, or None when a form we do not rewrite is used."""
    a = _attrs(node)
    auto_pad = a.get("auto_pad", b"NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    if auto_pad != "NOTSET" or "output_shape" in a or a.get("group", 1) != 1:
        return None
    if list(a.get("dilations", [1] * rank)) != [1] * rank:
        return None
    if list(a.get("output_padding", [0] * rank)) != [0] * rank:
        return None
    return {
        "kernel": list(a.get("kernel_shape", [])),
        "strides": list(a.get("strides", [1] * rank)),
        "pads": list(a.get("pads", [0] * 2 * rank)),
    }


def _weights(g: _Graph, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
    """(W [Cin, Cout, kH, kW], bias [Cout]) of a ConvTranspose with constant weights, else None."""
    w = g.const(node.input[1])
    if w is None or w.ndim != 4 or w.dtype != np.float32:
        return None
    if len(node.input) > 2 and node.input[2]:
        b = g.const(node.input[2])
        if b is None:
            return None
    else:
        b = np.zeros(w.shape[1], np.float32)
    return w, b.astype(np.float32)


# --------------------------------------------------------------------------------------------- BatchNorm
def fold_batchnorm(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold an inference BatchNormalization into the ConvTranspose that alone feeds it.

    PyTorch's dynamo exporter already does this; the TorchScript exporter leaves BN nodes. Exact up to float
    rounding: W'[:, co] = W[:, co] * s[co], b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps).

    Args:
        model: the model; not modified.

    Returns:
        A new model without those BatchNormalization nodes.
    """
    model = _copy(model)
    g = _Graph(model)
    for bn in [n for n in g.graph.node if n.op_type == "BatchNormalization"]:
        if len(bn.output) != 1 or len([o for o in bn.output if o]) != 1:
            continue  # training-mode BN outputs running stats: not inference
        conv = g.producer(bn.input[0])
        if conv is None or conv.op_type != "ConvTranspose" or len(g.consumers(conv.output[0])) != 1:
            continue
        if g.is_graph_output(conv.output[0]):
            continue
        wb = _weights(g, conv)
        params = [g.const(name) for name in bn.input[1:5]]
        if wb is None or any(p is None for p in params) or _attrs(conv).get("group", 1) != 1:
            continue
        w, b = wb
        gamma, beta, mean, var = (p.astype(np.float64) for p in params)
        eps = float(_attrs(bn).get("epsilon", 1e-5))
        scale = gamma / np.sqrt(var + eps)  # [Cout]
        w2 = (w.astype(np.float64) * scale[None, :, None, None]).astype(np.float32)
        b2 = ((b.astype(np.float64) - mean) * scale + beta).astype(np.float32)
        folded = helper.make_node(
            "ConvTranspose", [conv.input[0], g.add_init("bnfold_w", w2), g.add_init("bnfold_b", b2)],
            [bn.output[0]], name=g.fresh((conv.name or "convtranspose") + "_bnfold"))
        folded.attribute.extend(conv.attribute)
        g.replace(bn, [])  # first: the folded node takes over its output name
        g.replace(conv, [folded])
    g.remove_unused()
    return model


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
    model = _copy(model)
    shapes = _shapes(model)
    g = _Graph(model)
    for node in [n for n in g.graph.node if n.op_type == "ConvTranspose"]:
        attrs = _plain_attrs(node)
        wb = _weights(g, node)
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
            new.append(helper.make_node(
                "Reshape", [node.input[0], g.add_init("shape", np.array([-1, cin], np.int64))], [flat],
                name=g.fresh("gemm_in_reshape")))
        gemm_out = g.fresh("gemm_out")  # [B, Cout*kH*kW]
        new.append(helper.make_node(
            "Gemm", [flat, g.add_init("gemm_w", w.reshape(cin, cout * kh * kw)),
                     g.add_init("gemm_b", np.repeat(b, kh * kw))],
            [gemm_out], name=g.fresh((node.name or "convtranspose") + "_gemm")))
        new.append(helper.make_node(
            "Reshape", [gemm_out, g.add_init("shape", np.array([-1, cout, kh, kw], np.int64))],
            [node.output[0]], name=g.fresh("gemm_out_reshape")))
        g.replace(node, new)
    g.remove_unused()
    return model


def _rank2_source(g: _Graph, name: str, shapes: dict[str, list], cin: int) -> str | None:
    """The rank-2 [B, Cin] tensor that a Reshape turned into `name` ([B, Cin, 1, 1]), else None."""
    producer = g.producer(name)
    if producer is None or producer.op_type != "Reshape":
        return None
    src = shapes.get(producer.input[0])
    if src is None or len(src) != 2 or src[1] != cin:
        return None
    return producer.input[0]


# -------------------------------------------------------------------------------------------- sub-pixel
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


def _subpixel_nodes(g: _Graph, node: onnx.NodeProto, w: np.ndarray, b: np.ndarray, form: str,
                    act: onnx.NodeProto | None, layout: str, hw: tuple[int, int] | None) -> list[onnx.NodeProto]:
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
        y = add("Conv", [x, g.add_init(stem + "_w", weight), g.add_init(stem + "_b", bias)],
                kernel_shape=[kernel, kernel], pads=pads, strides=[1, 1])
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
            h1, w1 = hw[0] + 1, hw[1] + 1
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
            # [B, H, 1, W, 1, Cout] each; concat over rx (axis 4) then ry (axis 2): [B, H, 2, W, 2, Cout]
            cells = {key: add("Unsqueeze", [to_nhwc(p), ints(2, 4)]) for key, p in parts.items()}
            rows = [add("Concat", [cells[ry, 0], cells[ry, 1]], axis=4) for ry in range(2)]
            t = add("Concat", rows, axis=2)
            t = add("Reshape", [t, ints(0, 2 * hw[0], 2 * hw[1], cout)])  # [B, 2H, 2W, Cout]
            add("Transpose", [t], out, perm=[0, 3, 1, 2])
        else:
            stacked = add("Concat", [parts[key] for key in itertools.product(range(2), repeat=2)], axis=1)
            add("DepthToSpace", [stacked], out, blocksize=2, mode="DCR")  # block (ry, rx) -> pixel phase (ry, rx)
    elif form == "3x3":
        # One 3x3 Conv (padding 1) over x: phase (ry, rx) uses taps (ry + ty, rx + tx) of the 3x3 window.
        big = np.zeros((4 * cout, w.shape[0], 3, 3), np.float32)
        for ry, rx in itertools.product(range(2), repeat=2):
            block = (ry * 2 + rx) * cout
            big[block:block + cout, :, ry:ry + 2, rx:rx + 2] = k[ry, rx]
        add("DepthToSpace", [conv(big, np.tile(b, 4), 3, [1, 1, 1, 1])], out, blocksize=2, mode="DCR")
    else:
        raise ValueError(f"unknown sub-pixel form {form!r}; choose one of {SUBPIXEL_FORMS}")
    return nodes


def convtranspose_to_subpixel(model: onnx.ModelProto, form: str = "crop", layout: str = "nchw",
                              min_out_channels: int = 1) -> onnx.ModelProto:
    """Rewrite each stride-2, kernel-4, padding-1 ConvTranspose as sub-pixel Conv(s) + interleave.

    Args:
        model: the model; not modified.
        form: "crop" (one Conv, 4*Cout outputs), "phases" (four Convs + Concat) or "3x3" (REFERENCE.md's form).
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
    opset = _opset(model)
    if opset < 11:  # DepthToSpace's mode and Slice's tensor inputs need opset 11 / 10
        return _copy(model)
    if opset < 13:  # Unsqueeze takes its axes as an input from opset 13
        layout = "nchw"
    model = _copy(model)
    shapes = _shapes(model) if layout == "nhwc" else {}
    g = _Graph(model)
    for node in [n for n in g.graph.node if n.op_type == "ConvTranspose"]:
        attrs = _plain_attrs(node)
        wb = _weights(g, node)
        if attrs is None or wb is None or wb[0].shape[1] < min_out_channels:
            continue
        if attrs["kernel"] != [4, 4] or attrs["strides"] != [2, 2] or attrs["pads"] != [1, 1, 1, 1]:
            continue
        shape = shapes.get(node.input[0]) or []
        hw = tuple(shape[2:]) if len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape[2:]) else None
        node_layout = layout if (hw is not None and form != "3x3") else "nchw"
        consumers = g.consumers(node.output[0])
        act = None
        if (len(consumers) == 1 and consumers[0].op_type in _ACTIVATIONS and
                not g.is_graph_output(node.output[0])):
            act = consumers[0]
        new = _subpixel_nodes(g, node, *wb, form, act, node_layout, hw)
        if act is not None:
            g.replace(act, [])  # first: the new nodes take over its output name
        g.replace(node, new)
    g.remove_unused()
    return model


def hoist_activations(model: onnx.ModelProto) -> onnx.ModelProto:
    """Move an elementwise activation ahead of the Reshape/DepthToSpace/Slice chain that alone feeds it.

    relu(reshape(x)) == reshape(relu(x)); once the activation sits right after a Conv or Gemm, onnxruntime
    fuses the two (FusedConv / FusedGemm) and saves a pass over memory.

    Args:
        model: the model; not modified.

    Returns:
        A new model with the activations moved.
    """
    model = _copy(model)
    g = _Graph(model)
    changed = True
    while changed:
        changed = False
        for act in [n for n in g.graph.node if n.op_type in _ACTIVATIONS]:
            layout = g.producer(act.input[0])
            if layout is None or layout.op_type not in _LAYOUT_OPS:
                continue
            if len(g.consumers(layout.output[0])) != 1 or g.is_graph_output(layout.output[0]):
                continue
            src = layout.input[0]
            if len(g.consumers(src)) != 1 or g.is_graph_output(src) or src in g.inits:
                continue
            # x -> layout -> act -> y   becomes   x -> act -> layout -> y
            moved_act = helper.make_node(act.op_type, [src], [g.fresh(act.op_type.lower() + "_early")],
                                         name=act.name)
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
def to_subpixel(model: onnx.ModelProto, form: str = "phases", layout: str = "nhwc",
                min_out_channels: int = IMAGE_LAYER_CHANNELS) -> onnx.ModelProto:
    """The form export/int8.py quantizes: BN folded, first layer as Gemm, stride-2 ConvTransposes as sub-pixel
    Convs (which the CPU provider runs as QLinearConv once quantized; it has no int8 ConvTranspose).

    The defaults are build_int8's: "phases"/"nhwc" with the image layer kept as a ConvTranspose (int8 keeps it
    in float). Measured, int8 of this form at DCGAN 28x28 (trained weights), 1 thread: batch 1 0.24 ms, batch
    64 12.1 ms, 0.30x / 0.24x the naive fp32 export and 0.10x / 0.26x torch eager, max / mean error 1.8e-2 /
    1.9e-3; REFERENCE.md's 3x3 form quantized: 0.44 ms / 23.0 ms (benchmarks/results/graph_forms.md).

    Args:
        model: an fp32 generator (ConvTranspose form).
        form: sub-pixel arrangement, see `convtranspose_to_subpixel`.
        layout: phase interleave layout, see `convtranspose_to_subpixel`.
        min_out_channels: ConvTransposes with fewer output channels keep their form (1: rewrite them all).

    Returns:
        A new, checked model with the same inputs, outputs, batch axis and metadata.
    """
    out = fold_batchnorm(model)
    out = first_layer_to_gemm(out)
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
    0.74-0.86), NCHW DepthToSpace interleave (0.67-0.88), REFERENCE.md's 3x3 Conv (1.4-2.2x slower), the Gemm
    first layer alone (0.88-0.94), sub-pixel image layers (NCHWc pads 1-4 output channels to 16).

    Args:
        model: an fp32 generator as exported (ConvTranspose form).

    Returns:
        A new, checked model with the same inputs, outputs, batch axis and metadata.
    """
    return to_subpixel(model, "phases", "nhwc", min_out_channels=IMAGE_LAYER_CHANNELS)


# ------------------------------------------------------------------------------------------------ helpers
def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _shapes(model: onnx.ModelProto) -> dict[str, list]:
    """Tensor name -> list of dims (int or dim_param str or None) from onnx shape inference."""
    inferred = shape_inference.infer_shapes(model)
    shapes: dict[str, list] = {}
    graph = inferred.graph
    for info in itertools.chain(graph.input, graph.value_info, graph.output):
        t = info.type.tensor_type
        if not t.HasField("shape"):
            continue
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                             for d in t.shape.dim]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes
