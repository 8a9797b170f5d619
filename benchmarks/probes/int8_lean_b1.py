"""How few parallel sections can the int8 DCGAN 28x28 run in at batch 1 (issue 20, batch 1 at 2 threads)?

On a 2-core VM without spinning threads every parallel section of onnxruntime's pool pays the second thread's
wake-up, longer than an integer kernel's share of the work at batch 1 (benchmarks/results/int8/vnni_latency.md).
The shipped int8 build runs nine: two first-layer MatMulIntegers, the Transpose onnxruntime inserts before its NHWC
QLinearConv, four phase QLinearConvs, the interleave's Transpose and the float image layer. This probe takes the
"crop" build (`build_int8(..., form="crop")`: the four phases as one QLinearConv over the padded map, 1.31x their
multiply-adds at 7x7) and removes two more, exactly:

- stack: the first layer's two passes (z's 7-bit grid and its rounding residual, export/int8_gemm.py) as one
  MatMulInteger over both stacked along the batch: Concat, MatMulInteger, Cast, Reshape [2, B, N], Mul by the two
  passes' per-column scales, ReduceSum over the passes;
- nhwc: the first layer's output columns permuted from (c, h, w) to (h, w, c) order, reshaped to NHWC and transposed
  to NCHW, so the Transpose onnxruntime inserts before its channels-last QLinearConv cancels against it.

    python -m benchmarks.probes.int8_lean_b1 M/generator.int8.crop.onnx M/generator.int8.lean.onnx
    edgegan bench M/generator.onnx M/generator.int8.onnx M/generator.int8.lean.onnx --batch-sizes 1,64 --threads 1,2

Verdict and figures: benchmarks/results/int8/vnni_latency.md ("Fourth session").
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx import numpy_helper as nh


def _rewrite(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    nodes = {n.name: n for n in g.node}
    matmul0 = next((n for n in g.node if n.op_type == "MatMulInteger" and n.name.endswith("_int_matmul0")), None)
    if matmul0 is None or matmul0.name[: -len("matmul0")] + "matmul1" not in nodes:
        raise SystemExit("expected the two-pass integer first layer of export/int8_gemm.py")
    p = matmul0.name[: -len("_matmul0")]  # the prefix integer_gemm gave the layer's nodes

    def array(name: str) -> np.ndarray:
        return nh.to_array(inits[name])

    def put(name: str, value: np.ndarray) -> str:
        if name in inits:
            g.initializer.remove(inits[name])
        inits[name] = nh.from_array(np.asarray(value), name)
        g.initializer.append(inits[name])
        return name

    # nhwc: the Reshape [-1, C, H, W] reading the first layer's (ReLU'd) output decides the permutation.
    bias_out = nodes[p + "_bias"].output[0]
    reshape = next(
        n
        for n in g.node
        if n.op_type == "Reshape"
        and n.input[1] in inits
        and len(array(n.input[1])) == 4
        and any(m.output[0] == n.input[0] and bias_out in m.input for m in g.node)
    )
    _, c, h, w = (int(v) for v in array(reshape.input[1]))
    order = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)  # new column j <- old order[j]
    for suffix, axis in (("_w", 1), ("_scale0", 0), ("_scale1", 0), ("_b", 0)):
        put(p + suffix, np.take(array(p + suffix), order, axis=axis))
    nchw = reshape.output[0]
    reshape.input[1] = put(p + "_nhwc_shape", np.array([-1, h, w, c], np.int64))
    reshape.output[0] = p + "_nhwc"
    at = list(g.node).index(reshape) + 1
    g.node.insert(at, helper.make_node("Transpose", [p + "_nhwc"], [nchw], perm=[0, 3, 1, 2], name=p + "_to_nchw"))

    # stack: one MatMulInteger over [q0; q1] [2B, K]; its [2B, N] int32 rows scaled per pass and summed.
    n = array(p + "_b").shape[0]
    scales = np.stack([array(p + "_scale0"), array(p + "_scale1")]).reshape(2, 1, n).astype(np.float32)
    for suffix in ("_matmul0", "_matmul1", "_cast0", "_cast1", "_scale0", "_scale1", "_sum"):
        g.node.remove(nodes[p + suffix])
    stacked = [
        helper.make_node("Concat", [p + "_q0", p + "_q1"], [p + "_qs"], axis=0, name=p + "_stack"),
        helper.make_node("MatMulInteger", [p + "_qs", p + "_w", p + "_zp", p + "_w_zp"], [p + "_acc"], name=p + "_mm"),
        helper.make_node("Cast", [p + "_acc"], [p + "_accf"], to=TensorProto.FLOAT, name=p + "_cast"),
        helper.make_node("Reshape", [p + "_accf", put(p + "_passes", np.array([2, -1, n], np.int64))], [p + "_acc3"]),
        helper.make_node("Mul", [p + "_acc3", put(p + "_scales", scales)], [p + "_y3"], name=p + "_scale"),
        helper.make_node(
            "ReduceSum", [p + "_y3", put(p + "_axis0", np.array([0], np.int64))], [p + "_sum"], keepdims=0
        ),
    ]
    at = list(g.node).index(nodes[p + "_bias"])
    for k, node in enumerate(stacked):
        g.node.insert(at + k, node)
    for name in (p + "_scale0", p + "_scale1"):
        g.initializer.remove(inits[name])
    del g.value_info[:]  # shapes of renamed tensors; onnxruntime infers them again
    return model


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m benchmarks.probes.int8_lean_b1 CROP_INT8.onnx OUT.onnx")
    import onnxruntime as ort

    src, dst = args
    onnx.save(_rewrite(onnx.load(src)), dst)
    before, after = (ort.InferenceSession(f, providers=["CPUExecutionProvider"]) for f in (src, dst))
    name = before.get_inputs()[0].name
    for batch in (1, 5):
        z = np.random.default_rng(batch).standard_normal((batch, before.get_inputs()[0].shape[1])).astype(np.float32)
        diff = float(np.abs(before.run(None, {name: z})[0] - after.run(None, {name: z})[0]).max())
        print(f"batch {batch}: max |difference| {diff:.3g}")
        if diff > 1e-6:
            raise SystemExit("the rewrite changed the output")
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
