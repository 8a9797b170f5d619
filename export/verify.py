"""Verification of an exported generator, kept apart from export (as optimum does): run every check, collect
every result, and only then raise a typed error carrying all the records.

The reference is a callable that runs the PyTorch generator on given latents (export/pipeline.py passes one);
this module itself needs only numpy, onnx and onnxruntime. Latents come from the contract rule
(edgegan.runtime.contract.draw_latents), at batch sizes other than the one the graph was traced with.

Checks (each yields a CheckRecord):
  onnx_checker         onnx.checker.check_model(full_check=True)                      (.onnx files)
  interface            input/output names, dtypes, shapes, dynamic axis named "batch": contract.io_spec()
  metadata             metadata_props exactly the contract's
  vs_torch_batch{n}    onnxruntime (CPU) against PyTorch at n = 1, 3, 17
  batch_invariance     image i of the batch of 17 == latent i run alone
  output_range         images finite and in [-1, 1] (float) or uint8 [batch, H, W, C]
  labels_full_range    every class label accepted, matches PyTorch, and changes the image (conditional only)
  reference_evaluator  onnx.reference.ReferenceEvaluator reproduces onnxruntime's images (.onnx files)
  vs_fp32_onnx         a variant against generator.onnx's own outputs (given a baseline, e.g. the .ort)
  pixel_levels         lossy precisions only: PIXEL_LEVELS_BATCH images' level errors against PyTorch, judged by
                       p99.9, share over k levels and worst image mean (edgegan.export.pixel_levels)

A lossy precision (a tolerance with a level budget: fp16, int8) has its vs_torch and labels checks judged in pixel
levels too (the worst image's mean level error: a figure that means the same at batch 1 as at 17), the other
figures recorded; its float max/mean error is recorded beside them. fp32 and the lossless forms keep the strict
float rule.

The first three live in export/verify_structure.py; CheckRecord, the tolerance table and the errors in
export/check_records.py (importable from here too).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import version_converter
from onnx.reference import ReferenceEvaluator

from edgegan.export.check_records import (
    TOLERANCES,
    UINT8_LEVEL_SLACK,
    AtolError,
    CheckRecord,
    ShapeError,
    Tolerance,
    VerificationError,
    raise_for_records,
)
from edgegan.export.pixel_levels import LevelBudget, describe, judge, level_errors, level_figures
from edgegan.export.verify_structure import (
    check_interface,
    check_metadata,
    check_onnx_checker,
    interface_from_onnx,
    interface_from_session,
)
from edgegan.runtime.contract import (
    INPUT_LABEL,
    INPUT_LATENT,
    OUTPUT_IMAGE,
    OUTPUT_UINT8_NHWC,
    GeneratorContract,
    default_labels,
    draw_latents,
    to_uint8_nhwc,
)
from edgegan.runtime.errors import exception_summary
from edgegan.runtime.providers import session_options

__all__ = [
    "TOLERANCES",
    "UINT8_LEVEL_SLACK",
    "AtolError",
    "CachedReference",
    "CheckRecord",
    "ReferenceFn",
    "ShapeError",
    "Tolerance",
    "VariantVerification",
    "VerificationError",
    "make_session",
    "raise_for_records",
    "verify_variant",
]

#: (z float32 [N, nz], labels int64 [N] | None) -> PyTorch images float32 [N, C, H, W]
ReferenceFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]

VERIFY_BATCHES = (1, 3, 17)  # none of them the export's example batch (edgegan.export.onnx.EXPORT_BATCH = 2)
VERIFY_SEED = 1234  # batch n uses draw_latents(n, nz, VERIFY_SEED + n)
REFERENCE_EVALUATOR_BATCH = 3  # the pure-Python evaluator is slow; one small batch is enough
# p99.9 needs pixels: 256 images of 28x28 are 200k pixels (its 200 worst ones); ~0.1 s of PyTorch at 28x28.
PIXEL_LEVELS_BATCH = 256
# Judged on every vs_torch batch, even batch 1: a per-image figure. The shares and p99.9 need pixels: one good
# image can hold 1% of pixels >16 levels off (its edges) where 256 images hold 0.05% (levels.md).
PER_BATCH_FIGURES = ("worst_image_mean",)


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
        rows = [
            (r.max_err, r.mean_err) for r in self.records if r.name.startswith("vs_torch") and r.max_err is not None
        ]
        if not rows:
            return None, None
        return max(mx for mx, _ in rows), float(np.mean([mean for _, mean in rows]))

    def raise_if_failed(self) -> None:
        raise_for_records(self.variant, self.records)


@dataclass
class Subject:
    """One file under verification: its session, what it must match, and the outputs the checks share."""

    path: Path
    session: Any  # onnxruntime.InferenceSession (CPU)
    contract: GeneratorContract
    tol: Tolerance
    reference: ReferenceFn
    result: VariantVerification
    feeds: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # batch size -> inputs

    @property
    def uint8(self) -> bool:
        return self.contract.output == OUTPUT_UINT8_NHWC

    @property
    def outputs(self) -> dict[int, np.ndarray]:
        return self.result.outputs


# ---------------------------------------------------------------------------------------------------------
# helpers


def make_session(path: str | os.PathLike, threads: int | None = None):
    """onnxruntime CPU session for a .onnx or .ort file (only the CPU provider: the reference runtime), with the
    runtime's own SessionOptions (edgegan.runtime.providers.session_options; threads None: onnxruntime's default)."""
    return ort.InferenceSession(str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"])


def _inputs(contract: GeneratorContract, n: int, seed: int) -> dict[str, np.ndarray]:
    feeds = {INPUT_LATENT: draw_latents(n, contract.nz, seed)}
    if contract.conditional:
        feeds[INPUT_LABEL] = default_labels(n, contract.num_classes)
    return feeds


def _compare_float(
    out: np.ndarray, ref: np.ndarray, tol_max: float, tol_mean: float | None, rtol: float = 0.0
) -> tuple[bool, float, float, str]:
    """Every value within tol_max + rtol * |ref| (Polygraphy's rule; rtol 0: absolute), the mean within tol_mean."""
    if out.shape != ref.shape:
        return False, float("inf"), float("inf"), f"shape {out.shape} != expected {ref.shape}"
    ref64 = ref.astype(np.float64)
    err = np.abs(out.astype(np.float64) - ref64)
    if not np.isfinite(err).all():
        return False, float("inf"), float("inf"), "non-finite values in the output"
    mx, mean = float(err.max()), float(err.mean())
    within = mx <= tol_max if not rtol else bool((err <= tol_max + rtol * np.abs(ref64)).all())
    ok = within and (tol_mean is None or mean <= tol_mean)
    detail = f"mean err {mean:.3g}" + ("" if tol_mean is None else f" (mean tolerance {tol_mean:g})")
    return ok, mx, mean, detail + (f"; rtol {rtol:g}" if rtol else "")


def _compare_uint8(
    out: np.ndarray, ref_float: np.ndarray, tol: float, rtol: float = 0.0
) -> tuple[bool, float, float, str]:
    """uint8 NHWC output vs PyTorch float NCHW: pass where some float within `tol` (+ rtol * |ref|) of PyTorch's
    rounds to it.

    to_uint8_nhwc is monotone, so that set is the range [quantize(ref - tol), quantize(ref + tol)].
    """
    expected = to_uint8_nhwc(ref_float)
    if out.shape != expected.shape or out.dtype != np.uint8:
        return False, float("inf"), float("inf"), f"{out.dtype} {out.shape} != expected uint8 {expected.shape}"
    budget = (tol + rtol * np.abs(ref_float)).astype(np.float32) if rtol else tol  # float [N, C, H, W] or scalar
    lo, hi = to_uint8_nhwc(ref_float - budget), to_uint8_nhwc(ref_float + budget)
    levels = np.abs(out.astype(np.int32) - expected.astype(np.int32))
    outside = int(((out < lo) | (out > hi)).sum())
    off = int((levels > 0).sum())
    detail = f"{off} of {out.size} pixels differ from to_uint8_nhwc(torch); {outside} beyond the float budget {tol:g}"
    return outside == 0, float(levels.max()), float(levels.mean()), detail


def _run(session, feeds: dict[str, np.ndarray], chunk: int = 64) -> np.ndarray:
    names = {i.name for i in session.get_inputs()}
    feeds = {k: v for k, v in feeds.items() if k in names}
    n = len(next(iter(feeds.values())))
    parts = [
        session.run([OUTPUT_IMAGE], {k: v[i : i + chunk] for k, v in feeds.items()})[0] for i in range(0, n, chunk)
    ]
    return np.concatenate(parts)


def guard_check(name: str, kind: str, fn: Callable[[], CheckRecord]) -> CheckRecord:
    """Run one check; an exception becomes a failed record so the remaining checks still run."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - collected and reported, never swallowed silently
        return CheckRecord(name, False, detail=f"raised {exception_summary(exc, 493)}", kind=kind)


def _reference_opset(model):
    """onnx's ReferenceEvaluator implements (De)QuantizeLinear only from opset 19 (onnx 1.23); their int8/uint8
    semantics did not change from 13 to 19, so a Q/DQ graph below 19 is evaluated after onnx's version converter
    lifts it to 19. Returns (model to evaluate, note for the record)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
    if opset is None or opset >= 19 or not has_qdq:
        return model, ""
    return version_converter.convert_version(
        model, 19
    ), f" (Q/DQ graph lifted from opset {opset} to 19 for onnx.reference)"


# ---------------------------------------------------------------------------------------------------------
# the numeric checks: each takes the Subject (and what it varies over) and returns one CheckRecord


def _levels_vs_torch(
    name: str, out: np.ndarray, ref: np.ndarray, budget: LevelBudget, uint8: bool, judged: tuple[str, ...]
) -> CheckRecord:
    """A lossy file's images vs PyTorch's, judged by the level figures in `judged` (the others recorded)."""
    figures = judge(level_figures(level_errors(out, ref), budget.k), budget, judged)
    shown = "; ".join(describe(figures[k]) for k in ("p999", "share_over_k", "worst_image_mean", "max", "mean"))
    if uint8:  # the headline figures are levels, as for every uint8 output
        mx, mean, unit, float_part = figures["max"]["value"], figures["mean"]["value"], "levels", ""
    else:
        err = np.abs(out.astype(np.float64) - ref.astype(np.float64))
        mx, mean, unit = float(err.max()), float(err.mean()), "abs"
        float_part = f"; float max err {mx:.3g}, mean {mean:.3g} (recorded, not judged)"
    ok = bool(all(f["passed"] for f in figures.values()) and np.isfinite(mx))
    return CheckRecord(
        name, ok, mx, mean, None, f"{len(out)} images in levels: {shown}{float_part}", unit=unit, figures=figures
    )


def _vs_torch_record(name: str, out: np.ndarray, ref: np.ndarray, tol: Tolerance, uint8: bool) -> CheckRecord:
    """A file's images vs PyTorch's float images: uint8 in levels within the float budget, float within it; a
    lossy precision in level figures (PER_BATCH_FIGURES)."""
    if tol.levels is not None and out.shape[0] == ref.shape[0] and np.isfinite(out).all():
        return _levels_vs_torch(name, out, ref, tol.levels, uint8, PER_BATCH_FIGURES)
    if uint8:
        ok, mx, mean, detail = _compare_uint8(out, ref, tol.vs_torch_max, tol.rtol)
        return CheckRecord(name, ok, mx, mean, tol.vs_torch_max, detail, unit="levels")
    ok, mx, mean, detail = _compare_float(out, ref, tol.vs_torch_max, tol.vs_torch_mean, tol.rtol)
    return CheckRecord(name, ok, mx, mean, tol.vs_torch_max, detail)


def _levels_record(
    name: str, out: np.ndarray, ref: np.ndarray, slack: int, detail: str, same_form: bool = True
) -> CheckRecord:
    """The one uint8 comparison of two runs' pixels: passes when no pixel is more than `slack` levels apart."""
    levels = np.abs(out.astype(np.int32) - ref.astype(np.int32))
    ok = same_form and int(levels.max()) <= slack
    return CheckRecord(name, ok, float(levels.max()), float(levels.mean()), slack, detail, unit="levels")


def _agreement(
    subject: Subject,
    name: str,
    out: np.ndarray,
    ref: np.ndarray,
    tol_max: float,
    tol_mean: float | None,
    slack: int,
    what: str,
    same_form: bool = True,
) -> CheckRecord:
    """Two runs that should compute the same images: uint8 within `slack` levels, float within tol_max/mean."""
    if subject.uint8:
        return _levels_record(name, out, ref, slack, what, same_form)
    ok, mx, mean, detail = _compare_float(out, ref, tol_max, tol_mean, subject.tol.rtol)
    return CheckRecord(name, ok, mx, mean, tol_max, f"{what}; {detail}")


def check_vs_torch(subject: Subject, n: int) -> CheckRecord:
    feeds = subject.feeds[n]
    out = subject.outputs[n] = _run(subject.session, feeds)
    ref = subject.reference(feeds[INPUT_LATENT], feeds.get(INPUT_LABEL))
    return _vs_torch_record(f"vs_torch_batch{n}", out, ref, subject.tol, subject.uint8)


def check_pixel_levels(subject: Subject) -> CheckRecord:
    """PIXEL_LEVELS_BATCH images against PyTorch, judged by every figure of the level budget (p99.9 included)."""
    budget = subject.tol.levels
    if budget is None:  # verify_variant adds this check only for a tolerance with a level budget
        raise RuntimeError("pixel_levels needs a tolerance with a level budget (a lossy precision's)")
    n = PIXEL_LEVELS_BATCH
    feeds = _inputs(subject.contract, n, VERIFY_SEED + n)
    out = _run(subject.session, feeds)
    ref = subject.reference(feeds[INPUT_LATENT], feeds.get(INPUT_LABEL))
    if not (out.dtype == np.uint8 or np.isfinite(out).all()):
        return CheckRecord("pixel_levels", False, float("inf"), float("inf"), None, "non-finite values in the output")
    return _levels_vs_torch(
        "pixel_levels", out, ref, budget, subject.uint8, ("p999", "share_over_k", "worst_image_mean")
    )


def check_batch_invariance(subject: Subject, n: int) -> CheckRecord:
    """Image i of the batch of n == latent i run alone."""
    if n not in subject.outputs:
        raise RuntimeError(f"no batch-{n} output to compare (see vs_torch_batch{n})")
    feeds = subject.feeds[n]
    alone = np.concatenate([_run(subject.session, {k: v[i : i + 1] for k, v in feeds.items()}) for i in range(n)])
    return _agreement(
        subject,
        "batch_invariance",
        alone,
        subject.outputs[n],
        subject.tol.batch_invariance,
        None,
        UINT8_LEVEL_SLACK,
        f"{n} images run alone vs in one batch of {n}",
    )


def check_output_range(subject: Subject) -> CheckRecord:
    if not subject.outputs:
        raise RuntimeError("no outputs to inspect (every run failed)")
    images = [subject.outputs[n] for n in sorted(subject.outputs)]
    if subject.uint8:
        ok = all(im.dtype == np.uint8 for im in images)
        return CheckRecord("output_range", ok, detail="uint8 [0, 255] by dtype" if ok else "output is not uint8")
    flat = np.concatenate([im.ravel() for im in images]).astype(np.float64)
    finite = bool(np.isfinite(flat).all())
    excess = float(np.max(np.abs(flat[np.isfinite(flat)]), initial=0.0) - 1.0)
    slack = subject.tol.range_slack
    return CheckRecord(
        "output_range",
        finite and excess <= slack,
        max(excess, 0.0),
        None,
        slack,
        f"min {flat.min():.4f}, max {flat.max():.4f}, finite: {finite}; declared [-1, 1]",
    )


def check_labels_full_range(subject: Subject) -> CheckRecord:
    """One latent under every label: each label must run, match PyTorch and change the image."""
    k, nz = subject.contract.num_classes, subject.contract.nz
    z = np.repeat(draw_latents(1, nz, VERIFY_SEED), k, axis=0)  # [k, nz]
    labels = np.arange(k, dtype=np.int64)
    out = _run(subject.session, {INPUT_LATENT: z, INPUT_LABEL: labels})
    record = _vs_torch_record("labels_full_range", out, subject.reference(z, labels), subject.tol, subject.uint8)
    distinct = len({im.tobytes() for im in out})
    record.detail = f"labels 0..{k - 1} on one latent: {distinct} distinct images; " + record.detail
    if k > 1 and distinct == 1:
        record.passed = False
        record.detail = "the label input does not change the image; " + record.detail
    return record


def check_reference_evaluator(subject: Subject) -> CheckRecord:
    """onnx.reference.ReferenceEvaluator reproduces onnxruntime's images on the same .onnx file."""
    n = REFERENCE_EVALUATOR_BATCH
    if n not in subject.outputs:
        raise RuntimeError(f"no onnxruntime output at batch {n} to compare (see vs_torch_batch{n})")
    model = onnx.load(str(subject.path))
    feeds = {
        k: v
        for k, v in _inputs(subject.contract, n, VERIFY_SEED + n).items()
        if k in {i.name for i in model.graph.input}
    }
    model, note = _reference_opset(model)
    # run returns the list of outputs asked for (intermediate=False); onnx annotates it as dict | list
    out = np.asarray(ReferenceEvaluator(model).run([OUTPUT_IMAGE], feeds)[0])  # type: ignore[index]
    ort_out = subject.outputs[n]
    # uint8: the precision's float budget in pixel levels (fp32: 1 level; int8: requantization rounding in
    # onnxruntime's integer kernels vs the reference's float Q/DQ lands a few levels apart).
    slack = max(UINT8_LEVEL_SLACK, math.ceil(subject.tol.reference * 127.5))
    return _agreement(
        subject,
        "reference_evaluator",
        out,
        ort_out,
        subject.tol.reference,
        None,
        slack,
        f"onnx.reference vs onnxruntime at batch {n}{note}",
        same_form=out.dtype == np.uint8 and out.shape == ort_out.shape,
    )


def check_vs_fp32_onnx(subject: Subject, baseline: VariantVerification) -> CheckRecord:
    """The file's images against generator.onnx's own, at every batch both ran."""
    shared = sorted(set(subject.outputs) & set(baseline.outputs))
    if not shared:
        raise RuntimeError("no batch ran on both files")
    out = np.concatenate([subject.outputs[n].ravel() for n in shared])
    base = np.concatenate([baseline.outputs[n].ravel() for n in shared])
    tol = subject.tol
    return _agreement(
        subject,
        "vs_fp32_onnx",
        out,
        base,
        tol.vs_torch_max,
        tol.vs_torch_mean,
        UINT8_LEVEL_SLACK,
        f"against {baseline.path.name} at batches {shared}",
    )


def verify_variant(
    path: str | os.PathLike,
    contract: GeneratorContract,
    reference: ReferenceFn,
    *,
    variant: str | None = None,
    baseline: VariantVerification | None = None,
    batches: tuple[int, ...] = VERIFY_BATCHES,
    tolerance: str | Tolerance | None = None,
) -> VariantVerification:
    """Run every check on one exported file and collect the records (never raises for a failed check).

    Args:
        path: a .onnx or .ort file.
        contract: what the file must declare (precision and output form included).
        reference: PyTorch images for given latents and labels (see ReferenceFn); wrap it in CachedReference
            to share it between variants.
        variant: name used in records and errors (default: the file name).
        baseline: verification of generator.onnx; adds a vs_fp32_onnx check against its outputs.
        batches: batch sizes compared with PyTorch; the largest also feeds batch_invariance.
        tolerance: the TOLERANCES row to judge by, or a Tolerance (e.g. with --atol's override; see
            check_records.resolve_tolerance); default: the row of contract.precision.

    Returns:
        VariantVerification; call .raise_if_failed() to turn failures into ShapeError / AtolError.
    """
    path = Path(path)
    result = VariantVerification(variant or path.name, path)
    is_onnx = path.suffix == ".onnx"
    if is_onnx:
        result.records.append(guard_check("onnx_checker", "structure", partial(check_onnx_checker, path)))
    try:
        session = make_session(path)
    except Exception as exc:  # noqa: BLE001 - nothing below can run; say why once
        result.records.append(
            CheckRecord(
                "onnxruntime_load", False, kind="structure", detail=f"onnxruntime cannot load {path.name}: {exc}"[:500]
            )
        )
        return result
    found, inputs, outputs, meta = interface_from_onnx(path) if is_onnx else interface_from_session(session)
    tol = tolerance if isinstance(tolerance, Tolerance) else TOLERANCES[tolerance or contract.precision]
    subject = Subject(
        path,
        session,
        contract,
        tol,
        reference,
        result,
        feeds={n: _inputs(contract, n, VERIFY_SEED + n) for n in batches},
    )
    checks: list[tuple[str, str, Callable[[], CheckRecord]]] = [
        ("interface", "structure", partial(check_interface, found, inputs, outputs, contract.io_spec())),
        ("metadata", "structure", partial(check_metadata, meta, contract)),
        *((f"vs_torch_batch{n}", "numeric", partial(check_vs_torch, subject, n)) for n in batches),
        ("batch_invariance", "numeric", partial(check_batch_invariance, subject, max(batches))),
        ("output_range", "numeric", partial(check_output_range, subject)),
    ]
    if contract.conditional:
        checks.append(("labels_full_range", "numeric", partial(check_labels_full_range, subject)))
    if is_onnx:
        checks.append(("reference_evaluator", "numeric", partial(check_reference_evaluator, subject)))
    if tol.levels is not None:
        checks.append(("pixel_levels", "numeric", partial(check_pixel_levels, subject)))
    if baseline is not None:
        checks.append(("vs_fp32_onnx", "numeric", partial(check_vs_fp32_onnx, subject, baseline)))
    # One at a time, in order: the vs_torch checks fill subject.outputs, which the later checks read.
    result.records.extend(guard_check(name, kind, check) for name, kind, check in checks)
    return result
