"""How far a lossy variant's images are from PyTorch's, in the pixel levels a user sees.

A user of an fp16 or int8 generator sees uint8 images: the contract's scaling (edgegan.runtime.contract.
to_uint8_nhwc, [-1, 1] -> 0..255) of its float output, or the uint8 output itself with `--pixels uint8`. The old
int8 rule, "every value within 0.05 of PyTorch", is a bound on the one worst pixel of 17 images: on a Fashion-MNIST
DCGAN trained 4,685+ steps a handful of pixels near steep edges sit 9-13 levels off while 99.9% are within 3 and
the images score the same FID (issue 20), so the check refused models by how long they were trained. Here the
error is judged as a distribution of level errors, with figures that stay meaningful at any batch:

  p99.9 level error         the level error 99.9% of pixels stay within (pooled over the pixel_levels check's images)
  share over k levels       the share of pixels more than k levels off (a damaged layer moves many pixels)
  worst image mean          the largest per-image mean level error (one image badly off cannot hide in a mean)

The max and mean level errors and the float max error are recorded beside them, not judged. A wrong scale on one
layer or a clipped calibration range moves thousands of pixels by tens of levels and fails all three
(tests/export/test_int8_quantize.py); the budgets are in edgegan.export.check_records.TOLERANCES, measured on the trained
fixtures (benchmarks/results/int8/levels.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgegan.runtime.contract import to_uint8_nhwc

PERCENTILE = 99.9


@dataclass(frozen=True)
class LevelBudget:
    """The pixel-level error a lossy variant may have against PyTorch's images (levels of 0..255).

    p999: the 99.9th percentile of |level error| may be at most this.
    k, share_over_k: at most `share_over_k` (a fraction) of pixels may be more than `k` levels off.
    worst_image_mean: no image's mean |level error| may exceed this.
    """

    p999: float
    k: int
    share_over_k: float
    worst_image_mean: float


def level_errors(out: np.ndarray, ref_float: np.ndarray) -> np.ndarray:
    """|level error| per pixel, int32 [N, H, W, C]: `out` (float NCHW in [-1, 1], or already uint8 NHWC) against
    PyTorch's float NCHW images, both as the contract's uint8 pixels."""
    pixels = out if out.dtype == np.uint8 else to_uint8_nhwc(out)
    expected = to_uint8_nhwc(ref_float)
    if pixels.shape != expected.shape:
        raise ValueError(f"images {pixels.shape} cannot be compared with the expected {expected.shape}")
    return np.abs(pixels.astype(np.int32) - expected.astype(np.int32))


def level_figures(levels: np.ndarray, k: int) -> dict[str, float]:
    """The figures of one set of level errors [N, H, W, C] (see the module docstring)."""
    per_image = levels.reshape(len(levels), -1).mean(axis=1)
    return {
        "p999": float(np.percentile(levels, PERCENTILE, method="higher")),
        "share_over_k": float((levels > k).mean()),
        "worst_image_mean": float(per_image.max()),
        "max": float(levels.max()),
        "mean": float(levels.mean()),
    }


_LABELS = {
    "p999": ("p99.9 level error", "levels"),
    "share_over_k": ("share of pixels more than {k} levels off", "share"),
    "worst_image_mean": ("worst image's mean level error", "levels"),
}


def judge(figures: dict[str, float], budget: LevelBudget, judged: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each judged figure with its limit and verdict, plus the unjudged ones (limit None): the report's entry."""
    limits = {"p999": budget.p999, "share_over_k": budget.share_over_k, "worst_image_mean": budget.worst_image_mean}
    result: dict[str, dict[str, Any]] = {}
    for name, value in figures.items():
        limit = limits.get(name) if name in judged else None
        label, unit = _LABELS.get(name, (f"{name} level error", "levels"))
        result[name] = {
            "label": label.format(k=budget.k),
            "value": value,
            "limit": limit,
            "unit": unit,
            "passed": bool(limit is None or value <= limit),
        }
    return result


def describe(figure: dict[str, Any]) -> str:
    """'share of pixels more than 8 levels off 1.2% > limit 0.5%': one figure, for details and error lines."""

    def fmt(v: float) -> str:
        return f"{100 * v:.3g}%" if figure["unit"] == "share" else f"{v:.3g}"

    text = f"{figure['label']} {fmt(figure['value'])}"
    if figure["limit"] is None:
        return text
    return text + (f" <= {fmt(figure['limit'])}" if figure["passed"] else f" > limit {fmt(figure['limit'])}")
