"""Probe (not shipped): the int8 DCGAN's image layer computed from the four phase maps, as one integer product.

The shipped int8 file interleaves the upsampling layer's four phase Convs into the 14x14 map (Concats, Transpose),
dequantizes it and runs the image layer as a float ConvTranspose (onnxruntime has no int8 ConvTranspose). This
probe grafts the alternative onto an exported int8 file: each phase map padded (NHWC u8), 16 shifted Slices ->
Concat -> one MatMulInteger [B*49, 2048] x [2048, 16] (7-bit per-column weights: exact on AVX2), then a 4x4
depth-to-space as Reshape / Transpose / Reshape and Tanh. Output sub-pixel (u, v) of each 4x4 block reads, per axis,
phase a at offset d with kernel tap k = u + 1 - 4d - 2a (stride 2, padding 1, kernel 4). It prints the change
against the shipped int8 file and fp32, and interleaved medians of the three files at batch 1 and 64, 1 and 2
threads. Measured verdict (benchmarks/results/int8/README.md): not faster than the shipped file.

Usage: python -m benchmarks.probes.int8_phase_image_layer EXPORT_DIR   (generator.onnx + generator.int8.onnx of a DCGAN
28x28, `edgegan export RUN --int8`); writes generator.int8img.onnx in a temporary folder.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchmarks.probes.int8_ceiling import interleaved_medians, session

# (phase, offset) along one axis that some output sub-pixel of a 4x4 block reads; 4 per axis, 16 in 2-D
SOURCES = [(0, 0), (1, -1), (1, 0), (0, 1)]


def kernel_tap(u: int, source: tuple[int, int]) -> int | None:
    """Kernel index k of ConvTranspose(k 4, stride 2, pad 1) that output row 4i + u takes from source (a, d), or None.

    The source is interleaved row m = 2(i + d) + a, and y = 2m - 1 + k, so k = u + 1 - 4d - 2a.
    """
    a, d = source
    k = u + 1 - 4 * d - 2 * a
    return k if 0 <= k <= 3 else None


def image_layer_matrix(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ConvTranspose weights [C, 1, 4, 4] -> (s8 [16 * C, 16] with |q| <= 63, per-column scales [16])."""
    c = w.shape[0]
    big = np.zeros((4, 4, c, 16), np.float32)  # [row source, col source, channel, sub-pixel u * 4 + v]
    for r, row in enumerate(SOURCES):
        for q, col in enumerate(SOURCES):
            for u in range(4):
                for v in range(4):
                    ky, kx = kernel_tap(u, row), kernel_tap(v, col)
                    if ky is not None and kx is not None:
                        big[r, q, :, u * 4 + v] = w[:, 0, ky, kx]
    matrix = big.reshape(16 * c, 16)
    scale = np.abs(matrix).max(axis=0) / 63.0  # 7-bit weights: u8 x s8 pairs stay inside int16 on AVX2
    scale[scale == 0] = 1.0
    return np.clip(np.rint(matrix / scale), -63, 63).astype(np.int8), scale.astype(np.float32)


def graft(model: onnx.ModelProto, z: np.ndarray) -> onnx.ModelProto:
    """The int8 model with its interleave + float image layer replaced by the phase-map integer product."""
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    quantize_of = {n.input[0]: n for n in g.node if n.op_type == "QuantizeLinear"}
    phase_q = [quantize_of[n.output[0]].output[0] for n in g.node if n.op_type == "Conv"]  # u8 [B, C, 7, 7] each
    first_q = quantize_of[next(n.output[0] for n in g.node if n.op_type == "Conv")]
    s_in, zp = float(inits[first_q.input[1]]), int(inits[first_q.input[2]])
    image_layer = next(n for n in g.node if n.op_type == "ConvTranspose")
    dq = next(n for n in g.node if n.output[0] == image_layer.input[0])  # DequantizeLinear of the 14x14 map
    if zp != 0 or len(image_layer.input) != 2 or len(phase_q) != 4:
        raise SystemExit("expected a DCGAN 28x28 int8 export (4 phase Convs, u8 zero point 0, no image-layer bias)")
    # Which phase (a, b) of the 14x14 map each Conv computes: run once and compare with the interleaved map.
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(
        helper.make_tensor_value_info(n, TensorProto.UINT8, None) for n in phase_q + [dq.input[0]]
    )
    *phases, interleaved = session(probe.SerializeToString(), 1).run(None, {g.input[0].name: z})[1:]
    phase_of = {}
    for name, phase in zip(phase_q, phases):
        (hit,) = [(a, b) for a in (0, 1) for b in (0, 1) if np.array_equal(interleaved[:, :, a::2, b::2], phase)]
        phase_of[hit] = name
    wq, scale = image_layer_matrix(inits[image_layer.input[1]].astype(np.float32))
    channels = wq.shape[0] // 16
    new_inits = {
        "img_w": wq,
        "img_xzp": np.uint8(0),
        "img_wzp": np.int8(0),
        "img_scale": np.float32(s_in) * scale,
        "pads": np.array([0, 1, 1, 0, 0, 1, 1, 0], np.int64),
        "axes": np.array([1, 2], np.int64),
        "rows": np.array([-1, 16 * channels], np.int64),
        "first": np.array([0], np.int64),
        "one": np.array([1], np.int64),
        "blocks": np.array([7, 7, 4, 4], np.int64),
        "pixels": np.array([1, 28, 28], np.int64),
    }
    nodes = []
    for (a, b), name in phase_of.items():  # NHWC, padded by 1: [B, 9, 9, C]
        nodes += [
            helper.make_node("Transpose", [name], [f"nhwc_{a}{b}"], perm=[0, 2, 3, 1]),
            helper.make_node("Pad", [f"nhwc_{a}{b}", "pads"], [f"pad_{a}{b}"]),
        ]
    columns = []
    for r, (ra, rd) in enumerate(SOURCES):
        for q, (cb, cd) in enumerate(SOURCES):
            name = f"src_{r}{q}"  # phase (ra, cb) shifted by (rd, cd): [B, 7, 7, C]
            new_inits[name + "_start"] = np.array([1 + rd, 1 + cd], np.int64)
            new_inits[name + "_end"] = np.array([8 + rd, 8 + cd], np.int64)
            nodes.append(helper.make_node("Slice", [f"pad_{ra}{cb}", name + "_start", name + "_end", "axes"], [name]))
            columns.append(name)
    nodes += [
        helper.make_node("Concat", columns, ["im2col"], axis=3),  # [B, 7, 7, 16 C]
        helper.make_node("Reshape", ["im2col", "rows"], ["im2col_rows"]),
        helper.make_node("MatMulInteger", ["im2col_rows", "img_w", "img_xzp", "img_wzp"], ["img_acc"]),
        helper.make_node("Cast", ["img_acc"], ["img_accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["img_accf", "img_scale"], ["img_y"]),  # [B * 49, 16]
        helper.make_node("Shape", [g.input[0].name], ["z_shape"]),
        helper.make_node("Slice", ["z_shape", "first", "one"], ["batch"]),
        helper.make_node("Concat", ["batch", "blocks"], ["shape5"], axis=0),
        helper.make_node("Reshape", ["img_y", "shape5"], ["img5"]),  # [B, 7, 7, 4, 4]
        helper.make_node("Transpose", ["img5"], ["img5t"], perm=[0, 1, 3, 2, 4]),  # [B, 7, 4, 7, 4]
        helper.make_node("Concat", ["batch", "pixels"], ["shape4"], axis=0),
        helper.make_node("Reshape", ["img5t", "shape4"], ["img_pre"]),  # [B, 1, 28, 28]
        helper.make_node("Tanh", ["img_pre"], [g.output[0].name]),
    ]
    producers = {o: n for n in g.node for o in n.output}
    needed, stack = set(), list(phase_q)  # keep the old nodes the phase maps need, nothing after them
    while stack:
        node = producers.get(stack.pop())
        if node is not None and node.name not in needed:
            needed.add(node.name)
            stack.extend(node.input)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend([n for n in g.node if n.name in needed] + nodes)
    used = {i for n in out.graph.node for i in n.input}
    kept = [t for t in g.initializer if t.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept + [numpy_helper.from_array(np.asarray(v), k) for k, v in new_inits.items()])
    onnx.checker.check_model(out)
    return out


def main() -> None:
    folder = Path(sys.argv[1])
    files = [folder / "generator.onnx", folder / "generator.int8.onnx"]
    int8 = onnx.load(files[1])
    nz = int8.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    z = np.random.default_rng(0).standard_normal((3, nz)).astype(np.float32)
    files.append(Path(tempfile.mkdtemp(prefix="edgegan-int8img-")) / "generator.int8img.onnx")
    onnx.save(graft(int8, z), files[2])
    fp32_img, int8_img, probe_img = (session(str(f), 1).run(None, {"z": z})[0] for f in files)
    for name, img in (
        ("probe vs int8", probe_img - int8_img),
        ("probe vs fp32", probe_img - fp32_img),
        ("int8 vs fp32", int8_img - fp32_img),
    ):
        print(f"{name}: max |diff| {np.abs(img).max():.2e}, mean {np.abs(img).mean():.2e}")
    for batch in (1, 64):
        feed = {"z": np.random.default_rng(1).standard_normal((batch, nz)).astype(np.float32)}
        for threads in (1, 2):
            sessions = [session(str(f), threads) for f in files]
            calls = {f.name: (lambda s=s, feed=feed: s.run(None, feed)) for f, s in zip(files, sessions)}
            medians = interleaved_medians(calls, 300 if batch == 1 else 30)
            fp32, int8_ms, probe = (medians[f.name] * 1e3 for f in files)
            print(
                f"batch {batch}, {threads} thread(s): p50 ms fp32 {fp32:.3f}, int8 {int8_ms:.3f}, probe {probe:.3f}; "
                f"int8 / fp32 {int8_ms / fp32:.3f}, probe / fp32 {probe / fp32:.3f}"
            )


if __name__ == "__main__":
    main()
