"""Probe (not shipped): the int8 DCGAN's image layer computed from the four phase maps, as one integer product.

The shipped int8 file interleaves the upsampling layer's four phase Convs into the 14x14 map (Concats, Transpose),
dequantizes it and runs the image layer as a float ConvTranspose (onnxruntime has no int8 ConvTranspose). This
probe grafts the alternative onto an exported int8 file: each phase map padded (NHWC u8), 16 shifted Slices ->
Concat -> one MatMulInteger [B*49, 2048] x [2048, 16] (7-bit per-column weights: exact on AVX2), then a 4x4
depth-to-space as Reshape / Transpose / Reshape and Tanh. Output sub-pixel (u, v) of each 4x4 block reads, per axis,
phase a at offset d with kernel tap k = u + 1 - 4d - 2a (stride 2, padding 1, kernel 4). It prints the change
against the shipped int8 file and fp32, and interleaved medians of the three files at batch 1 and 64, 1 and 2
threads. Measured verdict (benchmarks/results/int8/README.md): slower except at batch 64 with 2 threads.

Usage: python benchmarks/int8_phase_image_layer.py EXPORT_DIR   (generator.onnx + generator.int8.onnx of a DCGAN
28x28, `edgegan export RUN --int8`); writes generator.int8img.onnx in a temporary folder.
"""
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

folder = Path(sys.argv[1])
src = str(folder / "generator.int8.onnx")
m = onnx.load(src)
g = m.graph
inits = {t.name: nh.to_array(t) for t in g.initializer}
# phase u8 tensors: outputs of QuantizeLinear right after each Conv
conv_out = [n.output[0] for n in g.node if n.op_type == "Conv"]
qouts = {n.input[0]: n for n in g.node if n.op_type == "QuantizeLinear"}
phase_q = [qouts[c].output[0] for c in conv_out]
s_in = float(inits[qouts[conv_out[0]].input[1]]); zp = int(inits[qouts[conv_out[0]].input[2]])
# which (a, b) is each phase: compare with the interleaved map relu_1 (float, after DQ)
probe = onnx.load(src)
image_layer = next(n for n in g.node if n.op_type == "ConvTranspose")
dq = next(n for n in g.node if n.output[0] == image_layer.input[0])  # DequantizeLinear of the interleaved map
assert zp == 0 and len(image_layer.input) == 2, "a DCGAN 28x28 int8 export (no image-layer bias)"
for name in phase_q + [dq.input[0]]:
    probe.graph.output.append(h.make_tensor_value_info(name, T.UINT8, None))
s = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
z = np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32)
outs = s.run(None, {"z": z})
ref_img, phases, X = outs[0], outs[1:5], outs[5]
ab = []
for p in phases:
    hit = [(a, b) for a in (0, 1) for b in (0, 1) if np.array_equal(X[:, :, a::2, b::2], p)]
    assert len(hit) == 1, hit
    ab.append(hit[0])
print("phases", ab)
W = inits[image_layer.input[1]].astype(np.float32)  # [128, 1, 4, 4]
C = W.shape[0]
sources = [(0, 0), (1, -1), (1, 0), (0, 1)]  # (phase, offset) along one axis
def k_of(u, src):
    a, d = src; k = u + 1 - 4 * d - 2 * a
    return k if 0 <= k <= 3 else None
Wbig = np.zeros((4, 4, C, 16), np.float32)  # [row source, col source, ci, (u,v)]
for ri, rs in enumerate(sources):
    for ci_, cs in enumerate(sources):
        for u in range(4):
            for v in range(4):
                ky, kx = k_of(u, rs), k_of(v, cs)
                if ky is not None and kx is not None:
                    Wbig[ri, ci_, :, u * 4 + v] = W[:, 0, ky, kx]
Wm = Wbig.reshape(16 * C, 16)
sw = np.abs(Wm).max(0) / 63.0; sw[sw == 0] = 1
Wq = np.clip(np.rint(Wm / sw), -63, 63).astype(np.int8)
# float check of the formula (no quantization): S from X
nodes, new_inits = [], []
def I(name, a): new_inits.append(nh.from_array(np.asarray(a), name)); return name
phase_of = {ab[i]: phase_q[i] for i in range(4)}
for (a, b), name in phase_of.items():
    nodes.append(h.make_node("Transpose", [name], [f"nhwc_{a}{b}"], perm=[0, 2, 3, 1]))
    nodes.append(h.make_node("Pad", [f"nhwc_{a}{b}", I(f"pads_{a}{b}", np.array([0, 1, 1, 0, 0, 1, 1, 0], np.int64))], [f"pad_{a}{b}"]))
cols = []
for ri, (ra, rd) in enumerate(sources):
    for ci_, (cb, cd) in enumerate(sources):
        nm = f"src_{ri}{ci_}"
        nodes.append(h.make_node("Slice", [f"pad_{ra}{cb}", I(nm + "_st", np.array([1 + rd, 1 + cd], np.int64)),
                                           I(nm + "_en", np.array([8 + rd, 8 + cd], np.int64)), I(nm + "_ax", np.array([1, 2], np.int64))], [nm]))
        cols.append(nm)
nodes += [h.make_node("Concat", cols, ["im2col"], axis=3),
          h.make_node("Reshape", ["im2col", I("shp2048", np.array([-1, 16 * C], np.int64))], ["im2col2d"]),
          h.make_node("MatMulInteger", ["im2col2d", I("img_w", Wq), I("img_xzp", np.uint8(0)), I("img_wzp", np.int8(0))], ["img_acc"]),
          h.make_node("Cast", ["img_acc"], ["img_accf"], to=T.FLOAT),
          h.make_node("Mul", ["img_accf", I("img_scale", (s_in * sw).astype(np.float32))], ["img_y"]),
          h.make_node("Shape", ["z"], ["zshape"]),
          h.make_node("Slice", ["zshape", I("b0", np.array([0], np.int64)), I("b1", np.array([1], np.int64))], ["bdim"]),
          h.make_node("Concat", ["bdim", I("rest5", np.array([7, 7, 4, 4], np.int64))], ["shp5"], axis=0),
          h.make_node("Reshape", ["img_y", "shp5"], ["img5"]),
          h.make_node("Transpose", ["img5"], ["img5t"], perm=[0, 1, 3, 2, 4]),
          h.make_node("Concat", ["bdim", I("rest4", np.array([1, 28, 28], np.int64))], ["shp4"], axis=0),
          h.make_node("Reshape", ["img5t", "shp4"], ["img_pre"]),
          h.make_node("Tanh", ["img_pre"], ["image"])]
# keep only nodes that the new output needs
old_nodes = [n for n in g.node if n.op_type != "Tanh"]
keep_out = set(phase_q)
needed, stack = set(), list(phase_q)
prod = {o: n for n in old_nodes for o in n.output}
while stack:
    t = stack.pop()
    n = prod.get(t)
    if n is None or n.name in needed: continue
    needed.add(n.name); stack.extend(n.input)
kept = [n for n in old_nodes if n.name in needed]
del g.node[:]
g.node.extend(kept + nodes)
g.initializer.extend(new_inits)
used = {i for n in g.node for i in n.input}
keep_inits = [t for t in g.initializer if t.name in used]
del g.initializer[:]; g.initializer.extend(keep_inits)
onnx.checker.check_model(m)
tmp = Path(tempfile.mkdtemp(prefix="edgegan-int8img-"))
onnx.save(m, tmp / "generator.int8img.onnx")
s2 = ort.InferenceSession(str(tmp / "generator.int8img.onnx"), providers=["CPUExecutionProvider"])
new_img = s2.run(None, {"z": z})[0]
fp = ort.InferenceSession(str(folder / "generator.onnx"), providers=["CPUExecutionProvider"]).run(None, {"z": z})[0]
print("new vs int8: max", np.abs(new_img - ref_img).max(), "mean", np.abs(new_img - ref_img).mean())
print("new vs fp32: max", np.abs(new_img - fp).max(), "mean", np.abs(new_img - fp).mean(), "| int8 vs fp32 max", np.abs(ref_img - fp).max(), "mean", np.abs(ref_img - fp).mean())
print("nodes", len(g.node))


def medians(paths, batch, threads, calls):
    sessions = []
    for p in paths:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        sessions.append(ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]))
    feed = {"z": np.random.default_rng(0).standard_normal((batch, 100)).astype(np.float32)}
    for sess in sessions:
        for _ in range(3):
            sess.run(None, feed)
    times = [[] for _ in sessions]
    for _ in range(calls):
        for k, sess in enumerate(sessions):
            start = time.perf_counter()
            sess.run(None, feed)
            times[k].append(time.perf_counter() - start)
    return [float(np.median(t)) * 1e3 for t in times]


files = [folder / "generator.onnx", folder / "generator.int8.onnx", tmp / "generator.int8img.onnx"]
for batch in (1, 64):
    for threads in (1, 2):
        fp32, int8, probe = medians(files, batch, threads, 300 if batch == 1 else 30)
        print(f"batch {batch}, {threads} thread(s): p50 ms fp32 {fp32:.3f}, int8 {int8:.3f}, probe {probe:.3f}; "
              f"int8 / fp32 {int8 / fp32:.3f}, probe / fp32 {probe / fp32:.3f}")
