"""Plumbing for the ONNX rewrites of export/graph_forms.py and export/subpixel.py: a mutable view of a
GraphProto (constants, producers, consumers, fresh names, node replacement, dead-node removal) and the
ConvTranspose facts both rewrites read (attributes with defaults, constant weights).

Why our own ~60-line view and not onnx_ir (measured with an onnx_ir 1.1.0 port of every rewrite, compared node
for node with this code on the tiny generators of tests/export/conftest.py, every form and layout): the port
computes the same graphs and its code is ~65 of ~295 lines shorter (this class becomes ~22 lines of naming and a
deserialize/serialize round trip), but the files differ. The round trip alone re-sorts metadata_props by key and
keeps the value_info of initializers (15-18 entries more on the conftest exports); new values come out named
val_N, so it still needs our stem_N allocator to keep today's names; and onnx_ir is no dependency pyproject
declares (it arrives through recent onnxscript). Ours writes the graphs we shipped, byte for byte.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

# Elementwise activations that commute with pure data movement (Reshape, DepthToSpace, Slice, Concat), so they
# can move ahead of it and fuse into the Conv/Gemm that produces the data (onnxruntime's FusedConv/FusedGemm).
ACTIVATIONS = ("Relu", "Tanh", "Sigmoid", "LeakyRelu")


class EditableGraph:
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
        nodes[index : index + 1] = new
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


def node_attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def convtranspose_attrs(node: onnx.NodeProto, rank: int = 2) -> dict | None:
    """ConvTranspose attributes with defaults filled in, or None when a form we do not rewrite is used."""
    a = node_attrs(node)
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


def convtranspose_weights(g: EditableGraph, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
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


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def inferred_shapes(model: onnx.ModelProto) -> dict[str, list]:
    """Tensor name -> list of dims (int or dim_param str or None) from onnx shape inference."""
    inferred = shape_inference.infer_shapes(model)
    shapes: dict[str, list] = {}
    graph = inferred.graph
    for info in itertools.chain(graph.input, graph.value_info, graph.output):
        t = info.type.tensor_type
        if not t.HasField("shape"):
            continue
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes
