"""What verification yields and judges by: one CheckRecord per check, the tolerance table each precision is judged
by, and the typed errors failed records raise (ShapeError for the graph's form, AtolError for its numbers)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
