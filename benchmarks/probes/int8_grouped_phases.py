"""Is one grouped QLinearConv faster than the int8 build's four phase convolutions (issue 20, batch 1 at 2 threads)?

At batch 1 each phase QLinearConv is one parallel section of onnxruntime's thread pool, and on a 2-core VM without
spinning threads each section pays the second thread's wake-up (benchmarks/results/int8/vnni_latency.md). This
probe rewrites a shipped `generator.int8.onnx` (the DCGAN 28x28 int8 build: four 2x2 phase Convs in QDQ form, then
the phase interleave) so the four phases are one section: the u8 map is padded once, the four shifted 8x8 windows
each phase reads are sliced and joined along channels, one Conv with group=4 (weights and per-channel scales of the
four phases stacked) computes all phases, and DepthToSpace(2, DCR) interleaves them. The rewrite is exact (the same
integer arithmetic); the probe checks the outputs agree bit for bit and times both with `edgegan bench`.

    python -m benchmarks.probes.int8_grouped_phases M/generator.int8.onnx M/generator.int8.grouped.onnx
    edgegan bench M/generator.onnx M/generator.int8.onnx M/generator.int8.grouped.onnx --batch-sizes 1,64 --threads 1,2

Verdict and figures: benchmarks/results/int8/vnni_latency.md ("grouped phases").
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import helper
from onnx import numpy_helper as nh


def group_phases(model: onnx.ModelProto) -> onnx.ModelProto:
    """The four phase Convs (DQ -> Conv -> Q) and their interleave replaced by Pad, 4 Slices, Concat, one grouped Conv
    and DepthToSpace; dead nodes and initializers dropped."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    convs = [n for n in g.node if n.op_type == "Conv" and len(consumers.get(n.input[0], [])) == 4]
    if len(convs) != 4:
        raise SystemExit("expected four phase Convs reading one map (the DCGAN 28x28 int8 build)")
    x_dq = producer[convs[0].input[0]]  # DequantizeLinear of the u8 first-layer map [B, C, 7, 7]
    pads = {n.name: list(next(a.ints for a in n.attribute if a.name == "pads")) for n in convs}
    # phase (a, b) pads its top (a = 0) or bottom row, its left (b = 0) or right column: order (0,0), (0,1), (1,0), (1,1)
    convs.sort(key=lambda n: (pads[n.name][0] == 0, pads[n.name][1] == 0))
    out_q = consumers[convs[0].output[0]][0]  # QuantizeLinear of phase (0, 0): the interleave's scale and zero point
    image_layer = next(n for n in g.node if n.op_type == "ConvTranspose")  # float, reads the interleaved map
    image_dq = producer[image_layer.input[0]]
    arrays = {name: nh.to_array(t) for name, t in inits.items()}

    def stacked(position: int, operand: int) -> np.ndarray:
        """The four phases' quantized weight (position 1) or bias (2) operand `operand` of its DequantizeLinear,
        stacked along output channels in phase order."""
        return np.concatenate([arrays[producer[conv.input[position]].input[operand]] for conv in convs])

    p = "grouped_"
    new = {
        p + "w": stacked(1, 0),
        p + "w_scale": stacked(1, 1),
        p + "w_zero": stacked(1, 2),
        p + "b": stacked(2, 0),
        p + "b_scale": stacked(2, 1),
        p + "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
        p + "pad_value": arrays[x_dq.input[2]],
        p + "axes": np.array([2, 3], np.int64),
    }
    new[p + "b_zero"] = np.zeros_like(new[p + "b"])
    nodes = [helper.make_node("Pad", [x_dq.input[0], p + "pads", p + "pad_value"], [p + "padded"])]
    windows = []
    for k, conv in enumerate(convs):  # a phase with pads (t, l, ...) reads rows 1-t.., columns 1-l.. of the padded map
        top, left = pads[conv.name][:2]
        new[p + f"start{k}"] = np.array([1 - top, 1 - left], np.int64)
        new[p + f"end{k}"] = np.array([9 - top, 9 - left], np.int64)
        nodes.append(
            helper.make_node("Slice", [p + "padded", p + f"start{k}", p + f"end{k}", p + "axes"], [p + f"win{k}"])
        )
        windows.append(p + f"win{k}")
    nodes += [
        helper.make_node("Concat", windows, [p + "windows"], axis=1),  # u8 [B, 4C, 8, 8]
        helper.make_node("DequantizeLinear", [p + "windows", *x_dq.input[1:]], [p + "x"]),
        helper.make_node("DequantizeLinear", [p + "w", p + "w_scale", p + "w_zero"], [p + "wf"], axis=0),
        helper.make_node("DequantizeLinear", [p + "b", p + "b_scale", p + "b_zero"], [p + "bf"], axis=0),
        helper.make_node(
            "Conv", [p + "x", p + "wf", p + "bf"], [p + "y"], group=4, kernel_shape=[2, 2]
        ),  # [B, 4C', 7, 7]
        helper.make_node("QuantizeLinear", [p + "y", *out_q.input[1:]], [p + "yq"]),
        helper.make_node("DepthToSpace", [p + "yq"], [image_dq.input[0]], blocksize=2, mode="DCR"),  # [B, C', 14, 14]
    ]
    kept = [n for n in g.node if n is not producer.get(image_dq.input[0])]
    index = next(i for i, n in enumerate(kept) if n is image_dq)
    kept[index:index] = nodes
    for name, value in new.items():
        g.initializer.append(nh.from_array(np.asarray(value), name))
    needed = {o.name for o in g.output}
    alive = []
    for n in reversed(kept):
        if any(o in needed for o in n.output):
            alive.append(n)
            needed |= set(n.input)
    del g.node[:]
    g.node.extend(reversed(alive))
    used = {i for n in g.node for i in n.input}
    live_inits = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(live_inits)
    onnx.checker.check_model(model)
    return model


def main(argv: list[str] | None = None) -> None:
    import onnxruntime as ort

    source, target = (argv if argv is not None else sys.argv[1:])[:2]
    onnx.save(group_phases(onnx.load(source)), target)
    z = np.random.default_rng(0).standard_normal((17, 100)).astype(np.float32)
    a, b = (
        ort.InferenceSession(f, providers=["CPUExecutionProvider"]).run(None, {"z": z})[0] for f in (source, target)
    )
    print(f"wrote {target}; max |difference| over 17 images: {np.abs(a - b).max():g}")


if __name__ == "__main__":
    main()
