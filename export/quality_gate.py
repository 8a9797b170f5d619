"""The export quality gate: each variant's images against the fp32 model's images on the same latents.

Tensor checks (export/verify.py) bound every pixel's error; they cannot tell whether a conversion that keeps
pixels "close" still shifts the distribution of images (washes out a class, dulls contrast). The gate runs the
staged fp32 `generator.onnx` and each staged variant with the torch-free runtime on the same contract latents
(`draw_latents(n, nz, seed)`, default labels), scores both image sets with the domain evaluator
(runtime/quality.py), and records per variant the FID against the fp32 images, the share of images the
evaluator puts in the same class, and the mean pixel difference. With a limit (`--max-fid-delta`) a variant
whose FID exceeds it fails the export, which then leaves the output folder untouched.

The evaluator is the one passed (`--evaluator`), else the default for the model's dataset
(runtime.quality.default_evaluator_path); without one the report says the gate was skipped and why.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.contract import GeneratorContract
from runtime.errors import EdgeganError

GATE_N = 2000  # images per variant: paired latents make the figure stable at this size
GATE_SEED = 0
SCORED_SUFFIXES = (".onnx", ".ort")


class QualityGateError(EdgeganError):
    """A variant's images moved further from the fp32 model's than --max-fid-delta allows."""


@dataclass
class GatePlan:
    """What the gate will do: an evaluator to score with, or why it is skipped."""

    evaluator: Any | None  # runtime.quality.Evaluator
    skip_reason: str | None
    max_fid_delta: float | None
    n: int
    seed: int


def plan_gate(evaluator: str | os.PathLike | None, contract: GeneratorContract, max_fid_delta: float | None,
              n: int = GATE_N, seed: int = GATE_SEED) -> GatePlan:
    """Find and check the evaluator before any export work, so a bad option fails at once.

    Args:
        evaluator: an evaluator .onnx, or None for the default of the model's dataset.
        contract: the generator's contract (dataset and image shape).
        max_fid_delta: the largest FID a variant may have against fp32 (None: record only).
        n: images per variant. seed: latent seed.

    Returns:
        GatePlan; its evaluator is None (with the reason) when no default evaluator exists.

    Raises:
        QualityGateError: a given evaluator is missing or does not fit the generator's images, or a limit was
            asked for but no evaluator can be found, or bad n / max_fid_delta.
    """
    from runtime.quality import Evaluator, QualityError, default_evaluator_path, how_to_make_evaluator

    if max_fid_delta is not None and not max_fid_delta >= 0:
        raise QualityGateError(f"--max-fid-delta must be a number >= 0, got {max_fid_delta}")
    if n <= 3:
        raise QualityGateError(f"the quality gate needs more than 3 images per variant, got {n}")
    dataset = contract.dataset or "unknown"
    path = Path(evaluator).expanduser() if evaluator is not None else default_evaluator_path(dataset)
    if evaluator is None and not path.is_file():
        reason = f"no evaluator: {path} does not exist; {how_to_make_evaluator(dataset)}"
        if max_fid_delta is not None:
            raise QualityGateError(f"--max-fid-delta needs an evaluator to score the variants, and there is "
                                   f"{reason}")
        return GatePlan(None, reason, max_fid_delta, n, seed)
    try:
        loaded = Evaluator(path)
        loaded.check_images((1, contract.height, contract.width, contract.channels), "the generator's images")
    except QualityError as exc:
        if evaluator is not None or max_fid_delta is not None:
            raise QualityGateError(f"quality gate: {exc}") from exc
        return GatePlan(None, f"the default evaluator does not fit: {exc}", max_fid_delta, n, seed)
    return GatePlan(loaded, None, max_fid_delta, n, seed)


def _images(path: Path, n: int, seed: int) -> np.ndarray:
    from runtime.generator import Generator

    return Generator(path, provider="cpu").sample(n, seed=seed)  # uint8 [n, H, W, C]


def run_gate(plan: GatePlan, stage: Path, variants: dict[str, dict[str, Any]], fp32_file: str) -> dict[str, Any]:
    """Score every staged variant against the staged fp32 model.

    Args:
        plan: from `plan_gate`.
        stage: the folder holding the staged files.
        variants: the report's variant entries (name -> entry with "file" relative to `stage`, "sha256").
        fp32_file: the fp32 model's file name in `stage`.

    Returns:
        The report's "quality_gate" entry: skipped + reason, or the evaluator, n, seed, limit, per-variant
        figures ({fid_vs_fp32, class_agreement, mean_abs_levels, passed} or {skipped, reason}) and "passed".
    """
    if plan.evaluator is None:
        return {"skipped": True, "reason": plan.skip_reason, "max_fid_delta": plan.max_fid_delta}
    from runtime.metrics import feature_stats, frechet_distance

    ev = plan.evaluator
    base: tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray] | None = None  # made on first use
    fp32_sha = variants.get("fp32", {}).get("sha256")
    results: dict[str, dict[str, Any]] = {}
    for name, entry in variants.items():
        if name == "fp32":
            continue
        path = stage / entry["file"]
        if entry.get("sha256") is not None and entry["sha256"] == fp32_sha:
            results[name] = {"skipped": True, "reason": "byte-identical to the fp32 model"}
            continue
        if name == "triton":
            results[name] = {"skipped": True, "reason": "the Triton repository serves generator.onnx itself"}
            continue
        if not path.is_file() or path.suffix.lower() not in SCORED_SUFFIXES:
            results[name] = {"skipped": True, "reason": f"{entry['file']} is not an ONNX/ORT file the CPU runtime "
                             "runs here; score it with `edgegan eval MODEL --provider ...` where it runs"}
            continue
        if base is None:  # the fp32 model's images, features [n, D] statistics and predicted classes [n]
            base_images = _images(stage / fp32_file, plan.n, plan.seed)
            base_features, base_probs = ev.run(base_images)
            base = (base_images, feature_stats(base_features), base_probs.argmax(axis=1))
        base_images, base_stats, base_classes = base
        images = _images(path, plan.n, plan.seed)
        features, probs = ev.run(images)
        fid = frechet_distance(*base_stats, *feature_stats(features))
        results[name] = {
            "fid_vs_fp32": fid,
            "class_agreement": float((probs.argmax(axis=1) == base_classes).mean()),
            "mean_abs_levels": float(np.abs(images.astype(np.int16) - base_images.astype(np.int16)).mean()),
            "passed": plan.max_fid_delta is None or fid <= plan.max_fid_delta,
        }
    return {
        "skipped": False,
        "evaluator": {"path": str(ev.path), "sha256": ev.digest, "dataset": ev.info.dataset,
                      "test_accuracy": ev.info.test_accuracy, "feature_dim": ev.info.feature_dim},
        "n": plan.n,
        "seed": plan.seed,
        "max_fid_delta": plan.max_fid_delta,
        "passed": all(r.get("passed", True) for r in results.values()),
        "variants": results,
    }


def raise_if_failed(gate: dict[str, Any]) -> None:
    """QualityGateError naming every variant over the limit, with its figures."""
    if gate.get("skipped") or gate.get("passed", True):
        return
    lines = [f"quality gate failed: FID against the fp32 model's images ({gate['n']} images, seed {gate['seed']}) "
             f"exceeds --max-fid-delta {gate['max_fid_delta']:g}:"]
    for name, r in gate["variants"].items():
        if not r.get("passed", True):
            lines.append(f"  - {name}: FID {r['fid_vs_fp32']:.4g}, class agreement {r['class_agreement']:.1%}, "
                         f"mean pixel difference {r['mean_abs_levels']:.2f} levels")
    lines.append("Nothing was written to the output folder. Drop that variant, or raise --max-fid-delta if the "
                 "figure is acceptable.")
    raise QualityGateError("\n".join(lines))


def format_gate(gate: dict[str, Any] | None) -> str:
    """One line per scored variant, for the export command's output."""
    if not gate:
        return ""
    if gate.get("skipped"):
        return f"quality gate: skipped ({gate['reason']})"
    limit = f", limit {gate['max_fid_delta']:g}" if gate.get("max_fid_delta") is not None else ""
    lines = [f"quality gate: FID vs fp32 on {gate['n']} images{limit} "
             f"(evaluator {Path(gate['evaluator']['path']).name})"]
    for name, r in gate["variants"].items():
        if r.get("skipped"):
            lines.append(f"  {name}: skipped ({r['reason']})")
        else:
            lines.append(f"  {name}: FID {r['fid_vs_fp32']:.4g}, class agreement {r['class_agreement']:.1%}, "
                         f"mean |diff| {r['mean_abs_levels']:.3f} levels {'ok' if r['passed'] else 'FAILED'}")
    if not gate["variants"]:
        lines.append("  (no variants besides fp32 to score)")
    return "\n".join(lines)
