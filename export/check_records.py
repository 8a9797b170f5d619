"""What verification yields and judges by: one CheckRecord per check, the tolerance table each precision is judged
by, and the typed errors failed records raise (ShapeError for the graph's form, AtolError for its numbers)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from edgegan.export.pixel_levels import LevelBudget, describe
from edgegan.runtime.errors import EdgeganError


@dataclass(frozen=True)
class Tolerance:
    """Error budget of one precision, in float units on the [-1, 1] image scale.

    vs_torch_max/mean: against the fp32 PyTorch generator. batch_invariance: image i of a batch vs alone.
    reference: onnx's ReferenceEvaluator vs onnxruntime on the same file. uint8 outputs are judged in levels:
    a pixel passes when some float within the budget of PyTorch's image rounds to it (see
    edgegan.export.verify._compare_uint8).
    """

    vs_torch_max: float
    vs_torch_mean: float | None
    batch_invariance: float
    reference: float
    range_slack: float  # how far past [-1, 1] a float image may reach (Tanh approximations overshoot)
    rtol: float = 0.0  # Polygraphy's rule: a value passes when |out - ref| <= max + rtol * |ref|; 0: absolute only
    # Lossy precisions: the comparison with PyTorch is judged in pixel levels (edgegan.export.pixel_levels), and
    # vs_torch_max/mean are recorded but not judged. None (fp32 and the lossless forms): every value within
    # vs_torch_max. --atol / --rtol put a variant back on the float rule with the value given.
    levels: LevelBudget | None = None


#: The one table of tolerances. fp32 is the issue's contract; fp16 has ~3 decimal digits (eps 9.8e-4, so
#: ~1e-3 per op over a few layers); int8 steps on [-1, 1] are ~2/255 = 7.8e-3 per quantized tensor.
#: onnxruntime's vectorized Tanh reaches 1 + 1.2e-7 (one float32 ulp) where PyTorch's stays at 1: hence fp32's
#: range slack of a few ulps. to_uint8_nhwc clips, so pixels never see it.
#: The level budgets of fp16 and int8 come from the trained fixtures (tests/fixtures/) and from deliberately
#: damaged int8 files (benchmarks/results/int8/levels.md). Good int8, worst of three fixtures: p99.9 14 levels,
#: 0.045% of pixels more than 16 levels off, worst image mean 1.30; each of 31 damaged files (one weight scale x1.5,
#: one activation range clipped to 1/4) exceeds at least one of p99.9 24, 0.08%, 2.0.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(vs_torch_max=1e-4, vs_torch_mean=None, batch_invariance=1e-5, reference=1e-4, range_slack=1e-6),
    "fp16": Tolerance(
        vs_torch_max=1e-2,
        vs_torch_mean=2e-3,
        batch_invariance=1e-3,
        reference=1e-2,
        range_slack=1e-3,
        levels=LevelBudget(p999=2, k=16, share_over_k=1e-4, worst_image_mean=0.5),
    ),
    "int8": Tolerance(
        vs_torch_max=5e-2,
        vs_torch_mean=1e-2,
        batch_invariance=1e-2,
        reference=5e-2,
        range_slack=8e-3,
        levels=LevelBudget(p999=24, k=16, share_over_k=8e-4, worst_image_mean=2.0),
    ),
}
UINT8_LEVEL_SLACK = 1  # two runtimes may round a value sitting on .5 differently: one level
ALL_VARIANTS = "*"  # the key of an --atol/--rtol given without VARIANT=


class ToleranceOptionError(EdgeganError, ValueError):
    """An --atol / --rtol value that is not a number >= 0, or names a variant that is not verified."""


def parse_tolerances(values: Sequence[str] | float | Mapping[str, float] | None, option: str) -> dict[str, float]:
    """--atol/--rtol values -> {variant or "*": value}: ("0.01", "int8=0.08") -> {"*": 0.01, "int8": 0.08}.

    A number or a mapping (the library's forms) is taken as it is, after the same checks.
    """
    if values is None:
        return {}
    if isinstance(values, (int, float)):
        values = {ALL_VARIANTS: values}
    if isinstance(values, Mapping):
        values = [f"{name}={value}" for name, value in values.items()]
    found: dict[str, float] = {}
    for text in values:
        name, _, number = str(text).rpartition("=")
        key = name.strip() or ALL_VARIANTS
        try:
            value = float(number)
        except ValueError:
            value = -1.0
        if not (math.isfinite(value) and value >= 0):
            raise ToleranceOptionError(
                f"{option} {text!r}: give a number >= 0 for every variant, or VARIANT=NUMBER (e.g. int8=0.08)"
            )
        if key in found:
            raise ToleranceOptionError(f"{option} is given twice for {'every variant' if key == '*' else key}")
        found[key] = value
    return found


def check_tolerance_names(overrides: Mapping[str, float], option: str, verified: Sequence[str]) -> None:
    """Refuse an override naming a variant that this export does not verify (a typo, or a variant not asked for)."""
    for name in overrides:
        if name != ALL_VARIANTS and name not in verified:
            raise ToleranceOptionError(
                f"{option} {name}=...: this export verifies {', '.join(verified)}; {name!r} is "
                "not one of them (ask for the variant, or fix the name)"
            )


def resolve_tolerance(
    variant: str, row: str, atol: Mapping[str, float], rtol: Mapping[str, float]
) -> tuple[Tolerance, dict[str, Any]]:
    """The tolerance `variant` is judged by: TOLERANCES[row], with --atol replacing every max-error budget of its
    numeric checks (vs PyTorch, vs generator.onnx, batch invariance, onnx.reference) and --rtol added. Either flag
    puts a lossy row back on the float rule (its level budget is dropped): the user's number is what is judged.

    Returns:
        (the Tolerance, its export_report.json entry: the row, every figure and whether it was overridden).
    """
    tol = TOLERANCES[row]
    a, r = atol.get(variant, atol.get(ALL_VARIANTS)), rtol.get(variant, rtol.get(ALL_VARIANTS))
    if a is not None:
        tol = replace(tol, vs_torch_max=a, batch_invariance=a, reference=a, levels=None)
    if r is not None:
        tol = replace(tol, rtol=r, levels=None)
    overridden = [flag for flag, value in (("--atol", a), ("--rtol", r)) if value is not None]
    return tol, {"row": row, **asdict(tol), "overridden": bool(overridden), "by": overridden}


@dataclass
class CheckRecord:
    """One check's outcome with its figures; `unit` is "abs" (float error) or "levels" (uint8 pixels).

    figures: the pixel-level figures of a lossy variant (edgegan.export.pixel_levels.judge): name -> label, value,
    limit (None: recorded, not judged), unit, passed. When present they, not max_err, decide `passed`.
    """

    name: str
    passed: bool
    max_err: float | None = None
    mean_err: float | None = None
    tolerance: float | None = None
    detail: str = ""
    kind: str = "numeric"  # "structure" (names, shapes, metadata, checker) or "numeric"
    unit: str = "abs"
    skipped: bool = False
    figures: dict[str, dict[str, Any]] | None = None

    def failure(self) -> str:
        """One line saying why the check failed, naming the figure."""
        failed = [describe(f) for f in (self.figures or {}).values() if not f["passed"]]
        if failed:  # the figures say it all; the full detail stays in the report
            return f"{self.name}: {'; '.join(failed)}"
        figures = (
            ""
            if self.max_err is None or self.tolerance is None
            else f" (max err {self.max_err:.3g} > tolerance {self.tolerance:.3g} {self.unit})"
        )
        return f"{self.name}{figures}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class VerificationError(EdgeganError, RuntimeError):
    """One or more checks failed; `records` holds every check's result, failed or not."""

    def __init__(self, variant: str, records: list[CheckRecord]):
        self.variant = variant
        self.records = records
        failed = [r for r in records if not r.passed]
        lines = [f"{variant}: {len(failed)} of {len(records)} verification checks failed:"]
        lines.extend(f"  - {r.failure()}" for r in failed)
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
