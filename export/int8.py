"""Static int8 (QDQ) quantization of an exported generator, in the form onnxruntime's CPU provider runs fast.

onnxruntime's CPU provider has no int8 ConvTranspose kernel: a QDQ ConvTranspose runs dequantize -> fp32
ConvTranspose -> quantize, slower than plain fp32 (REFERENCE.md). So the model is first rewritten exactly into
its sub-pixel form (`edgegan.export.graph_forms.to_subpixel`: every stride-2 upsampling ConvTranspose becomes 2x2
Convs, the first layer a Gemm), whose Convs run as QLinearConv (and the Gemm, if quantized, as QGemm) on u8
activations and s8 per-channel weights. By default the first layer (it reads z) and the image layer stay float.

Calibration follows the generator contract: latents `draw_latents(n, nz, seed)` and, for a conditional model,
labels `default_labels(n, num_classes)`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

from edgegan.export.graph_forms import IMAGE_LAYER_CHANNELS, LAYOUTS, SUBPIXEL_FORMS, to_subpixel
from edgegan.runtime.contract import (
    INPUT_LABEL, INPUT_LATENT, KEY_PRECISION, GeneratorContract, default_labels, draw_latents,
)
from edgegan.runtime.errors import EdgeganError

CALIBRATION_BATCH = 32  # latents per calibration run: enough to fill the kernels, small in memory
CALIBRATION_METHODS = ("MinMax", "Percentile", "Entropy")
# Measured defaults (benchmarks/results/graph_forms.md): see build_int8.
DEFAULT_FORM = "phases"
DEFAULT_LAYOUT = "nhwc"
DEFAULT_FLOAT_LAYERS = ("first", "last")


class Int8Error(EdgeganError):
    """The int8 variant cannot be built from this model (bad file, unsupported graph, bad option)."""


class ContractCalibration(CalibrationDataReader):
    """Calibration batches drawn by the contract's latent rule (one draw of n latents, split in batches)."""

    def __init__(self, contract: GeneratorContract, samples: int, seed: int, batch: int = CALIBRATION_BATCH):
        z = draw_latents(samples, contract.nz, seed)  # [n, nz]
        labels = default_labels(samples, contract.num_classes) if contract.conditional else None
        self._batches = []
        for start in range(0, samples, batch):
            feed = {INPUT_LATENT: z[start:start + batch]}
            if labels is not None:
                feed[INPUT_LABEL] = labels[start:start + batch]
            self._batches.append(feed)
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._batches):
            return None
        self._next += 1
        return self._batches[self._next - 1]

    def rewind(self) -> None:
        self._next = 0


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


def quantize_model(model: onnx.ModelProto, contract: GeneratorContract, out_path: Path, *,
                   calibration_samples: int = 256, calibration_seed: int = 1234, per_channel: bool = True,
                   keep_float: list[str] | None = None, method: str = "MinMax",
                   percentile: float = 99.999) -> None:
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
            src, out_path, reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,  # u8 x s8 is the VNNI / AVX2 fast path of MLAS
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            nodes_to_exclude=list(keep_float or []),
            calibrate_method=CalibrationMethod[method],
            extra_options=extra,
        )


_DATA_MOVEMENT = ("Unsqueeze", "Transpose", "Reshape", "Concat")


def shared_concat_ranges(model: onnx.ModelProto, reader: ContractCalibration) -> dict[str, list[dict]]:
    """One u8 range for all the tensors a Concat joins (through data movement), from an fp32 calibration pass.

    The "phases" sub-pixel form computes a layer as four Convs whose outputs are interleaved by Concat. Each Conv
    output calibrated on its own gets its own u8 scale, and the int8 Concat then requantizes three of them to
    the joint scale: a second rounding. Calibrating the four on their union range puts them on the joint grid
    from the start, so the layer is quantized exactly as the one-Conv "crop" form would be (measured: mean error
    -10%, max error -15% at 64x64).

    Args:
        model: the fp32 model about to be quantized.
        reader: calibration batches (rewound by the caller afterwards).

    Returns:
        quantize_static TensorQuantOverrides: tensor name -> [{"rmin", "rmax"}], empty when there is no Concat.
    """
    producers = {o: n for n in model.graph.node for o in n.output}
    groups: list[list[str]] = []
    for node in model.graph.node:
        if node.op_type != "Concat":
            continue
        sources, stack = [], list(node.input)
        while stack:  # back through Unsqueeze/Transpose/Reshape/Concat to the computed tensors
            name = stack.pop()
            producer = producers.get(name)
            if producer is not None and producer.op_type in _DATA_MOVEMENT:
                stack.extend(producer.input if producer.op_type == "Concat" else producer.input[:1])
            else:
                sources.append(name)
        if len(sources) > 1 and all(name in producers for name in sources):
            groups.append(sources)
    if not groups:
        return {}
    names = sorted({name for group in groups for name in group})
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    lo = {name: 0.0 for name in names}  # u8 ranges always include 0
    hi = {name: 0.0 for name in names}
    reader.rewind()
    for feed in iter(reader.get_next, None):
        for name, value in zip(names, session.run(names, feed)):
            lo[name], hi[name] = min(lo[name], float(value.min())), max(hi[name], float(value.max()))
    overrides: dict[str, list[dict]] = {}
    for group in groups:
        rmin, rmax = min(lo[name] for name in group), max(hi[name] for name in group)
        for name in group:
            overrides[name] = [{"rmin": np.float32(rmin), "rmax": np.float32(rmax)}]
    return overrides


def first_layer_nodes(model: onnx.ModelProto) -> list[str]:
    """Name of the first weighted node (Conv/ConvTranspose/Gemm/MatMul) in graph order: the one reading z.

    Keeping it in float keeps z itself in float: a u8 grid over the latents' range (about +-4.5) adds noise of up
    to ~0.018 to every latent, which the whole generator then amplifies.
    """
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            return [node.name]
    return []


def build_int8(fp32_path: Path, out_path: Path, contract: GeneratorContract, *, calibration_samples: int = 256,
               calibration_seed: int = 1234, per_channel: bool = True, form: str = DEFAULT_FORM,
               layout: str = DEFAULT_LAYOUT, float_layers: tuple[str, ...] = DEFAULT_FLOAT_LAYERS,
               method: str = "MinMax") -> dict[str, Any]:
    """Build `generator.int8.onnx` from the fp32 export: sub-pixel form, static QDQ, atomic write.

    The defaults are the measured best on onnxruntime's CPU provider (benchmarks/graph_forms.py, int8 rows of
    benchmarks/results/graph_forms.md): sub-pixel "phases" form interleaved channels-last, the first layer
    (reads z) and the image layer (feeds Tanh; stays a ConvTranspose) in float, everything between int8.
    DCGAN 28x28 with trained weights, 1 thread, one interleaved run (medians of 12 rounds):

    | int8 variant | batch 1 ms | batch 64 ms | max / mean abs error vs torch |
    | --- | ---: | ---: | --- |
    | naive fp32 export (reference) | 0.80 | 50.7 | 9e-7 / 1e-7 |
    | optimized fp32 (graph_forms.optimize_fp32) | 0.54 | 31.4 | 8e-7 / 1e-7 |
    | QDQ on the ConvTranspose graph (no int8 kernel: slower than fp32) | 1.22 | 57.8 | 5.7e-2 / 6.2e-3 |
    | REFERENCE.md's 3x3 form, every layer int8 | 0.44 | 23.0 | 5.1e-2 / 6.0e-3 |
    | this default | 0.24 | 12.1 | 1.8e-2 / 1.9e-3 |
    | same, z and the first Gemm int8 too | 0.26 | 10.9 | 5.0e-2 / 4.2e-3 |

    So int8 here is 0.30x / 0.24x the naive fp32 latency and 0.45x / 0.39x the optimized fp32 one. At 64x64
    (random-init weights scaled to the full output range): 0.69 ms / 41.0 ms, 0.27x / 0.29x naive fp32, error
    7.3e-2 / 7.0e-3. Keeping z in float costs ~10% at batch 64 and nothing at batch 1, and halves the error.

    Args:
        fp32_path: the verified fp32 `generator.onnx`.
        out_path: where to write the int8 model (temp file in the same folder, then os.replace).
        contract: the generator contract; written back with precision "int8".
        calibration_samples: number of contract latents used to calibrate activation ranges.
        calibration_seed: seed of those latents.
        per_channel: per-output-channel weight scales (the right axis for each op type).
        form: sub-pixel arrangement (edgegan.export.graph_forms.SUBPIXEL_FORMS).
        layout: phase interleave layout (edgegan.export.graph_forms.LAYOUTS).
        float_layers: any of "first" (the layer reading z) and "last" (the image layer) to keep in float.
        method: calibration method, "MinMax", "Percentile" or "Entropy".

    Returns:
        Info for the export report: form, quantized op counts, calibration method, ops left in float.

    Raises:
        Int8Error: unreadable fp32 model, bad option.
    """
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if calibration_samples <= 0:
        raise Int8Error(f"calibration samples must be positive, got {calibration_samples}")
    unknown = set(float_layers) - {"first", "last"}
    if unknown or form not in SUBPIXEL_FORMS or layout not in LAYOUTS or method not in CALIBRATION_METHODS:
        raise Int8Error(f"bad int8 option: form {form!r} (one of {SUBPIXEL_FORMS}), layout {layout!r} "
                        f"(one of {LAYOUTS}), float_layers {tuple(float_layers)!r} (first, last), "
                        f"method {method!r} (one of {CALIBRATION_METHODS})")
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
    keep_float = []
    if "first" in float_layers:
        keep_float += first_layer_nodes(model)
    if "last" in float_layers:
        keep_float += [n for n in final_layer_nodes(model) if n not in keep_float]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=out_path.name + ".", suffix=".tmp", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        quantize_model(model, contract, tmp, calibration_samples=calibration_samples,
                       calibration_seed=calibration_seed, per_channel=per_channel, keep_float=keep_float,
                       method=method)
        quantized = onnx.load(tmp)
        _set_metadata(quantized, fp32, contract)
        onnx.save(quantized, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    ops = {n.name: n.op_type for n in quantized.graph.node}
    return {
        "form": f"sub-pixel {form}/{layout}: stride-2 ConvTranspose -> 2x2 Conv(s) + phase interleave; "
                "first layer Gemm" + ("; image layer kept as ConvTranspose" if keep_last_ct else ""),
        "format": "QDQ, u8 activations, s8 weights" + (", per-channel" if per_channel else ", per-tensor"),
        "calibration": {"method": method, "samples": calibration_samples, "seed": calibration_seed,
                        "latents": "draw_latents(n, nz, seed)" + (", default_labels" if contract.conditional else "")},
        "quantized_ops": _quantized_op_counts(quantized),
        "float_ops": [f"{name} ({ops.get(name, '?')})" for name in keep_float],
        "float_layers": list(float_layers),
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
        if node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") and len(node.input) > 1 \
                and node.input[1] in dq_outputs:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
