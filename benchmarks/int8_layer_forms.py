"""Single-layer forms of the int8 DCGAN 28x28's two costly parts, timed against each other (random weights).

first_layer_forms: the first layer (z [B, 100] -> [B, 12544]) as shipped (two exact MatMulInteger passes, z on a
  7-bit grid plus its rounding residual, then Cast / per-column Mul / Add / bias / Relu), as one MatMulInteger over
  both passes stacked along the batch (then ReduceSum or Split + Add), as two com.microsoft MatMulIntegerToFloat,
  and as the fp32 Gemm; prints each form's difference from the shipped one.
upsampling_forms: one 2x2 phase Conv 256 -> 128 on a 7x7 map (padded to 8x8) as QLinearConv (NCHW in), as an
  im2col (4 Slices + Concat) followed by QLinearMatMul or MatMulInteger over the whole batch, and as fp32 Conv.

Interleaved medians; numbers quoted in benchmarks/results/int8/README.md ("Measured and not taken").
Usage: python benchmarks/int8_layer_forms.py [--batch 1,64] [--threads 1]
"""
import argparse
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh


def first_layer_forms(B: int, threads: int) -> None:
    K, N = 100, 12544
    rng = np.random.default_rng(0)
    Wq = rng.integers(-127, 128, (K, N)).astype(np.int8); sw = (rng.random(N).astype(np.float32) + .5) * 1e-3
    bias = rng.standard_normal(N).astype(np.float32); s1 = np.float32(4.1 / 63)
    def I(n, a): return nh.from_array(np.asarray(a), n)
    common = [I("w", Wq), I("zp", np.uint8(64)), I("wzp", np.int8(0)), I("b", bias), I("s0", s1), I("s1", np.float32(s1 / 126)),
              I("hi", np.float32(63 * s1)), I("lo", np.float32(-63 * s1))]
    front = [h.make_node("Clip", ["z", "lo", "hi"], ["x"]), h.make_node("QuantizeLinear", ["x", "s0", "zp"], ["q0"]),
             h.make_node("DequantizeLinear", ["q0", "s0", "zp"], ["d0"]), h.make_node("Sub", ["x", "d0"], ["r"]),
             h.make_node("QuantizeLinear", ["r", "s1", "zp"], ["q1"])]
    V = {}
    V["v0_current"] = (front + [h.make_node("MatMulInteger", ["q0", "w", "zp", "wzp"], ["a0"]), h.make_node("MatMulInteger", ["q1", "w", "zp", "wzp"], ["a1"]),
        h.make_node("Cast", ["a0"], ["f0"], to=1), h.make_node("Mul", ["f0", "c0"], ["y0"]), h.make_node("Cast", ["a1"], ["f1"], to=1),
        h.make_node("Mul", ["f1", "c1"], ["y1"]), h.make_node("Add", ["y0", "y1"], ["s"]), h.make_node("Add", ["s", "b"], ["o"]), h.make_node("Relu", ["o"], ["y"])],
        [I("c0", s1 * sw), I("c1", s1 / 126 * sw)])
    V["v1_stacked_reducesum"] = (front + [h.make_node("Concat", ["q0", "q1"], ["qq"], axis=0), h.make_node("MatMulInteger", ["qq", "w", "zp", "wzp"], ["a"]),
        h.make_node("Cast", ["a"], ["f"], to=1), h.make_node("Reshape", ["f", "shp"], ["f3"]), h.make_node("Mul", ["f3", "c"], ["y3"]),
        h.make_node("ReduceSum", ["y3", "ax0"], ["s"], keepdims=0), h.make_node("Add", ["s", "b"], ["o"]), h.make_node("Relu", ["o"], ["y"])],
        [I("c", np.stack([s1 * sw, s1 / 126 * sw])[:, None, :]), I("shp", np.array([2, -1, N], np.int64)), I("ax0", np.array([0], np.int64))])
    V["v2_stacked_split"] = (front + [h.make_node("Concat", ["q0", "q1"], ["qq"], axis=0), h.make_node("MatMulInteger", ["qq", "w", "zp", "wzp"], ["a"]),
        h.make_node("Cast", ["a"], ["f"], to=1), h.make_node("Reshape", ["f", "shp"], ["f3"]), h.make_node("Mul", ["f3", "c"], ["y3"]),
        h.make_node("Split", ["y3"], ["u0", "u1"], axis=0, num_outputs=2), h.make_node("Add", ["u0", "u1"], ["s"]), h.make_node("Add", ["s", "b3"], ["o"]), h.make_node("Relu", ["o"], ["y"])],
        [I("c", np.stack([s1 * sw, s1 / 126 * sw])[:, None, :]), I("shp", np.array([2, -1, N], np.int64)), I("b3", bias[None, None])])
    V["v3_mmitf"] = (front + [h.make_node("MatMulIntegerToFloat", ["q0", "w", "s0", "swv", "zp", "wzp", "b"], ["y0"], domain="com.microsoft"),
        h.make_node("MatMulIntegerToFloat", ["q1", "w", "s1", "swv", "zp", "wzp"], ["y1"], domain="com.microsoft"),
        h.make_node("Add", ["y0", "y1"], ["o"]), h.make_node("Relu", ["o"], ["y"])], [I("swv", sw)])
    V["v4_fp32"] = ([h.make_node("Gemm", ["z", "wf", "b"], ["o"]), h.make_node("Relu", ["o"], ["y"])], [I("wf", (Wq * sw).astype(np.float32))])
    S = {}
    for k, (nodes, extra) in V.items():
        g = h.make_graph(nodes, "g", [h.make_tensor_value_info("z", T.FLOAT, [B, K])], [h.make_tensor_value_info("y", T.FLOAT, None)], common + extra)
        m = h.make_model(g, opset_imports=[h.make_opsetid("", 19), h.make_opsetid("com.microsoft", 1)]); m.ir_version = 9
        so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.log_severity_level = 3
        S[k] = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    z = rng.standard_normal((B, K)).astype(np.float32)
    out = {k: s.run(None, {"z": z})[0] for k, s in S.items()}
    for k in out: print(k, "max diff vs v0", np.abs(out[k] - out["v0_current"]).max())
    r = {k: [] for k in S}
    for it in range(60 if B > 8 else 2000):
        for k, s in S.items():
            t = time.perf_counter(); s.run(None, {"z": z}); r[k].append(time.perf_counter() - t)
    for k in r: print(f"B{B} t{threads} {k:22s} {np.median(r[k])*1000:.4f} ms")


def upsampling_forms(B: int, threads: int) -> None:
    rng = np.random.default_rng(0)
    Cin, Cout = 256, 128
    W = rng.integers(-127, 128, (Cout, Cin, 2, 2)).astype(np.int8)
    wsc = (rng.random(Cout).astype(np.float32) + 0.5) * 1e-3
    def init(n, a): return nh.from_array(a, n)
    models = {}
    # 1) QLinearConv NCHW u8 in [B,256,8,8] (already padded) -> u8 out
    g = h.make_graph([h.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], kernel_shape=[2, 2])],
        "g", [h.make_tensor_value_info("x", T.UINT8, [B, Cin, 8, 8])], [h.make_tensor_value_info("y", T.UINT8, None)],
        [init("xs", np.float32(0.02)), init("xz", np.uint8(0)), init("w", W), init("ws", wsc), init("wz", np.zeros(Cout, np.int8)),
         init("ys", np.float32(0.05)), init("yz", np.uint8(0))])
    models["qlinearconv_nchw"] = (g, lambda: rng.integers(0, 60, (B, Cin, 8, 8)).astype(np.uint8))
    # 2) NHWC input [B,8,8,256]: 4 slices, concat -> [B,7,7,1024] -> reshape [B*49,1024] -> QLinearMatMul W [1024,128]
    Wm = W.transpose(2, 3, 1, 0).reshape(4 * Cin, Cout)  # (kh,kw,cin) x cout
    nodes = []; ins = []
    for i, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        nodes.append(h.make_node("Slice", ["x", f"st{i}", f"en{i}", "ax"], [f"s{i}"])); ins.append(f"s{i}")
    inits = [init("ax", np.array([1, 2], np.int64)), init("shp", np.array([-1, 4 * Cin], np.int64)), init("xs", np.float32(0.02)), init("xz", np.uint8(0)),
             init("w", Wm), init("ws", wsc), init("wz", np.zeros(Cout, np.int8)), init("ys", np.float32(0.05)), init("yz", np.uint8(0))]
    for i, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        inits += [init(f"st{i}", np.array([dy, dx], np.int64)), init(f"en{i}", np.array([dy + 7, dx + 7], np.int64))]
    nodes += [h.make_node("Concat", ins, ["c"], axis=3), h.make_node("Reshape", ["c", "shp"], ["m"]),
              h.make_node("QLinearMatMul", ["m", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"])]
    g2 = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.UINT8, [B, 8, 8, Cin])], [h.make_tensor_value_info("y", T.UINT8, None)], inits)
    models["im2col_qlinearmatmul"] = (g2, lambda: rng.integers(0, 60, (B, 8, 8, Cin)).astype(np.uint8))
    # 3) same but MatMulInteger (int32 out)
    nodes3 = nodes[:-1] + [h.make_node("MatMulInteger", ["m", "w", "xz"], ["y"])]
    g3 = h.make_graph(nodes3, "g", [h.make_tensor_value_info("x", T.UINT8, [B, 8, 8, Cin])], [h.make_tensor_value_info("y", T.INT32, None)], inits)
    models["im2col_matmulinteger"] = (g3, lambda: rng.integers(0, 60, (B, 8, 8, Cin)).astype(np.uint8))
    # 4) fp32 Conv reference
    g4 = h.make_graph([h.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[2, 2])], "g", [h.make_tensor_value_info("x", T.FLOAT, [B, Cin, 8, 8])],
        [h.make_tensor_value_info("y", T.FLOAT, None)], [init("w", (W.astype(np.float32) * 1e-3))])
    models["fp32_conv"] = (g4, lambda: rng.random((B, Cin, 8, 8)).astype(np.float32))
    sess = {}
    for k, (g, mk) in models.items():
        m = h.make_model(g, opset_imports=[h.make_opsetid("", 19)]); m.ir_version = 9
        so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.log_severity_level = 3
        sess[k] = (ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]), {"x": mk()})
    res = {k: [] for k in sess}
    for k, (s, f) in sess.items():
        for _ in range(3): s.run(None, f)
    for r in range(40 if B > 8 else 400):
        for k, (s, f) in sess.items():
            t = time.perf_counter(); s.run(None, f); res[k].append(time.perf_counter() - t)
    ref = np.median(res["fp32_conv"])
    for k in res: print(f"B{B} t{threads} {k:24s} {np.median(res[k])*1000:8.3f} ms  x fp32 {np.median(res[k])/ref:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="1,64")
    parser.add_argument("--threads", default="1")
    args = parser.parse_args()
    for threads in (int(t) for t in args.threads.split(",")):
        for batch in (int(b) for b in args.batch.split(",")):
            first_layer_forms(batch, threads)
            upsampling_forms(batch, threads)


if __name__ == "__main__":
    main()
