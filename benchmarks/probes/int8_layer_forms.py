"""Single-layer forms of the int8 DCGAN 28x28's two costly parts, timed against each other (random weights).

first_layer_forms: the first layer (z [B, 100] -> Relu(z W + b), [B, 12544]) as shipped (export/int8_gemm.py's
  integer_gemm: two exact MatMulInteger passes, z on a 7-bit grid plus its rounding residual, then Cast / per-column
  Mul / Add / bias), as one MatMulInteger over both passes stacked along the batch (then ReduceSum, or Split + Add),
  as two com.microsoft MatMulIntegerToFloat, and as the fp32 Gemm; prints each form's difference from the shipped one.
upsampling_forms: one 2x2 phase Conv 256 -> 128 on a 7x7 map (padded to 8x8) as QLinearConv (NCHW in), as an
  im2col (4 Slices + Concat) followed by QLinearMatMul or MatMulInteger over the whole batch, and as fp32 Conv.

Interleaved medians (int8_ceiling.py's timing); numbers quoted in benchmarks/results/int8/README.md ("Measured and
not taken").
Usage: python -m benchmarks.probes.int8_layer_forms [--batch 1,64] [--threads 1]
"""

import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchmarks.probes.int8_ceiling import interleaved_medians, session
from edgegan.export.int8_gemm import LEVELS, RESIDUAL_STEPS, ZERO_POINT, integer_gemm

NZ, FIRST_N = 100, 256 * 7 * 7  # the first layer of a width-64 DCGAN 28x28: [B, 100] -> [B, 256 * 7 * 7]
CIN, COUT = 256, 128  # the upsampling layer's phase Convs


def model_bytes(
    nodes: list, inits: dict[str, np.ndarray], x_name: str, x_type: int, x_shape: list, y_type: int
) -> bytes:
    """A one-input, one-output ("y") graph; inits name -> array."""
    graph = helper.make_graph(
        nodes,
        "form",
        [helper.make_tensor_value_info(x_name, x_type, x_shape)],
        [helper.make_tensor_value_info("y", y_type, None)],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in inits.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 9
    return model.SerializeToString()


def report(batch: int, threads: int, calls: dict, rounds: int, reference: str | None = None) -> None:
    """Print each form's median call time (and its ratio to form `reference`), the forms called interleaved."""
    medians = interleaved_medians(calls, rounds)
    for name, seconds in medians.items():
        ratio = f"  x {reference} {seconds / medians[reference]:.2f}" if reference else ""
        print(f"batch {batch}, {threads} thread(s): {name:24s} {seconds * 1e3:8.3f} ms{ratio}")


def first_layer_forms(batch: int, threads: int) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((NZ, FIRST_N)).astype(np.float32) * 0.05
    bias = rng.standard_normal(FIRST_N).astype(np.float32) * 0.1
    z = rng.standard_normal((batch, NZ)).astype(np.float32)
    absmax = 4.1  # max |z| over calibration latents, as build_int8 measures it
    gemm = [helper.make_node("Gemm", ["z", "w", "b"], ["o"], name="first"), helper.make_node("Relu", ["o"], ["y"])]
    forms = {"fp32": model_bytes(gemm, {"w": w, "b": bias}, "z", TensorProto.FLOAT, [batch, NZ], TensorProto.FLOAT)}
    shipped = onnx.load_from_string(forms["fp32"])
    integer_gemm(shipped, "first", absmax)  # the form `edgegan export --int8` writes
    forms["shipped (integer_gemm)"] = shipped.SerializeToString()
    # The same quantities for the hand-built alternatives: z's two grids, s8 per-column weights.
    inits = {t.name: numpy_helper.to_array(t) for t in shipped.graph.initializer}
    s1 = np.float32(absmax / LEVELS)
    sw = inits["first_int_scale0"] / s1  # per-column weight scales: the first pass's scale is s1 * sw
    base = {
        "w": inits["first_int_w"],
        "zp": np.uint8(ZERO_POINT),
        "wzp": np.int8(0),
        "b": bias,
        "s0": s1,
        "s1": np.float32(s1 / RESIDUAL_STEPS),
        "hi": np.float32(LEVELS * s1),
        "lo": np.float32(-LEVELS * s1),
    }
    both = np.stack([s1 * sw, s1 / RESIDUAL_STEPS * sw])[:, None, :].astype(np.float32)  # [2, 1, N]
    front = [
        helper.make_node("Clip", ["z", "lo", "hi"], ["x"]),
        helper.make_node("QuantizeLinear", ["x", "s0", "zp"], ["q0"]),
        helper.make_node("DequantizeLinear", ["q0", "s0", "zp"], ["d0"]),
        helper.make_node("Sub", ["x", "d0"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "s1", "zp"], ["q1"]),
    ]
    stacked = front + [
        helper.make_node("Concat", ["q0", "q1"], ["qq"], axis=0),  # [2B, K]: one pass over W
        helper.make_node("MatMulInteger", ["qq", "w", "zp", "wzp"], ["a"]),
        helper.make_node("Cast", ["a"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["f", "shape"], ["f3"]),
        helper.make_node("Mul", ["f3", "both"], ["y3"]),
    ]
    tail = [helper.make_node("Add", ["s", "b"], ["o"]), helper.make_node("Relu", ["o"], ["y"])]
    shape = {"both": both, "shape": np.array([2, -1, FIRST_N], np.int64)}
    forms["stacked, ReduceSum"] = model_bytes(
        stacked + [helper.make_node("ReduceSum", ["y3", "axis0"], ["s"], keepdims=0)] + tail,
        {**base, **shape, "axis0": np.array([0], np.int64)},
        "z",
        TensorProto.FLOAT,
        [batch, NZ],
        TensorProto.FLOAT,
    )
    forms["stacked, Split + Add"] = model_bytes(
        stacked
        + [
            helper.make_node("Split", ["y3"], ["u0", "u1"], axis=0, num_outputs=2),
            helper.make_node("Add", ["u0", "u1"], ["s3"]),
            helper.make_node("Squeeze", ["s3", "axis0"], ["s"]),
        ]
        + tail,
        {**base, **shape, "axis0": np.array([0], np.int64)},
        "z",
        TensorProto.FLOAT,
        [batch, NZ],
        TensorProto.FLOAT,
    )
    forms["2 MatMulIntegerToFloat"] = model_bytes(
        front
        + [
            helper.make_node(
                "MatMulIntegerToFloat", ["q0", "w", "s0", "sw", "zp", "wzp", "b"], ["y0"], domain="com.microsoft"
            ),
            helper.make_node(
                "MatMulIntegerToFloat", ["q1", "w", "s1", "sw", "zp", "wzp"], ["y1"], domain="com.microsoft"
            ),
            helper.make_node("Add", ["y0", "y1"], ["o"]),
            helper.make_node("Relu", ["o"], ["y"]),
        ],
        {**base, "sw": sw.astype(np.float32)},
        "z",
        TensorProto.FLOAT,
        [batch, NZ],
        TensorProto.FLOAT,
    )
    sessions = {name: session(data, threads) for name, data in forms.items()}
    feed = {"z": z}
    outputs = {name: s.run(None, feed)[0] for name, s in sessions.items()}
    for name, out in outputs.items():
        print(f"first layer, {name}: max |diff| vs shipped {np.abs(out - outputs['shipped (integer_gemm)']).max():.2e}")
    report(
        batch,
        threads,
        {name: (lambda s=s: s.run(None, feed)) for name, s in sessions.items()},
        2000 if batch <= 8 else 60,
        reference="fp32",
    )


def upsampling_forms(batch: int, threads: int) -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (COUT, CIN, 2, 2)).astype(np.int8)  # s8 [Cout, Cin, 2, 2]
    grid = {
        "xs": np.float32(0.02),
        "xz": np.uint8(0),
        "ws": (rng.random(COUT).astype(np.float32) + 0.5) * 1e-3,
        "wz": np.zeros(COUT, np.int8),
        "ys": np.float32(0.05),
        "yz": np.uint8(0),
    }
    qargs = ["xs", "xz", "w", "ws", "wz", "ys", "yz"]
    x_nchw = rng.integers(0, 60, (batch, CIN, 8, 8)).astype(np.uint8)  # already padded to 8x8
    conv = model_bytes(
        [helper.make_node("QLinearConv", ["x", *qargs], ["y"], kernel_shape=[2, 2])],
        {**grid, "w": w},
        "x",
        TensorProto.UINT8,
        [batch, CIN, 8, 8],
        TensorProto.UINT8,
    )
    fp32 = model_bytes(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[2, 2])],
        {"w": w.astype(np.float32) * 1e-3},
        "x",
        TensorProto.FLOAT,
        [batch, CIN, 8, 8],
        TensorProto.FLOAT,
    )
    # im2col in NHWC: the four 7x7 windows of the padded map side by side -> [B*49, 4*Cin] x [4*Cin, Cout]
    shifts = [(0, 0), (0, 1), (1, 0), (1, 1)]
    im2col = [helper.make_node("Slice", ["x", f"start{i}", f"end{i}", "axes"], [f"s{i}"]) for i in range(4)]
    im2col += [
        helper.make_node("Concat", [f"s{i}" for i in range(4)], ["c"], axis=3),
        helper.make_node("Reshape", ["c", "rows"], ["m"]),
    ]
    inits = {
        **grid,
        "w": w.transpose(2, 3, 1, 0).reshape(4 * CIN, COUT),
        "axes": np.array([1, 2], np.int64),
        "rows": np.array([-1, 4 * CIN], np.int64),
    }
    for i, (dy, dx) in enumerate(shifts):
        inits[f"start{i}"], inits[f"end{i}"] = np.array([dy, dx], np.int64), np.array([dy + 7, dx + 7], np.int64)
    nhwc = [batch, 8, 8, CIN]
    qmatmul = model_bytes(
        im2col + [helper.make_node("QLinearMatMul", ["m", *qargs], ["y"])],
        inits,
        "x",
        TensorProto.UINT8,
        nhwc,
        TensorProto.UINT8,
    )
    imatmul = model_bytes(
        im2col + [helper.make_node("MatMulInteger", ["m", "w", "xz"], ["y"])],
        inits,
        "x",
        TensorProto.UINT8,
        nhwc,
        TensorProto.INT32,
    )
    x_nhwc = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
    forms = {
        "QLinearConv (NCHW in)": (conv, x_nchw),
        "im2col + QLinearMatMul": (qmatmul, x_nhwc),
        "im2col + MatMulInteger": (imatmul, x_nhwc),
        "fp32 Conv": (fp32, x_nchw.astype(np.float32) / 60),
    }
    sessions = {name: session(data, threads) for name, (data, _) in forms.items()}
    report(
        batch,
        threads,
        {name: (lambda s=s, x=forms[name][1]: s.run(None, {"x": x})) for name, s in sessions.items()},
        400 if batch <= 8 else 40,
        reference="fp32 Conv",
    )


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
