"""Static int8 quantization of an exported generator, in the form onnxruntime's CPU provider runs fast.

onnxruntime's CPU provider has no int8 ConvTranspose kernel: a QDQ ConvTranspose runs dequantize -> fp32
ConvTranspose -> quantize, slower than plain fp32 (docs/reference_figures.md). So the model is first rewritten exactly into
its sub-pixel form (`edgegan.export.graph_forms.to_subpixel`: every stride-2 upsampling ConvTranspose becomes 2x2
Convs, the first layer a Gemm), whose Convs run as QLinearConv on u8 activations and s8 per-channel weights
(QDQ, quantize_static). The first layer, which reads z and holds most of a DCGAN's weights (100 x 12,544 at
28x28), becomes an exact u8 x u8 integer Gemm with z kept to ~6e-5 (export/int8_gemm.py says why not QGemm).
By default only the image layer stays float; build_int8 names every float layer left, with the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

from edgegan.export.graph_forms import IMAGE_LAYER_CHANNELS, LAYOUTS, SUBPIXEL_FORMS, to_subpixel
from edgegan.export.int8_calibration import (  # noqa: F401 - ContractCalibration is part of this module's API
    CALIBRATION_BATCH,
    ContractCalibration,
    shared_concat_ranges,
    tensor_ranges,
)
from edgegan.export.int8_gemm import gemm_operands, integer_gemm
from edgegan.runtime.contract import KEY_PRECISION, GeneratorContract
from edgegan.runtime.errors import EdgeganError

CALIBRATION_METHODS = ("MinMax", "Percentile", "Entropy")
# Measured defaults (benchmarks/results/graph_forms.md, benchmarks/results/int8/README.md): see build_int8.
DEFAULT_FORM = "phases"
DEFAULT_LAYOUT = "nhwc"
DEFAULT_FLOAT_LAYERS = ("last",)
FIRST_LAYER_PASSES = 2  # z on a u8 grid plus its rounding residual: see export/int8_gemm.py
CALIBRATION_SAMPLES = 256  # 2048 measured: max error about the same, mean +6-28% (wider ranges, coarser grids)
# z is standard normal by the contract: a bound from calibration latents (max |z| ~4.1 over 256 x 100 draws) clipped
# the rarer large values of other latents, and the first layer spread that error over the whole image: the largest
# error of the Fashion-MNIST DCGAN fixture fell from 21 to 11 levels (0.163 -> 0.084; 22 -> 6 at its epoch 1) with
# this bound (benchmarks/results/int8/explain.md). The first layer's grid covers at least +-LATENT_BOUND (P(|z| > 5.5) ~ 4e-8
# per value); its two passes keep z exact to ~3e-4.
LATENT_BOUND = 5.5
_WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")


class Int8Error(EdgeganError):
    """The int8 variant cannot be built from this model (bad file, unsupported graph, bad option)."""


def final_layer_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv/Gemm nodes whose output reaches the graph output through data movement only.

    These compute the image itself (before Tanh); keeping them in float removes the output's quantization
    step (1/255 of the [-1, 1] range at best) for a small share of the work.
    """
    producers = {o: n for n in model.graph.node for o in n.output}
    passthrough = {"Tanh", "Sigmoid", "DepthToSpace", "Slice", "Reshape", "Transpose", "Concat", "Unsqueeze"}
    found: list[str] = []
    stack = [o.name for o in model.graph.output]
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        node = producers.get(name)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in ("Conv", "Gemm", "MatMul", "ConvTranspose"):
            found.append(node.name)
        elif node.op_type in passthrough:
            stack.extend(i for i in node.input if i in producers)
    return found


def quantize_model(
    model: onnx.ModelProto,
    contract: GeneratorContract,
    out_path: Path,
    *,
    calibration_samples: int = CALIBRATION_SAMPLES,
    calibration_seed: int = 1234,
    per_channel: bool = True,
    keep_float: list[str] | None = None,
    method: str = "MinMax",
    percentile: float = 99.999,
) -> None:
    """quantize_static in QDQ format: u8 activations, s8 weights (per output channel when `per_channel`).

    Args:
        model: the fp32 model to quantize (any form); its nodes must be named.
        contract: the generator contract (nz, classes) the calibration latents follow.
        out_path: where the QDQ model is written (not atomically: callers write to a temp path).
        calibration_samples: number of calibration latents.
        calibration_seed: seed of the contract latent rule for calibration.
        per_channel: per-output-channel weight scales.
        keep_float: node names left in float.
        method: calibration method: "MinMax", "Percentile" or "Entropy".
        percentile: the percentile of |activation| kept by the "Percentile" method.
    """
    extra: dict[str, Any] = {
        # ConvTranspose weights are [Cin, Cout, kH, kW]: the output channel is axis 1. After the sub-pixel
        # rewrite every Conv weight is [Cout, Cin, kH, kW] (axis 0); Gemm weights [K, N] are per column (axis 1).
        "QDQOpTypePerChannelSupportToAxis": {"ConvTranspose": 1, "Conv": 0, "Gemm": 1, "MatMul": 1},
    }
    if method == "Percentile":
        extra["CalibPercentile"] = percentile
    reader = ContractCalibration(contract, calibration_samples, calibration_seed)
    shared = shared_concat_ranges(model, reader)
    if shared:
        extra["TensorQuantOverrides"] = shared
    reader.rewind()
    with tempfile.TemporaryDirectory(prefix="edgegan-int8-") as tmp:
        src = Path(tmp) / "fp32.onnx"
        onnx.save(model, src)
        quantize_static(
            src,
            out_path,
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,  # u8 x s8 is the VNNI / AVX2 fast path of MLAS
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            nodes_to_exclude=list(keep_float or []),
            calibrate_method=CalibrationMethod[method],
            extra_options=extra,
        )


def first_layer_nodes(model: onnx.ModelProto) -> list[str]:
    """Name of the first weighted node (Conv/ConvTranspose/Gemm/MatMul) in graph order: the one reading z.

    quantize_static leaves it in float; build_int8 then rewrites it as an exact integer Gemm (export/int8_gemm.py)
    that keeps z's precision, unless float_layers keeps it float.
    """
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            return [node.name]
    return []


def build_int8(
    fp32_path: Path,
    out_path: Path,
    contract: GeneratorContract,
    *,
    calibration_samples: int = CALIBRATION_SAMPLES,
    calibration_seed: int = 1234,
    per_channel: bool = True,
    form: str = DEFAULT_FORM,
    layout: str = DEFAULT_LAYOUT,
    float_layers: tuple[str, ...] = DEFAULT_FLOAT_LAYERS,
    method: str = "MinMax",
    first_layer_passes: int = FIRST_LAYER_PASSES,
) -> dict[str, Any]:
    """Build `generator.int8.onnx` from the fp32 export: sub-pixel form, int8 weights, atomic write.

    The defaults are the measured best on onnxruntime's CPU provider (benchmarks/results/int8/README.md; the
    forms in benchmarks/results/graph_forms.md): sub-pixel "phases" form interleaved channels-last, the first
    layer an exact u8 x u8 integer Gemm in two passes, the upsampling Convs QDQ int8, the image layer (feeds
    Tanh; stays a ConvTranspose) in float. Trained DCGAN 28x28 (Fashion-MNIST), `edgegan bench`, 2-core AVX2
    machine at load average ~4.5 (two interleaved runs; benchmarks/results/int8/README.md):

    | | file | batch 1, 1 / 2 threads | batch 64, 1 / 2 threads | max / mean abs error vs torch |
    | --- | ---: | ---: | ---: | --- |
    | before: first layer float | 0.78x fp32 | 0.55 / 0.68 (issue 14) | 0.53 / 0.55 (issue 14) | |
    | this default | 0.27x fp32 | 0.38-0.44 / 0.38-0.47 | 0.51-0.52 / 0.35-0.53 | 2.1e-2 / 2.3e-3 |

    Measured on the same graph at 28x28 (random weights): one pass for z (7-bit grid) doubles the mean error for
    ~10% at batch 1; the image layer quantized as sub-pixel Convs is slower (0.61x vs 0.41x fp32 at batch 1, 0.66x vs 0.58x at 64)
    and puts the image on a u8 grid; the first layer as quantize_static's QGemm saturates on AVX2 (int8_gemm.py).

    Args:
        fp32_path: the verified fp32 `generator.onnx`.
        out_path: where to write the int8 model (temp file in the same folder, then os.replace).
        contract: the generator contract; written back with precision "int8".
        calibration_samples: number of contract latents used to calibrate activation ranges.
        calibration_seed: seed of those latents.
        per_channel: per-output-channel weight scales for the QDQ layers (the right axis for each op type).
        form: sub-pixel arrangement (edgegan.export.graph_forms.SUBPIXEL_FORMS).
        layout: phase interleave layout (edgegan.export.graph_forms.LAYOUTS).
        float_layers: any of "first" (the layer reading z) and "last" (the image layer) to keep in float.
        method: calibration method of the QDQ layers, "MinMax", "Percentile" or "Entropy".
        first_layer_passes: 2 (z exact to ~6e-5) or 1 (z on one u8 grid) for the integer first layer.

    Returns:
        Info for the export report: form, quantized op counts, calibration, the first layer's form, and
        `float_ops`: each layer left in float as "name (op type): reason".

    Raises:
        Int8Error: unreadable fp32 model, bad option.
    """
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if calibration_samples <= 0:
        raise Int8Error(f"calibration samples must be positive, got {calibration_samples}")
    unknown = set(float_layers) - {"first", "last"}
    if (
        unknown
        or form not in SUBPIXEL_FORMS
        or layout not in LAYOUTS
        or method not in CALIBRATION_METHODS
        or first_layer_passes not in (1, 2)
    ):
        raise Int8Error(
            f"bad int8 option: form {form!r} (one of {SUBPIXEL_FORMS}), layout {layout!r} "
            f"(one of {LAYOUTS}), float_layers {tuple(float_layers)!r} (first, last), "
            f"method {method!r} (one of {CALIBRATION_METHODS}), "
            f"first_layer_passes {first_layer_passes!r} (1 or 2)"
        )
    try:
        fp32 = onnx.load(fp32_path)
    except Exception as exc:  # noqa: BLE001 - missing file, not protobuf, truncated: all the user's to fix
        raise Int8Error(f"cannot read the fp32 model {fp32_path}: {exc}; export it again") from exc
    # An image layer kept in float stays a ConvTranspose: cheaper than its 1-3 channel sub-pixel Conv.
    keep_last_ct = "last" in float_layers
    model = to_subpixel(fp32, form, layout, min_out_channels=IMAGE_LAYER_CHANNELS if keep_last_ct else 1)
    for i, node in enumerate(model.graph.node):  # quantize_static addresses nodes by name
        if not node.name:
            node.name = f"node_{i}_{node.op_type}"
    last = final_layer_nodes(model)
    first = [n for n in first_layer_nodes(model) if n not in last]
    reasons = {name: _last_reason(model, name) for name in last} if "last" in float_layers else {}
    if "first" in float_layers:
        reasons.update({name: "kept float by float_layers=('first', ...)" for name in first})
    integer_first = [] if "first" in float_layers else _integer_gemm_nodes(model, first, reasons)
    reader = ContractCalibration(contract, calibration_samples, calibration_seed)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=out_path.name + ".", suffix=".tmp", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # quantize_static leaves the first layer float too; it becomes an integer Gemm right after.
        quantize_model(
            model,
            contract,
            tmp,
            calibration_samples=calibration_samples,
            calibration_seed=calibration_seed,
            per_channel=per_channel,
            keep_float=[*reasons, *integer_first],
            method=method,
        )
        quantized = onnx.load(tmp)
        first_info = _rewrite_first_layer(quantized, model, integer_first, reader, first_layer_passes)
        _set_metadata(quantized, fp32, contract)
        onnx.save(quantized, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    ops = {n.name: n.op_type for n in model.graph.node}
    counts = _quantized_op_counts(quantized)
    for name in integer_first:  # the integer Gemm(s): MatMulInteger pass(es) in the file
        counts[ops[name]] = counts.get(ops[name], 0) + 1
    return {
        "form": f"sub-pixel {form}/{layout}: stride-2 ConvTranspose -> 2x2 Conv(s) + phase interleave; "
        "first layer Gemm" + ("; image layer kept as ConvTranspose" if keep_last_ct else ""),
        "format": "QDQ, u8 activations, s8 weights" + (", per-channel" if per_channel else ", per-tensor"),
        "calibration": {
            "method": method,
            "samples": calibration_samples,
            "seed": calibration_seed,
            "latents": "draw_latents(n, nz, seed)" + (", default_labels" if contract.conditional else ""),
        },
        "quantized_ops": counts,
        "first_layer": first_info,
        "float_ops": [f"{name} ({ops.get(name, '?')}): {reason}" for name, reason in reasons.items()],
        "float_layers": list(float_layers),
    }


def _last_reason(model: onnx.ModelProto, name: str) -> str:
    """Why the image layer stays float, with its share of the model's weights."""
    sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    node = next(n for n in model.graph.node if n.name == name)
    weights = sizes.get(node.input[1], 0) if len(node.input) > 1 else 0
    total = sum(
        sizes[n.input[1]]
        for n in model.graph.node
        if n.op_type in _WEIGHTED and len(n.input) > 1 and n.input[1] in sizes
    )
    why = (
        "no int8 ConvTranspose kernel on the CPU provider and, as a sub-pixel Conv, its few output channels "
        "measured slower (benchmarks/results/int8/README.md)"
        if node.op_type == "ConvTranspose"
        else "float_layers keeps it"
    )
    return (
        f"image layer ({weights:,} weights, {100 * weights / max(total, 1):.1f}% of the model): {why}; in float "
        "the image gets no u8 grid before Tanh"
    )


def _integer_gemm_nodes(model: onnx.ModelProto, first: list[str], reasons: dict[str, str]) -> list[str]:
    """The first-layer nodes the integer Gemm rewrite handles; the others get their reason in `reasons`."""
    nodes = {n.name: n for n in model.graph.node}
    handled = []
    for name in first:
        if nodes[name].op_type in ("Gemm", "MatMul") and gemm_operands(model, nodes[name]) is not None:
            handled.append(name)
        else:
            reasons[name] = f"first layer is a {nodes[name].op_type} the integer Gemm rewrite does not handle"
    return handled


def _rewrite_first_layer(
    quantized: onnx.ModelProto, fp32: onnx.ModelProto, names: list[str], reader: ContractCalibration, passes: int
) -> dict[str, Any] | None:
    """Replace the float first-layer Gemm(s) of the quantized model by integer Gemms calibrated on `fp32`."""
    if not names:
        return None
    inputs = {n.name: n.input[0] for n in fp32.graph.node if n.name in names}
    ranges = tensor_ranges(fp32, sorted(set(inputs.values())), reader)
    done = {}
    for name in names:
        lo, hi = ranges[inputs[name]]
        done[name] = integer_gemm(quantized, name, max(-lo, hi, LATENT_BOUND), passes)
    return {
        "form": "MatMulInteger: u8 input on a 7-bit grid (zero point 64) x s8 weights (per-column scales), "
        "float output",
        "passes": passes,
        "nodes": done,
    }


def _set_metadata(model: onnx.ModelProto, fp32: onnx.ModelProto, contract: GeneratorContract) -> None:
    """The fp32 model's metadata_props with precision set to int8."""
    meta = {p.key: p.value for p in fp32.metadata_props}
    meta.update({k: v for k, v in contract.to_metadata().items() if k not in meta})
    meta[KEY_PRECISION] = "int8"
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)


def _quantized_op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Conv/Gemm/MatMul nodes whose weight comes through DequantizeLinear, by op type."""
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if (
            node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")
            and len(node.input) > 1
            and node.input[1] in dq_outputs
        ):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
