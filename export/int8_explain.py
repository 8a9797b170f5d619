"""Which layers carry an int8 generator's error: each weighted layer's output in the int8 file against the same
tensor of the float model it was quantized from.

build_int8 rewrites the fp32 export into its sub-pixel form before quantizing, and quantize_static (QDQ) and the
integer first layer keep the name of every weighted layer's float output, so the two graphs share those tensor
names: both are run on the same contract latents with those tensors exposed. Per layer (in graph order):

  range       max |x| of the float tensor over the latents (what the calibration has to cover)
  err p99.9   the 99.9th percentile of |int8 - float| for that tensor, in units of its own int8 step
              (range / 127.5: one level of a u8 grid over [-range, range])
  err max     the same, worst element
  grows       err p99.9 divided by the previous layer's: >1 where this layer adds error of its own

The error is cumulative (each layer gets its input from the int8 layers before it), so the layer where `grows`
jumps is the one to act on (keep it float, calibrate its range differently, per-channel scales).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from edgegan.export.graph_forms import IMAGE_LAYER_CHANNELS, to_subpixel
from edgegan.export.int8_quantize import DEFAULT_FORM, DEFAULT_LAYOUT
from edgegan.runtime.contract import INPUT_LABEL, INPUT_LATENT, GeneratorContract, default_labels, draw_latents
from edgegan.runtime.providers import session_options

WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
EXPLAIN_N = 256
EXPLAIN_SEED = 4321


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> bytes:
    """The model with `names` added as graph outputs (types left to onnxruntime's inference)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    have = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in have)
    return model.SerializeToString()


def _after_qdq(model: onnx.ModelProto) -> dict[str, str]:
    """tensor -> the DequantizeLinear output of its QuantizeLinear, for every quantized activation."""
    q = {n.input[0]: n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    dq = {n.input[0]: n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return {t: dq[qo] for t, qo in q.items() if qo in dq}


def _run(model: bytes, feeds: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model, session_options(), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    return dict(zip(names, session.run(names, {k: v for k, v in feeds.items() if k in inputs})))


def layer_errors(
    core_fp32: str | Path,
    int8_path: str | Path,
    contract: GeneratorContract,
    *,
    n: int = EXPLAIN_N,
    seed: int = EXPLAIN_SEED,
    form: str = DEFAULT_FORM,
    layout: str = DEFAULT_LAYOUT,
    image_layer_float: bool = True,
) -> list[dict[str, Any]]:
    """Per weighted layer of the sub-pixel float model: its output's range and the int8 file's error on it.

    Args:
        core_fp32: the float model build_int8 quantized (torch's export, ConvTranspose form).
        int8_path: the int8 file build_int8 wrote from it (float output: no uint8 tail).
        contract: the generator contract (latents, labels).
        n, seed: contract latents the figures are taken over.
        form, layout, image_layer_float: build_int8's options, to rebuild the same sub-pixel float graph.

    Returns:
        One dict per layer in graph order: layer, op, tensor, range, err_p999 and err_max (in int8 steps of the
        tensor), err_mean, grows (err_p999 / the previous layer's).
    """
    fp32 = to_subpixel(
        onnx.load(core_fp32), form, layout, min_out_channels=IMAGE_LAYER_CHANNELS if image_layer_float else 1
    )
    int8 = onnx.load(int8_path)
    # quantize_static fuses a Conv with the Relu after it (the int8 Conv writes the Relu's output name) and the
    # integer first layer keeps its Gemm's output name: the int8 node of the same name says which tensor to compare.
    int8_out = {node.name: node.output[0] for node in int8.graph.node}
    in_fp32 = {o for node in fp32.graph.node for o in node.output}
    layers = [
        (node.name, node.op_type, int8_out.get(node.name, node.output[0]))
        for node in fp32.graph.node
        if node.op_type in WEIGHTED
    ]
    in_int8 = {o for node in int8.graph.node for o in node.output}
    layers = [layer for layer in layers if layer[2] in in_fp32 and layer[2] in in_int8]
    # A fused Conv's float output still holds the negatives its Relu removed: the next layer sees the tensor after
    # QuantizeLinear (u8, zero point 0: the Relu) -> DequantizeLinear, so that is what is compared.
    seen = _after_qdq(int8)
    names = [tensor for _, _, tensor in layers]
    int8_names = [seen.get(tensor, tensor) for tensor in names]
    feeds = {INPUT_LATENT: draw_latents(n, contract.nz, seed)}
    if contract.conditional:
        feeds[INPUT_LABEL] = default_labels(n, contract.num_classes)
    ref = _run(_with_outputs(fp32, names), feeds, names)
    got = dict(zip(names, _run(_with_outputs(int8, int8_names), feeds, int8_names).values()))
    rows, previous = [], None
    for layer, op, tensor in layers:
        r, g = ref[tensor].astype(np.float64), got[tensor].astype(np.float64)
        span = float(np.abs(r).max()) or 1.0
        err = np.abs(g - r) / (span / 127.5)  # in steps of a u8 grid over [-span, span]
        p999 = float(np.percentile(err, 99.9))
        rows.append(
            {
                "layer": layer,
                "op": op,
                "tensor": tensor,
                "range": span,
                "err_p999": p999,
                "err_max": float(err.max()),
                "err_mean": float(err.mean()),
                "grows": p999 / previous if previous else None,
            }
        )
        previous = p999 or None
    return rows


def format_layer_errors(rows: list[dict[str, Any]]) -> str:
    """The per-layer figures as a markdown table."""
    lines = [
        "| layer | op | max abs | err p99.9 (steps) | err max (steps) | err mean | grows |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        grows = "-" if r["grows"] is None else f"{r['grows']:.2f}x"
        lines.append(
            f"| {r['layer']} | {r['op']} | {r['range']:.3g} | {r['err_p999']:.2f} | {r['err_max']:.2f} | "
            f"{r['err_mean']:.3f} | {grows} |"
        )
    return "\n".join(lines)
