"""Calibration for export/int8_quantize.py: latents by the generator contract, float ranges of chosen tensors.

Calibration follows the generator contract: latents `draw_latents(n, nz, seed)` and, for a conditional model,
labels `default_labels(n, num_classes)`.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader

from edgegan.runtime.contract import INPUT_LABEL, INPUT_LATENT, GeneratorContract, default_labels, draw_latents
from edgegan.runtime.providers import session_options

CALIBRATION_BATCH = 32  # latents per calibration run: enough to fill the kernels, small in memory
_DATA_MOVEMENT = ("Unsqueeze", "Transpose", "Reshape", "Concat")


class ContractCalibration(CalibrationDataReader):
    """Calibration batches drawn by the contract's latent rule (one draw of n latents, split in batches)."""

    def __init__(self, contract: GeneratorContract, samples: int, seed: int, batch: int = CALIBRATION_BATCH):
        z = draw_latents(samples, contract.nz, seed)  # [n, nz]
        labels = default_labels(samples, contract.num_classes) if contract.conditional else None
        self._batches = []
        for start in range(0, samples, batch):
            feed = {INPUT_LATENT: z[start : start + batch]}
            if labels is not None:
                feed[INPUT_LABEL] = labels[start : start + batch]
            self._batches.append(feed)
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._batches):
            return None
        self._next += 1
        return self._batches[self._next - 1]

    def rewind(self) -> None:
        self._next = 0


def tensor_ranges(
    model: onnx.ModelProto, names: list[str], reader: ContractCalibration
) -> dict[str, tuple[float, float]]:
    """(min, max) of each named float tensor over all calibration batches, from one fp32 pass; both include 0.

    Args:
        model: a float model (not modified: the tensors are exposed on a copy).
        names: tensors to measure (graph inputs or node outputs).
        reader: calibration batches; rewound before and after.
    """
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    outputs = {o.name for o in probe.graph.output}
    for name in names:
        if name not in outputs:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])
    lo = {name: 0.0 for name in names}
    hi = {name: 0.0 for name in names}
    reader.rewind()
    for feed in iter(reader.get_next, None):
        for name, value in zip(names, session.run(names, feed)):
            lo[name], hi[name] = min(lo[name], float(value.min())), max(hi[name], float(value.max()))
    reader.rewind()
    return {name: (lo[name], hi[name]) for name in names}


def shared_concat_ranges(model: onnx.ModelProto, reader: ContractCalibration) -> dict[str, list[dict]]:
    """One u8 range for all the tensors a Concat joins (through data movement), from an fp32 calibration pass.

    The "phases" sub-pixel form computes a layer as four Convs whose outputs are interleaved by Concat. Each Conv
    output calibrated on its own gets its own u8 scale, and the int8 Concat then requantizes three of them to
    the joint scale: a second rounding. Calibrating the four on their union range puts them on the joint grid
    from the start, so the layer is quantized exactly as the one-Conv "crop" form would be (measured: mean error
    -10%, max error -15% at 64x64).

    Args:
        model: the fp32 model about to be quantized.
        reader: calibration batches (rewound afterwards).

    Returns:
        quantize_static TensorQuantOverrides: tensor name -> [{"rmin", "rmax"}], empty when there is no Concat.
    """
    producers = {o: n for n in model.graph.node for o in n.output}
    # Nested Concats (the phases form joins pairs, then the pairs) share tensors: they are merged into one grid, so
    # the inner Concats' outputs get that grid too. Else each inner output is calibrated on its own (a narrower
    # range: another scale), and onnxruntime's QLinearConcat then requantizes every byte through a lookup table
    # instead of copying (measured 1.9 vs 0.8 ms per call at batch 64, 1 thread, AVX2).
    merged: list[tuple[set[str], set[str]]] = []  # (computed sources, every tensor on the grid: sources + moved)
    for node in model.graph.node:
        if node.op_type != "Concat":
            continue
        sources, tensors, stack = set(), {node.output[0]}, list(node.input)
        while stack:  # back through Unsqueeze/Transpose/Reshape/Concat to the computed tensors
            name = stack.pop()
            producer = producers.get(name)
            if producer is not None and producer.op_type in _DATA_MOVEMENT:
                tensors.add(name)
                stack.extend(producer.input if producer.op_type == "Concat" else producer.input[:1])
            else:
                sources.add(name)
        if len(sources) < 2 or not all(name in producers for name in sources):
            continue
        tensors |= sources
        for other in [m for m in merged if m[1] & tensors]:
            merged.remove(other)
            sources, tensors = sources | other[0], tensors | other[1]
        merged.append((sources, tensors))
    if not merged:
        return {}
    ranges = tensor_ranges(model, sorted({name for sources, _ in merged for name in sources}), reader)
    overrides: dict[str, list[dict]] = {}
    for sources, tensors in merged:
        rmin, rmax = min(ranges[name][0] for name in sources), max(ranges[name][1] for name in sources)
        for name in sorted(tensors):  # identical float32 bounds -> bitwise identical scales and zero points
            overrides[name] = [{"rmin": np.float32(rmin), "rmax": np.float32(rmax)}]
    return overrides
