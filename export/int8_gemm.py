"""The generator's first layer (the Gemm that reads z) as an exact integer matrix product, weights stored int8.

Why not quantize_static's QDQ Gemm (QGemm, u8 activations x s8 weights):

- onnxruntime's u8 x s8 kernel on AVX2 CPUs without VNNI (MLAS, vpmaddubsw) adds pairs of products in 16 bits
  and saturates past 32767 (2 * 255 * 127 = 64770). Post-ReLU activations are mostly small, but z on a u8 grid
  sits around the zero point 128, so large pairs are common: measured on this 2-core AVX2 machine, a random
  u8 x s8 MatMulInteger was off by up to 21% of its range (u8 x u8 is exact there but measured slower than
  float at batch 64). So z goes on a 7-bit grid (u8, zero point 64, 127 levels): pairs stay inside int16 and the
  fast u8 x s8 kernel is exact on every CPU, with full 8-bit weights.
- one grid over z's range (about +-4.1) rounds each latent (by up to 0.033 on 127 levels), which the whole
  generator then amplifies. So a second pass puts the rounding residual through the same integer weights on a
  126x finer grid: z is exact to ~3e-4 and only the weights' rounding remains.

Shapes: x [B, K] float (z, or z joined to a label embedding), W [K, N] (N = Cout*k*k of the first feature map).
    q1 = Q(clip(x, +-63 s1); s1, 64)   u8 [B, K] in [1, 127], s1 = max|x| / 63 over the calibration latents
    q2 = Q(x - DQ(q1); s1 / 126, 64)   u8 [B, K], the rounding residual (|r| <= s1 / 2)
    y  = (q1 - 64) Wq * s1 sw + (q2 - 64) Wq * (s1 / 126) sw + b       two MatMulIntegers (int32), float [B, N]
with Wq = round(W / sw) s8, sw = max|W[:, n]| / 127 per output column.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Activations: u8 with zero point 64, |q - 64| <= 63 (7 bits): a pair of products is at most 2 * 127 * 127 = 32258,
# inside int16, so the fast u8 x s8 kernel is exact on every CPU. Weights: s8, |q| <= 127 (full 8 bits).
ZERO_POINT = 64
LEVELS = 63
WEIGHT_LEVELS = 127
RESIDUAL_STEPS = 2 * LEVELS  # the second pass's grid: the first grid's step / 126 over +-step / 2
# Each pass accumulates in int32: |acc| <= K * 63 * 127 < 2^31.
MAX_K = (2**31 - 1) // (LEVELS * WEIGHT_LEVELS)


def gemm_operands(model: onnx.ModelProto, node: onnx.NodeProto) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(input name, W [K, N], bias [N]) of a Gemm y = x W + b with constant W and b, else None.

    transB and alpha/beta are folded in; a transposed x (transA) or a bias of another shape is not handled.
    """
    if node.op_type not in ("Gemm", "MatMul"):
        return None
    inits = {t.name: t for t in model.graph.initializer}
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("transA", 0) or len(node.input) < 2 or node.input[1] not in inits:
        return None
    w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
    if w.ndim != 2:
        return None
    if attrs.get("transB", 0):
        w = w.T
    w = w * np.float32(attrs.get("alpha", 1.0))
    b = np.zeros(w.shape[1], np.float32)
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] not in inits:
            return None
        bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32) * np.float32(attrs.get("beta", 1.0))
        if bias.size not in (1, w.shape[1]):
            return None
        b = np.broadcast_to(bias.reshape(-1), w.shape[1]).astype(np.float32)
    return node.input[0], w, b


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-column s8 weights: (Wq s8 [K, N], scale [N]); W ~= Wq * scale."""
    scale = (np.abs(w).max(axis=0) / WEIGHT_LEVELS).astype(np.float32)  # [N]
    scale[scale == 0] = 1.0  # an all-zero column: any scale represents it
    return np.clip(np.rint(w / scale), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8), scale


def integer_gemm(model: onnx.ModelProto, node_name: str, input_absmax: float, passes: int = 2) -> dict[str, int]:
    """Replace the float Gemm `node_name` in place by u8 x u8 MatMulInteger pass(es) with float output.

    Args:
        model: the (partly quantized) model; changed in place.
        node_name: the Gemm/MatMul to replace; its output name is kept, so consumers are unchanged.
        input_absmax: max |x| of the Gemm's input over the calibration latents (sets the first grid).
        passes: 1 (x on one u8 grid) or 2 (plus the rounding residual on a 254x finer grid).

    Returns:
        {"weights": K * N, "passes": passes}.

    Raises:
        ValueError: no such node, a Gemm this rewrite does not handle, or a bad `passes`.
    """
    if passes not in (1, 2):
        raise ValueError(f"passes must be 1 or 2, got {passes}")
    graph = model.graph
    found = next(((i, n) for i, n in enumerate(graph.node) if n.name == node_name), None)
    operands = gemm_operands(model, found[1]) if found is not None else None
    if found is None or operands is None:
        raise ValueError(f"{node_name!r} is not a Gemm with constant weights this rewrite handles")
    index, node = found
    x, w, b = operands
    if w.shape[0] > MAX_K:
        raise ValueError(
            f"{node_name!r} has {w.shape[0]} inputs: more than {MAX_K} could overflow int32"
        )  # never for a latent
    wq, sw = quantize_columns(w)
    s1 = np.float32(max(input_absmax, 1e-8) / LEVELS)
    steps = [s1, np.float32(s1 / RESIDUAL_STEPS)][:passes]
    p = node_name + "_int"

    def const(suffix: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), p + suffix))
        return p + suffix

    w_name, zp, w_zp = const("_w", wq), const("_zp", np.uint8(ZERO_POINT)), const("_w_zp", np.int8(0))
    new: list[onnx.NodeProto] = []
    bound = const("_bound", np.float32(LEVELS * s1))
    neg = const("_neg_bound", np.float32(-LEVELS * s1))
    # Outside the calibrated range QuantizeLinear would still give u8 up to 255: clip, so every q is in [1, 127].
    new.append(helper.make_node("Clip", [x, neg, bound], [f"{p}_x"], name=f"{p}_clip"))
    source, acc = f"{p}_x", []
    for k, step in enumerate(steps):
        s = const(f"_s{k}", step)
        new.append(helper.make_node("QuantizeLinear", [source, s, zp], [f"{p}_q{k}"], name=f"{p}_quantize{k}"))
        if k + 1 < len(steps):  # the residual of this pass's rounding feeds the next pass: x - DQ(q)
            new += [
                helper.make_node("DequantizeLinear", [f"{p}_q{k}", s, zp], [f"{p}_dq{k}"], name=f"{p}_dequantize{k}"),
                helper.make_node("Sub", [source, f"{p}_dq{k}"], [f"{p}_r{k}"], name=f"{p}_residual{k}"),
            ]
            source = f"{p}_r{k}"
        new.append(
            helper.make_node("MatMulInteger", [f"{p}_q{k}", w_name, zp, w_zp], [f"{p}_acc{k}"], name=f"{p}_matmul{k}")
        )  # int32 [B, N]
        acc.append(f"{p}_acc{k}")
    # Float from here: onnxruntime's int32 Mul/Add are scalar loops (measured 3.5 ms each at batch 64, float 0.5).
    terms = []
    for k, (name, step) in enumerate(zip(acc, steps)):
        new += [
            helper.make_node("Cast", [name], [f"{p}_accf{k}"], to=TensorProto.FLOAT, name=f"{p}_cast{k}"),
            helper.make_node(
                "Mul",
                [f"{p}_accf{k}", const(f"_scale{k}", (step * sw).astype(np.float32))],
                [f"{p}_y{k}"],
                name=f"{p}_scale{k}",
            ),
        ]  # [N] per-column scales
        terms.append(f"{p}_y{k}")
    if len(terms) == 2:  # Add, not Sum: onnxruntime's broadcasting Sum measured 7x slower than Add here
        new.append(helper.make_node("Add", terms, [f"{p}_sum"], name=f"{p}_sum"))
    new.append(
        helper.make_node(
            "Add", [f"{p}_sum" if len(terms) == 2 else terms[0], const("_b", b)], [node.output[0]], name=f"{p}_bias"
        )
    )
    graph.node.remove(node)
    for offset, item in enumerate(new):
        graph.node.insert(index + offset, item)
    _drop_unused_initializers(model, node.input[1:])
    return {"weights": int(w.size), "passes": passes}


def _drop_unused_initializers(model: onnx.ModelProto, names) -> None:
    used = {name for n in model.graph.node for name in n.input} | {o.name for o in model.graph.output}
    for init in [t for t in model.graph.initializer if t.name in set(names) and t.name not in used]:
        model.graph.initializer.remove(init)
