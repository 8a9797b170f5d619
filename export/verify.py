"""Verification of an exported generator, kept apart from export (as optimum does): run every check, collect
every result, and only then raise a typed error carrying all the records.

The reference is a callable that runs the PyTorch generator on given latents (export/pipeline.py passes one);
this module itself needs only numpy, onnx and onnxruntime. Latents come from the contract rule
(edgegan.runtime.contract.draw_latents), at batch sizes other than the one the graph was traced with.

Checks (each yields a CheckRecord):
  onnx_checker         onnx.checker.check_model(full_check=True)                      (.onnx files)
  interface            input/output names, dtypes, shapes, dynamic axis named "batch"
  metadata             metadata_props exactly the contract's
  vs_torch_batch{n}    onnxruntime (CPU) against PyTorch at n = 1, 3, 17
  batch_invariance     image i of the batch of 17 == latent i run alone
  output_range         images finite and in [-1, 1] (float) or uint8 [batch, H, W, C]
  labels_full_range    every class label accepted, matches PyTorch, and changes the image (conditional only)
  reference_evaluator  onnx.reference.ReferenceEvaluator reproduces onnxruntime's images (.onnx files)
  vs_fp32_onnx         a variant against generator.onnx's own outputs (given a baseline, e.g. the .ort)
"""
from __future__ import annotations

import math

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgegan.runtime.contract import (
    BATCH_AXIS,
    INPUT_LABEL,
    INPUT_LATENT,
    OUTPUT_IMAGE,
    OUTPUT_UINT8_NHWC,
    GeneratorContract,
    default_labels,
    draw_latents,
    to_uint8_nhwc,
)
from edgegan.runtime.errors import EdgeganError

#: (z float32 [N, nz], labels int64 [N] | None) -> PyTorch images float32 [N, C, H, W]
ReferenceFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]

VERIFY_BATCHES = (1, 3, 17)  # none of them the export's example batch (edgegan.export.onnx.EXPORT_BATCH = 2)
VERIFY_SEED = 1234  # batch n uses draw_latents(n, nz, VERIFY_SEED + n)
REFERENCE_EVALUATOR_BATCH = 3  # the pure-Python evaluator is slow; one small batch is enough


@dataclass(frozen=True)
class Tolerance:
    """Error budget of one precision, in float units on the [-1, 1] image scale.

    vs_torch_max/mean: against the fp32 PyTorch generator. batch_invariance: image i of a batch vs alone.
    reference: onnx's ReferenceEvaluator vs onnxruntime on the same file. uint8 outputs are judged in levels:
    a pixel passes when some float within the budget of PyTorch's image rounds to it (see _compare_uint8).
    """

    vs_torch_max: float
    vs_torch_mean: float | None
    batch_invariance: float
    reference: float
    range_slack: float  # how far past [-1, 1] a float image may reach (Tanh approximations overshoot)


#: The one table of tolerances. fp32 is the issue's contract; fp16 has ~3 decimal digits (eps 9.8e-4, so
#: ~1e-3 per op over a few layers); int8 steps on [-1, 1] are ~2/255 = 7.8e-3 per quantized tensor.
#: onnxruntime's vectorized Tanh reaches 1 + 1.2e-7 (one float32 ulp) where PyTorch's stays at 1: hence fp32's
#: range slack of a few ulps. to_uint8_nhwc clips, so pixels never see it.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(vs_torch_max=1e-4, vs_torch_mean=None, batch_invariance=1e-5, reference=1e-4, range_slack=1e-6),
    "fp16": Tolerance(vs_torch_max=1e-2, vs_torch_mean=2e-3, batch_invariance=1e-3, reference=1e-2, range_slack=1e-3),
    "int8": Tolerance(vs_torch_max=5e-2, vs_torch_mean=1e-2, batch_invariance=1e-2, reference=5e-2,
                      range_slack=8e-3),
}
UINT8_LEVEL_SLACK = 1  # two runtimes may round a value sitting on .5 differently: one level


@dataclass
class CheckRecord:
    """One check's outcome with its figures; `unit` is "abs" (float error) or "levels" (uint8 pixels)."""

    name: str
    passed: bool
    max_err: float | None = None
    mean_err: float | None = None
    tolerance: float | None = None
    detail: str = ""
    kind: str = "numeric"  # "structure" (names, shapes, metadata, checker) or "numeric"
    unit: str = "abs"
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class VerificationError(EdgeganError, RuntimeError):
    """One or more checks failed; `records` holds every check's result, failed or not."""

    def __init__(self, variant: str, records: list[CheckRecord]):
        self.variant = variant
        self.records = records
        failed = [r for r in records if not r.passed]
        lines = [f"{variant}: {len(failed)} of {len(records)} verification checks failed:"]
        for r in failed:
            figures = "" if r.max_err is None else f" (max err {r.max_err:.3g} > tolerance {r.tolerance:.3g} {r.unit})"
            lines.append(f"  - {r.name}{figures}: {r.detail}")
        super().__init__("\n".join(lines))


class ShapeError(VerificationError):
    """A structural check failed: names, dtypes, shapes, batch axis, metadata or the ONNX checker."""


class AtolError(VerificationError):
    """Only numeric checks failed: the graph has the right interface but computes outside tolerance."""


def raise_for_records(variant: str, records: list[CheckRecord]) -> None:
    """Raise ShapeError if any structural check failed, else AtolError if any check failed; else return."""
    failed = [r for r in records if not r.passed]
    if not failed:
        return
    if any(r.kind == "structure" for r in failed):
        raise ShapeError(variant, records)
    raise AtolError(variant, records)


class CachedReference:
    """Memoizes the PyTorch reference so every variant is compared against one set of images."""

    def __init__(self, fn: ReferenceFn):
        self.fn = fn
        self._cache: dict[tuple[bytes, bytes | None], np.ndarray] = {}

    def __call__(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        key = (z.tobytes(), None if labels is None else labels.tobytes())
        if key not in self._cache:
            self._cache[key] = np.asarray(self.fn(z, labels), dtype=np.float32)
        return self._cache[key]


# ---------------------------------------------------------------------------------------------------------
# helpers


_ONNX_DTYPES = {1: "float32", 10: "float16", 7: "int64", 2: "uint8", 3: "int8", 6: "int32"}
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
               "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(int32)": "int32"}


def make_session(path: str | os.PathLike, threads: int = 0):
    """onnxruntime CPU session for a .onnx or .ort file (only the CPU provider: the reference runtime)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _inputs(contract: GeneratorContract, n: int, seed: int) -> dict[str, np.ndarray]:
    feeds = {INPUT_LATENT: draw_latents(n, contract.nz, seed)}
    if contract.conditional:
        feeds[INPUT_LABEL] = default_labels(n, contract.num_classes)
    return feeds


def _expected_interface(contract: GeneratorContract) -> dict[str, tuple[str, list]]:
    spec = {INPUT_LATENT: ("float32", [BATCH_AXIS, contract.nz])}
    if contract.conditional:
        spec[INPUT_LABEL] = ("int64", [BATCH_AXIS])
    c, h, w = contract.image_shape_nchw
    if contract.output == OUTPUT_UINT8_NHWC:
        spec[OUTPUT_IMAGE] = ("uint8", [BATCH_AXIS, h, w, c])
    else:
        spec[OUTPUT_IMAGE] = ("float32", [BATCH_AXIS, c, h, w])
    return spec


def _compare_float(out: np.ndarray, ref: np.ndarray, tol_max: float, tol_mean: float | None) -> tuple[bool, float, float, str]:
    if out.shape != ref.shape:
        return False, float("inf"), float("inf"), f"shape {out.shape} != expected {ref.shape}"
    err = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    if not np.isfinite(err).all():
        return False, float("inf"), float("inf"), "non-finite values in the output"
    mx, mean = float(err.max()), float(err.mean())
    ok = mx <= tol_max and (tol_mean is None or mean <= tol_mean)
    detail = f"mean err {mean:.3g}" + ("" if tol_mean is None else f" (mean tolerance {tol_mean:g})")
    return ok, mx, mean, detail


def _compare_uint8(out: np.ndarray, ref_float: np.ndarray, tol: float) -> tuple[bool, float, float, str]:
    """uint8 NHWC output vs PyTorch float NCHW: pass where some float within `tol` of PyTorch's rounds to it.

    to_uint8_nhwc is monotone, so that set is the range [quantize(ref - tol), quantize(ref + tol)].
    """
    expected = to_uint8_nhwc(ref_float)
    if out.shape != expected.shape or out.dtype != np.uint8:
        return False, float("inf"), float("inf"), f"{out.dtype} {out.shape} != expected uint8 {expected.shape}"
    lo, hi = to_uint8_nhwc(ref_float - tol), to_uint8_nhwc(ref_float + tol)
    levels = np.abs(out.astype(np.int32) - expected.astype(np.int32))
    outside = int(((out < lo) | (out > hi)).sum())
    off = int((levels > 0).sum())
    detail = f"{off} of {out.size} pixels differ from to_uint8_nhwc(torch); {outside} beyond the float budget {tol:g}"
    return outside == 0, float(levels.max()), float(levels.mean()), detail


def _run(session, feeds: dict[str, np.ndarray], chunk: int = 64) -> np.ndarray:
    names = {i.name for i in session.get_inputs()}
    feeds = {k: v for k, v in feeds.items() if k in names}
    n = len(next(iter(feeds.values())))
    parts = [session.run([OUTPUT_IMAGE], {k: v[i:i + chunk] for k, v in feeds.items()})[0] for i in range(0, n, chunk)]
    return np.concatenate(parts)


def _guard(name: str, kind: str, fn: Callable[[], CheckRecord]) -> CheckRecord:
    """Run one check; an exception becomes a failed record so the remaining checks still run."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - collected and reported, never swallowed silently
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return CheckRecord(name, False, detail=f"raised {type(exc).__name__}: {first}"[:500], kind=kind)


def _reference_opset(model):
    """onnx's ReferenceEvaluator implements (De)QuantizeLinear only from opset 19 (onnx 1.23); their int8/uint8
    semantics did not change from 13 to 19, so a Q/DQ graph below 19 is evaluated after onnx's version converter
    lifts it to 19. Returns (model to evaluate, note for the record)."""
    from onnx import version_converter

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
    if opset is None or opset >= 19 or not has_qdq:
        return model, ""
    return version_converter.convert_version(model, 19), f" (Q/DQ graph lifted from opset {opset} to 19 for onnx.reference)"


# ---------------------------------------------------------------------------------------------------------
# the checks


def check_onnx_checker(path: Path) -> CheckRecord:
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
    return CheckRecord("onnx_checker", True, detail="onnx.checker.check_model(full_check=True)", kind="structure")


def _interface_from_onnx(path: Path) -> tuple[dict[str, tuple[str, list]], list[str], list[str], dict[str, str]]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def describe(v) -> tuple[str, list]:
        t = v.type.tensor_type
        dims = [d.dim_param if d.dim_param else (d.dim_value if d.HasField("dim_value") else "?") for d in t.shape.dim]
        return _ONNX_DTYPES.get(t.elem_type, f"onnx type {t.elem_type}"), dims

    inits = {i.name for i in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in inits]
    found = {v.name: describe(v) for v in [*inputs, *model.graph.output]}
    meta = {p.key: p.value for p in model.metadata_props}
    return found, [v.name for v in inputs], [v.name for v in model.graph.output], meta


def _interface_from_session(session) -> tuple[dict[str, tuple[str, list]], list[str], list[str], dict[str, str]]:
    def describe(v) -> tuple[str, list]:
        return _ORT_DTYPES.get(v.type, v.type), [d if d is not None else "?" for d in v.shape]

    found = {v.name: describe(v) for v in [*session.get_inputs(), *session.get_outputs()]}
    meta = dict(session.get_modelmeta().custom_metadata_map)
    return found, [v.name for v in session.get_inputs()], [v.name for v in session.get_outputs()], meta


def check_interface(found: dict[str, tuple[str, list]], inputs: list[str], outputs: list[str],
                    contract: GeneratorContract) -> CheckRecord:
    expected = _expected_interface(contract)
    want_inputs = [k for k in expected if k != OUTPUT_IMAGE]
    problems = []
    if inputs != want_inputs:
        problems.append(f"inputs {inputs} != {want_inputs}")
    if outputs != [OUTPUT_IMAGE]:
        problems.append(f"outputs {outputs} != ['{OUTPUT_IMAGE}']")
    for name, (dtype, dims) in expected.items():
        if name not in found:
            continue
        got_dtype, got_dims = found[name]
        if got_dtype != dtype:
            problems.append(f"{name} is {got_dtype}, expected {dtype}")
        if got_dims != dims:
            problems.append(f"{name} has shape {got_dims}, expected {dims}")
    detail = "; ".join(problems) or ", ".join(f"{k} {d} {s}" for k, (d, s) in expected.items())
    return CheckRecord("interface", not problems, detail=detail, kind="structure")


def check_metadata(meta: dict[str, str], contract: GeneratorContract) -> CheckRecord:
    expected = contract.to_metadata()
    problems = [f"{k}: {meta.get(k)!r} != {v!r}" for k, v in expected.items() if meta.get(k) != v]
    extra = sorted(set(meta) - set(expected))
    if extra:
        problems.append(f"unexpected keys {extra}")
    try:
        GeneratorContract.from_metadata(meta)
    except EdgeganError as exc:
        problems.append(str(exc))
    detail = "; ".join(problems) or f"{len(expected)} contract keys match exactly"
    return CheckRecord("metadata", not problems, detail=detail[:1000], kind="structure")


@dataclass
class VariantVerification:
    """All records for one file plus the outputs other checks may reuse (e.g. the .ort vs generator.onnx)."""

    variant: str
    path: Path
    records: list[CheckRecord] = field(default_factory=list)
    outputs: dict[int, np.ndarray] = field(default_factory=dict)  # batch size -> images

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.records)

    def error_figures(self) -> tuple[float | None, float | None]:
        """(max, mean) error over the vs_torch checks: the variant's headline error."""
        rows = [r for r in self.records if r.name.startswith("vs_torch") and r.max_err is not None]
        if not rows:
            return None, None
        return max(r.max_err for r in rows), float(np.mean([r.mean_err for r in rows]))

    def raise_if_failed(self) -> None:
        raise_for_records(self.variant, self.records)


def verify_variant(
    path: str | os.PathLike,
    contract: GeneratorContract,
    reference: ReferenceFn,
    *,
    variant: str | None = None,
    baseline: VariantVerification | None = None,
    batches: tuple[int, ...] = VERIFY_BATCHES,
) -> VariantVerification:
    """Run every check on one exported file and collect the records (never raises for a failed check).

    Args:
        path: a .onnx or .ort file.
        contract: what the file must declare (precision and output form included); tolerances follow
            contract.precision.
        reference: PyTorch images for given latents and labels (see ReferenceFn); wrap it in CachedReference
            to share it between variants.
        variant: name used in records and errors (default: the file name).
        baseline: verification of generator.onnx; adds a vs_fp32_onnx check against its outputs.
        batches: batch sizes compared with PyTorch; the largest also feeds batch_invariance.

    Returns:
        VariantVerification; call .raise_if_failed() to turn failures into ShapeError / AtolError.
    """
    path = Path(path)
    tol = TOLERANCES[contract.precision]
    uint8 = contract.output == OUTPUT_UINT8_NHWC
    result = VariantVerification(variant or path.name, path)
    records = result.records
    is_onnx = path.suffix == ".onnx"

    if is_onnx:
        records.append(_guard("onnx_checker", "structure", lambda: check_onnx_checker(path)))
    try:
        session = make_session(path)
    except Exception as exc:  # noqa: BLE001 - nothing below can run; say why once
        records.append(CheckRecord("onnxruntime_load", False, detail=f"onnxruntime cannot load {path.name}: {exc}"[:500],
                                   kind="structure"))
        return result
    interface = _interface_from_onnx(path) if is_onnx else _interface_from_session(session)
    records.append(_guard("interface", "structure", lambda: check_interface(*interface[:3], contract)))
    records.append(_guard("metadata", "structure", lambda: check_metadata(interface[3], contract)))

    def compare(name: str, out: np.ndarray, ref: np.ndarray, tol_max: float, tol_mean: float | None) -> CheckRecord:
        if uint8:
            ok, mx, mean, detail = _compare_uint8(out, ref, tol_max)
            return CheckRecord(name, ok, mx, mean, tol_max, detail, unit="levels")
        ok, mx, mean, detail = _compare_float(out, ref, tol_max, tol_mean)
        return CheckRecord(name, ok, mx, mean, tol_max, detail)

    feeds_by_batch: dict[int, dict[str, np.ndarray]] = {}
    for n in batches:
        feeds = feeds_by_batch[n] = _inputs(contract, n, VERIFY_SEED + n)

        def vs_torch(n: int = n, feeds: dict = feeds) -> CheckRecord:
            out = result.outputs[n] = _run(session, feeds)
            return compare(f"vs_torch_batch{n}", out, reference(feeds[INPUT_LATENT], feeds.get(INPUT_LABEL)),
                           tol.vs_torch_max, tol.vs_torch_mean)

        records.append(_guard(f"vs_torch_batch{n}", "numeric", vs_torch))

    def batch_invariance() -> CheckRecord:
        n = max(batches)
        if n not in result.outputs:
            raise RuntimeError(f"no batch-{n} output to compare (see vs_torch_batch{n})")
        feeds = feeds_by_batch[n]
        alone = np.concatenate([_run(session, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(n)])
        batched = result.outputs[n]
        if uint8:
            levels = np.abs(alone.astype(np.int32) - batched.astype(np.int32))
            ok = int(levels.max()) <= UINT8_LEVEL_SLACK
            return CheckRecord("batch_invariance", ok, float(levels.max()), float(levels.mean()), UINT8_LEVEL_SLACK,
                               f"{n} images run alone vs in one batch of {n}", unit="levels")
        ok, mx, mean, detail = _compare_float(alone, batched, tol.batch_invariance, None)
        return CheckRecord("batch_invariance", ok, mx, mean, tol.batch_invariance,
                           f"{n} images run alone vs in one batch of {n}; " + detail)

    records.append(_guard("batch_invariance", "numeric", batch_invariance))

    def output_range() -> CheckRecord:
        if not result.outputs:
            raise RuntimeError("no outputs to inspect (every run failed)")
        images = [result.outputs[n] for n in sorted(result.outputs)]
        if uint8:
            ok = all(im.dtype == np.uint8 for im in images)
            return CheckRecord("output_range", ok, detail="uint8 [0, 255] by dtype" if ok else "output is not uint8")
        flat = np.concatenate([im.ravel() for im in images]).astype(np.float64)
        finite = bool(np.isfinite(flat).all())
        excess = float(np.max(np.abs(flat[np.isfinite(flat)]), initial=0.0) - 1.0)
        ok = finite and excess <= tol.range_slack
        return CheckRecord("output_range", ok, max(excess, 0.0), None, tol.range_slack,
                           f"min {flat.min():.4f}, max {flat.max():.4f}, finite: {finite}; declared [-1, 1]")

    records.append(_guard("output_range", "numeric", output_range))

    if contract.conditional:
        def labels_full_range() -> CheckRecord:
            k = contract.num_classes
            # One latent under every label: each label must run, match PyTorch and change the image.
            z = np.repeat(draw_latents(1, contract.nz, VERIFY_SEED), k, axis=0)  # [k, nz]
            labels = np.arange(k, dtype=np.int64)
            out = _run(session, {INPUT_LATENT: z, INPUT_LABEL: labels})
            rec = compare("labels_full_range", out, reference(z, labels), tol.vs_torch_max, tol.vs_torch_mean)
            distinct = len({im.tobytes() for im in out})
            rec.detail = f"labels 0..{k - 1} on one latent: {distinct} distinct images; " + rec.detail
            if k > 1 and distinct == 1:
                rec.passed = False
                rec.detail = "the label input does not change the image; " + rec.detail
            return rec

        records.append(_guard("labels_full_range", "numeric", labels_full_range))

    if is_onnx:
        def reference_evaluator() -> CheckRecord:
            import onnx
            from onnx.reference import ReferenceEvaluator

            n = REFERENCE_EVALUATOR_BATCH
            if n not in result.outputs:
                raise RuntimeError(f"no onnxruntime output at batch {n} to compare (see vs_torch_batch{n})")
            model = onnx.load(str(path))
            feeds = {k: v for k, v in _inputs(contract, n, VERIFY_SEED + n).items()
                     if k in {i.name for i in model.graph.input}}
            model, note = _reference_opset(model)
            out = np.asarray(ReferenceEvaluator(model).run([OUTPUT_IMAGE], feeds)[0])
            ort_out = result.outputs[n]
            if uint8:
                # The precision's float budget in pixel levels (fp32: 1 level; int8: requantization rounding in
                # onnxruntime's integer kernels vs the reference's float Q/DQ lands a few levels apart).
                slack = max(UINT8_LEVEL_SLACK, math.ceil(tol.reference * 127.5))
                levels = np.abs(out.astype(np.int32) - ort_out.astype(np.int32))
                ok = out.dtype == np.uint8 and out.shape == ort_out.shape and int(levels.max()) <= slack
                return CheckRecord("reference_evaluator", ok, float(levels.max()), float(levels.mean()),
                                   slack, f"onnx.reference vs onnxruntime at batch {n}{note}", unit="levels")
            ok, mx, mean, detail = _compare_float(out, ort_out, tol.reference, None)
            return CheckRecord("reference_evaluator", ok, mx, mean, tol.reference,
                               f"onnx.reference vs onnxruntime at batch {n}{note}; " + detail)

        records.append(_guard("reference_evaluator", "numeric", reference_evaluator))

    if baseline is not None:
        def vs_fp32_onnx() -> CheckRecord:
            shared = sorted(set(result.outputs) & set(baseline.outputs))
            if not shared:
                raise RuntimeError("no batch ran on both files")
            if uint8:
                levels = np.concatenate([np.abs(result.outputs[n].astype(np.int32) - baseline.outputs[n].astype(np.int32)).ravel()
                                         for n in shared])
                ok = int(levels.max()) <= UINT8_LEVEL_SLACK
                return CheckRecord("vs_fp32_onnx", ok, float(levels.max()), float(levels.mean()), UINT8_LEVEL_SLACK,
                                   f"against {baseline.path.name} at batches {shared}", unit="levels")
            out = np.concatenate([result.outputs[n].ravel() for n in shared])
            base = np.concatenate([baseline.outputs[n].ravel() for n in shared])
            ok, mx, mean, detail = _compare_float(out, base, tol.vs_torch_max, tol.vs_torch_mean)
            return CheckRecord("vs_fp32_onnx", ok, mx, mean, tol.vs_torch_max,
                               f"against {baseline.path.name} at batches {shared}; " + detail)

        records.append(_guard("vs_fp32_onnx", "numeric", vs_fp32_onnx))
    return result
