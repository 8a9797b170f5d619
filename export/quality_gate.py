"""The export quality gate: each variant's images against the fp32 model's images on the same latents.

Tensor checks (export/verify.py) bound every pixel's error; they cannot tell whether a conversion that keeps
pixels "close" still shifts the distribution of images (washes out a class, dulls contrast). The gate runs the
staged fp32 `generator.onnx` and each staged variant with the torch-free runtime on the same contract latents
(`draw_latents(n, nz, seed)`, default labels), scores both image sets with the domain evaluator
(runtime/evaluation/quality.py), and records per variant the FID against the fp32 images, the share of images the
evaluator puts in the same class, and the mean pixel difference. With a limit (`--max-fid-delta`) a variant
whose FID exceeds it fails the export, which then leaves the output folder untouched.

A generator can match its fp32 model perfectly and still be useless: one that ignores z draws one image per class.
With `--min-recall R` the gate also scores the fp32 model's images against the real data (the test split of the
model's dataset, read from the run's data dir or `--data-dir`): the k-NN recall of Kynkaanniemi et al. (share of
real images inside the generated images' manifold) must be at least R, and for a conditional model so must each
class's recall (its images asked for class k against the real images the evaluator puts in class k; see
runtime/evaluation/per_class.py). A collapsed generator scores ~0; real images against real images 0.6-0.9.

The evaluator is the one passed (`--evaluator`), else the default for the model's dataset
(edgegan.runtime.evaluation.quality.default_evaluator_path); without one the report says the gate was skipped and why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgegan.runtime.contract import GeneratorContract
from edgegan.runtime.errors import EdgeganError

if TYPE_CHECKING:
    from edgegan.runtime.evaluation.features import FeatureSet

GATE_N = 2000  # images per variant: paired latents make the figure stable at this size
GATE_SEED = 0
SKIPPED_BY_OPTION = "--no-quality-gate"  # the report's reason when the user switched the gate off
SCORED_SUFFIXES = (".onnx", ".ort")


class QualityGateError(EdgeganError):
    """A variant's images moved further from the fp32 model's than --max-fid-delta allows, or the model's recall
    against real data is below --min-recall."""


@dataclass
class GatePlan:
    """What the gate will do: an evaluator to score with, or why it is skipped."""

    evaluator: Any | None  # edgegan.runtime.evaluation.quality.Evaluator
    skip_reason: str | None
    max_fid_delta: float | None
    n: int
    seed: int
    min_recall: float | None = None
    reference: FeatureSet | None = None  # the real images' features (only with min_recall)
    reference_info: dict[str, Any] | None = None  # dataset, split, n, source


def plan_gate(
    evaluator: str | os.PathLike | None,
    contract: GeneratorContract,
    max_fid_delta: float | None,
    n: int = GATE_N,
    seed: int = GATE_SEED,
    *,
    min_recall: float | None = None,
    data_dir: str | os.PathLike | None = None,
    skip: bool = False,
) -> GatePlan:
    """Find and check the evaluator (and, for min_recall, load the real data) before any export work, so a bad
    option fails at once.

    Args:
        evaluator: an evaluator .onnx, or None for the default of the model's dataset.
        contract: the generator's contract (dataset and image shape).
        max_fid_delta: the largest FID a variant may have against fp32 (None: record only).
        n: images per variant. seed: latent seed.
        min_recall: the smallest recall against real data the fp32 model (and each class of a conditional one)
            may have, in [0, 1] (None: not checked).
        data_dir: where the model's dataset is (the run's --data-dir); only read with min_recall.
        skip: switch the gate off (--no-quality-gate), even when an evaluator is at hand; nothing is loaded.

    Returns:
        GatePlan; its evaluator is None (with the reason) when no default evaluator exists.

    Raises:
        QualityGateError: a given evaluator is missing or does not fit the generator's images, or a limit was
            asked for but no evaluator (or, for min_recall, no real data) can be found, or bad n / limits.
    """
    from edgegan.runtime.evaluation.quality import (
        Evaluator,
        QualityError,
        default_evaluator_path,
        how_to_make_evaluator,
    )

    if max_fid_delta is not None and not max_fid_delta >= 0:
        raise QualityGateError(f"--max-fid-delta must be a number >= 0, got {max_fid_delta}")
    if min_recall is not None and not 0 <= min_recall <= 1:
        raise QualityGateError(f"--min-recall must be a number in [0, 1], got {min_recall}")
    if n <= 3:
        raise QualityGateError(f"the quality gate needs more than 3 images per variant, got {n}")
    limits = [
        flag for flag, value in (("--max-fid-delta", max_fid_delta), ("--min-recall", min_recall)) if value is not None
    ]
    if skip:
        if limits:
            raise QualityGateError(
                f"{SKIPPED_BY_OPTION} switches off the gate that {' and '.join(limits)} ask for: give one or the other"
            )
        return GatePlan(None, SKIPPED_BY_OPTION, None, n, seed)
    dataset = contract.dataset or "unknown"
    path = Path(evaluator).expanduser() if evaluator is not None else default_evaluator_path(dataset)
    if evaluator is None and not path.is_file():
        reason = f"no evaluator: {path} does not exist; {how_to_make_evaluator(dataset)}"
        if limits:
            raise QualityGateError(
                f"{' and '.join(limits)} need{'s' if len(limits) == 1 else ''} an evaluator to "
                f"score the images, and there is {reason}"
            )
        return GatePlan(None, reason, max_fid_delta, n, seed)
    try:
        loaded = Evaluator(path)
        loaded.check_images((1, contract.height, contract.width, contract.channels), "the generator's images")
    except QualityError as exc:
        if evaluator is not None or limits:
            raise QualityGateError(f"quality gate: {exc}") from exc
        return GatePlan(None, f"the default evaluator does not fit: {exc}", max_fid_delta, n, seed)
    plan = GatePlan(loaded, None, max_fid_delta, n, seed, min_recall)
    if min_recall is not None:
        plan.reference, plan.reference_info = _real_reference(loaded, dataset, data_dir)
    return plan


def _real_reference(evaluator, dataset: str, data_dir: str | os.PathLike | None) -> tuple[Any, dict[str, Any]]:
    """The real images --min-recall scores against: their evaluator features (cached like `edgegan eval`'s)."""
    from edgegan.runtime.evaluation.datasets import DataError
    from edgegan.runtime.evaluation.quality import QualityError, load_reference, reference_features

    try:
        data, split, _ = load_reference(dataset, data_dir, evaluator.info)
        evaluator.check_images(data.images.shape, f"the {dataset} {split} images")
    except (DataError, QualityError) as exc:
        first = str(exc).splitlines()[0]
        raise QualityGateError(
            f"--min-recall scores the model against real {dataset!r} images, which cannot be "
            f"read ({first}); pass --data-dir, or drop --min-recall"
        ) from exc
    reference = reference_features(evaluator, data.images, dataset, split)
    return reference, {"dataset": dataset, "split": split, "n": len(reference), "source": data.source}


def _recall_check(
    plan: GatePlan, contract_labels: np.ndarray | None, features: np.ndarray, probs: np.ndarray, class_names: list[str]
) -> dict[str, Any]:
    """The fp32 model's recall (and precision) against the real reference, overall and, for a conditional
    model whose classes are the evaluator's, per class."""
    from edgegan.runtime.evaluation.metrics import PR_NEIGHBOURS, precision_recall
    from edgegan.runtime.evaluation.per_class import per_class_figures

    ref, min_recall = plan.reference, plan.min_recall
    if ref is None or min_recall is None:  # plan_gate loads the reference whenever min_recall is given
        raise QualityGateError("the recall check needs a gate plan with min_recall and its real reference (plan_gate)")
    precision, recall = precision_recall(ref.features, features, PR_NEIGHBOURS, real_radii=ref.radii)
    per_class = None
    if contract_labels is not None:
        figures = per_class_figures(
            ref.features, ref.probs, features, probs, contract_labels, class_names, seed=plan.seed
        )
        per_class = [
            {
                "class": r["class"],
                "name": r["name"],
                "n": r["n"],
                "recall": r["recall"],
                "precision": r["precision"],
                "diversity": r["diversity"],
            }
            for r in figures["classes"]
        ]
    low = [r for r in per_class or [] if r["recall"] is not None and r["recall"] < min_recall]
    return {
        "min_recall": min_recall,
        "reference": plan.reference_info,
        "precision": precision,
        "recall": recall,
        "per_class": per_class,
        "failed_classes": [r["class"] for r in low],
        "passed": recall >= min_recall and not low,
    }


def _images(path: Path, n: int, seed: int) -> np.ndarray:
    from edgegan.runtime.generator import Generator

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
    from edgegan.runtime.evaluation.metrics import feature_stats, frechet_distance

    ev = plan.evaluator
    base: tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray] | None = None  # made on first use
    recall = None
    if plan.min_recall is not None:  # the fp32 model against real data: its images, features and classes
        from edgegan.runtime.evaluation.quality import label_mismatch
        from edgegan.runtime.generator import Generator

        gen = Generator(stage / fp32_file, provider="cpu")
        base_images = gen.sample(plan.n, seed=plan.seed)  # uint8 [n, H, W, C], the contract's labels
        base_features, base_probs = ev.run(base_images)
        base = (base_images, feature_stats(base_features), base_probs.argmax(axis=1))
        # Per class only where the generator's labels are the evaluator's classes.
        same = gen.conditional and label_mismatch(gen.class_names, gen.num_classes, ev.info) is None
        labels = gen.resolve_labels(None, plan.n) if same else None
        recall = _recall_check(plan, labels, base_features, base_probs, ev.info.class_names)
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
            results[name] = {
                "skipped": True,
                "reason": f"{entry['file']} is not an ONNX/ORT file the CPU runtime "
                f"runs here; score it where it runs with `edgegan eval {entry['file']} --dataset "
                f"{ev.info.dataset} --provider tensorrt`",
            }
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
        "evaluator": {
            "path": str(ev.path),
            "sha256": ev.digest,
            "dataset": ev.info.dataset,
            "test_accuracy": ev.info.test_accuracy,
            "feature_dim": ev.info.feature_dim,
        },
        "n": plan.n,
        "seed": plan.seed,
        "max_fid_delta": plan.max_fid_delta,
        "passed": all(r.get("passed", True) for r in results.values()) and (recall is None or recall["passed"]),
        "variants": results,
        "recall": recall,
    }


def raise_if_failed(gate: dict[str, Any]) -> None:
    """QualityGateError naming every variant over the limit, with its figures."""
    if gate.get("skipped") or gate.get("passed", True):
        return
    lines = []
    failed = [(name, r) for name, r in gate["variants"].items() if not r.get("passed", True)]
    if failed:
        lines.append(
            f"quality gate failed: FID against the fp32 model's images ({gate['n']} images, seed "
            f"{gate['seed']}) exceeds --max-fid-delta {gate['max_fid_delta']:g}:"
        )
        for name, r in failed:
            lines.append(
                f"  - {name}: FID {r['fid_vs_fp32']:.4g}, class agreement {r['class_agreement']:.1%}, "
                f"mean pixel difference {r['mean_abs_levels']:.2f} levels"
            )
    recall = gate.get("recall")
    if recall is not None and not recall["passed"]:
        ref = recall["reference"]
        lines.append(
            f"quality gate failed: the model's recall against {ref['n']} real {ref['dataset']} "
            f"{ref['split']} images ({gate['n']} generated, seed {gate['seed']}) is below --min-recall "
            f"{recall['min_recall']:g}:"
        )
        lines.append(f"  - all classes: recall {recall['recall']:.3f}, precision {recall['precision']:.3f}")
        for r in recall["per_class"] or []:
            if r["class"] in recall["failed_classes"]:
                diversity = "-" if r["diversity"] is None else f"{r['diversity']:.2f}"
                lines.append(
                    f"  - class {r['class']} ({r['name']}): recall {r['recall']:.3f}, diversity {diversity} of real"
                )
        lines.append(
            "  a recall near 0 with a diversity near 0 is mode collapse: the generator ignores z "
            "(`edgegan eval` shows every class)"
        )
    lines.append(
        "Nothing was written to the output folder. "
        + (
            "Drop that variant, or raise --max-fid-delta if the figure is acceptable."
            if failed
            else "Train further or fix the collapse, or lower --min-recall if the figure is acceptable."
        )
    )
    raise QualityGateError("\n".join(lines))


def format_gate(gate: dict[str, Any] | None) -> str:
    """One line per scored variant, for the export command's output."""
    if not gate:
        return ""
    if gate.get("skipped"):
        return f"quality gate: skipped ({gate['reason']})"
    limit = f", limit {gate['max_fid_delta']:g}" if gate.get("max_fid_delta") is not None else ""
    lines = [
        f"quality gate: FID vs fp32 on {gate['n']} images{limit} (evaluator {Path(gate['evaluator']['path']).name})"
    ]
    recall = gate.get("recall")
    if recall is not None:
        worst = min((r["recall"] for r in recall["per_class"] or [] if r["recall"] is not None), default=None)
        per = f", lowest class {worst:.3f}" if worst is not None else ""
        lines.append(
            f"  fp32 vs real {recall['reference']['dataset']} {recall['reference']['split']}: recall "
            f"{recall['recall']:.3f}{per}, limit {recall['min_recall']:g} "
            f"{'ok' if recall['passed'] else 'FAILED'}"
        )
    for name, r in gate["variants"].items():
        if r.get("skipped"):
            lines.append(f"  {name}: skipped ({r['reason']})")
        else:
            lines.append(
                f"  {name}: FID {r['fid_vs_fp32']:.4g}, class agreement {r['class_agreement']:.1%}, "
                f"mean |diff| {r['mean_abs_levels']:.3f} levels {'ok' if r['passed'] else 'FAILED'}"
            )
    if not gate["variants"]:
        lines.append("  (no variants besides fp32 to score)")
    return "\n".join(lines)
