"""`evaluate`: image quality of a generator, torch-free, scored with a domain evaluator against real data.

The evaluator (evaluator.py) turns uint8 images into features and class probabilities; on the features this
module computes FID and KID against the real test split, precision and recall (k-NN manifolds), and from the
probabilities class coverage and confidence (metrics.py) and per-class figures (per_class.py). Reference
statistics come from the cache in features.py, so a second `edgegan eval` only generates and scores the model's
images. Beside every figure the real-vs-real floor is reported: what real images score against the same
reference at the same sample size (a perfect generator's figure).

Example:
    >>> report = evaluate("models/fm/generator.onnx", "fashion-mnist", n=10000)   # doctest: +SKIP
    >>> print(format_report(report))                                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgegan.runtime.evaluation.datasets import DataError, ImageData, load_images

# The evaluator contract and the feature cache live beside this module; their names stay importable from here.
from edgegan.runtime.evaluation.evaluator import (
    EVALUATOR_FORMAT,
    EVALUATOR_KEYS,
    INPUT_PIXELS,
    OUTPUT_FEATURES,
    OUTPUT_LOGITS,
    Evaluator,
    EvaluatorInfo,
    QualityError,
    default_evaluator_path,
    file_slug,
    how_to_make_evaluator,
    resolve_evaluator,
)
from edgegan.runtime.evaluation.features import (
    FeatureSet,
    compare_feature_sets,
    reference_features,
    score_images,
    stats_cache_dir,
)
from edgegan.runtime.evaluation.metrics import PR_NEIGHBOURS, class_coverage
from edgegan.runtime.evaluation.per_class import collapse_warnings, format_per_class, per_class_figures
from edgegan.runtime.files import atomic_write
from edgegan.runtime.memory import MEMORY_HINT, check_memory
from edgegan.runtime.progress import Progress

__all__ = [
    "QualityError",
    "EvaluatorInfo",
    "Evaluator",
    "FeatureSet",
    "QualityReport",
    "evaluate",
    "format_report",
    "write_json",
    "default_evaluator_path",
    "how_to_make_evaluator",
    "resolve_evaluator",
    "stats_cache_dir",
    "reference_features",
    "compare_feature_sets",
    "inception_status",
    "load_reference",
    "label_mismatch",
    "EVALUATOR_FORMAT",
    "EVALUATOR_KEYS",
    "INPUT_PIXELS",
    "OUTPUT_LOGITS",
    "OUTPUT_FEATURES",
]

FLOOR_SEED = 0  # which real images form the floor sample (fixed: the floor must not move with --seed)
# Inception-v3 FID weights as pytorch-fid and torch-fidelity store them (both under torch.hub's checkpoints).
INCEPTION_FILES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")


def _coverage_dict(probs: np.ndarray, labels: np.ndarray | None = None) -> dict[str, Any]:
    return asdict(class_coverage(probs, labels))


def inception_status() -> dict[str, Any]:
    """Whether the Inception-v3 FID can be computed here.

    pytorch-fid and torch-fidelity keep their Inception weights in torch.hub's checkpoint folder
    ($TORCH_HOME, default ($XDG_CACHE_HOME or ~/.cache)/torch, then hub/checkpoints). Those are PyTorch weights;
    this torch-free runtime does not run them, so the Inception FID is always reported as skipped, with the
    reason: where it looked and found nothing, or where the weights are and which tool can use them.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    torch_home = Path(os.environ.get("TORCH_HOME") or base / "torch").expanduser()
    folders = list(dict.fromkeys([torch_home / "hub" / "checkpoints", base / "torch" / "hub" / "checkpoints"]))
    looked = [str(folder / name) for folder in folders for name in INCEPTION_FILES]
    found = [p for p in looked if Path(p).is_file()]
    if not found:
        return {
            "status": "skipped",
            "reason": f"no local Inception weights (looked in {', '.join(looked)})",
            "looked": looked,
        }
    return {
        "status": "skipped",
        "reason": f"Inception weights found at {found[0]}, but they are PyTorch weights and `edgegan eval` is "
        "torch-free; compute the Inception FID with pytorch-fid or torch-fidelity on images written "
        "by `edgegan sample --npy`",
        "looked": looked,
        "found": found,
    }


# ----------------------------------------------------------------------------------------------------- evaluate
@dataclass
class QualityReport:
    """Everything `edgegan eval` measured; `to_dict()` is what --json writes."""

    model: dict[str, Any]
    evaluator: dict[str, Any]
    reference: dict[str, Any]
    metrics: dict[str, Any]
    floor: dict[str, Any]
    coverage: dict[str, Any]
    reference_coverage: dict[str, Any]
    inception: dict[str, Any]
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)
    per_class: dict[str, Any] = field(default_factory=dict)  # edgegan.runtime.evaluation.per_class.per_class_figures
    warnings: list[dict[str, Any]] = field(
        default_factory=list
    )  # edgegan.runtime.evaluation.per_class.collapse_warnings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_reference(dataset: str, data_dir, info: EvaluatorInfo) -> tuple[ImageData, str, list[str]]:
    """The real split to compare against: test, or train (with a note) when the data has no test split."""
    size = info.height if info.height == info.width else None
    try:
        return (
            load_images(dataset, "test", data_dir, image_size=size, channels=info.channels, progress=False),
            "test",
            [],
        )
    except DataError as exc:
        if dataset not in ("npz", "folder"):
            raise
        data = load_images(dataset, "train", data_dir, image_size=size, channels=info.channels, progress=False)
        first = str(exc).splitlines()[0]
        return (
            data,
            "train",
            [
                f"no test split ({first}): comparing against the training split the evaluator "
                "was trained on, which flatters every figure"
            ],
        )


def _floor(
    evaluator: Evaluator,
    dataset: str,
    data_dir,
    reference: FeatureSet,
    ref_data: ImageData,
    ref_split: str,
    n: int,
    cache: bool,
    progress: bool = False,
) -> tuple[dict[str, Any], tuple[FeatureSet, FeatureSet] | None]:
    """Real-vs-real figures: n training images against the test reference (what a generator that samples the
    true distribution would score at this n), or, without a separate training split, two disjoint halves of
    the reference. The figures are cached with the floor sample's features.

    Returns:
        (figures, (the real set it was scored against, the floor sample) or None when there is no floor).
    """
    info = evaluator.info
    pool = None
    if ref_split == "test":
        try:
            size = info.height if info.height == info.width else None
            pool = load_images(
                dataset, "train", data_dir, image_size=size, channels=info.channels, progress=False
            ).images
        except DataError:
            pool = None
    rng = np.random.default_rng(FLOOR_SEED)
    if pool is not None and len(pool) > PR_NEIGHBOURS:
        m = min(n, len(pool))
        sample = pool[np.sort(rng.choice(len(pool), m, replace=False))]
        fs = reference_features(evaluator, sample, dataset, f"train-sample{m}", cache, progress)
        against = reference
        method = f"{m} training images vs the {len(reference)} test images"
    else:
        order = rng.permutation(len(ref_data.images))
        half = len(order) // 2
        if half <= PR_NEIGHBOURS:
            return {"method": "none", "reason": f"the reference has only {len(order)} images"}, None
        a, b = np.sort(order[:half]), np.sort(order[half : 2 * half])
        against = reference_features(evaluator, ref_data.images[a], dataset, f"{ref_split}-halfA", cache, progress)
        fs = reference_features(evaluator, ref_data.images[b], dataset, f"{ref_split}-halfB", cache, progress)
        method = f"two disjoint halves of the {ref_split} split ({half} vs {half} images)"
    key = {"against": against.cache_meta or {}, "method": method}
    stored = fs.extra.get("floor")
    if cache and isinstance(stored, dict) and stored.get("key") == json.loads(json.dumps(key)):
        return {"method": method, **stored["metrics"], "cached": True}, (against, fs)
    figures = compare_feature_sets(against, fs)
    fs.extra["floor"] = {"key": key, "metrics": figures}
    fs.save()
    return {"method": method, **figures, "cached": False}, (against, fs)


def label_mismatch(gen_names: list[str], gen_classes: int, info: EvaluatorInfo) -> str | None:
    """None when a conditional generator's labels mean the evaluator's classes; else why per-class is skipped."""
    if gen_classes != info.num_classes:
        return f"the generator has {gen_classes} classes, the evaluator {info.num_classes}"
    if gen_names and [n.casefold() for n in gen_names] != [n.casefold() for n in info.class_names]:
        return f"class names differ (generator {gen_names[:3]}..., evaluator {info.class_names[:3]}...)"
    return None


EVAL_STAGES = ("reference", "generate", "score", "floor", "per_class")  # the report's `seconds` keys, in order


def _stage_done(stages: Progress, running_next: str | None) -> None:
    stages.set_postfix(**({"next": running_next} if running_next else {}))
    stages.update()


def _generate(gen, n: int, seed: int, progress: bool) -> np.ndarray:
    """`gen.sample(n, seed)`, a batch at a time so it can be counted: uint8 [n, H, W, C] (iter_sample's batches
    concatenate to exactly sample's images)."""
    check_memory(gen.memory_needed(n), f"{n} generated images", MEMORY_HINT)
    images = np.empty((n, *gen.image_shape), np.uint8)
    done = 0
    with Progress(n, unit="image", desc="generate", quiet=not progress) as bar:
        for part in gen.iter_sample(n, seed=seed):  # uint8 [b, H, W, C]
            images[done : done + len(part)] = part
            done += len(part)
            bar.update(len(part))
    return images


def evaluate(
    model: str | os.PathLike,
    dataset: str,
    *,
    data_dir: str | os.PathLike | None = None,
    n: int = 10000,
    evaluator: str | os.PathLike | None = None,
    seed: int = 0,
    provider: str = "cpu",
    threads: int | None = None,
    batch_size: int = 256,
    floor: bool = True,
    cache: bool = True,
    progress: bool = True,
) -> QualityReport:
    """Score a generator's images against the real test split with a domain evaluator.

    Args:
        model: generator.onnx or a variant (anything `runtime.Generator` loads).
        dataset: the data the generator learned ("fashion-mnist", "mnist", "npz", "folder").
        data_dir: as for `edgegan train` (IDX folder, .npz file, image tree).
        n: generated images (latents `draw_latents(n, nz, seed)`; conditional: labels arange(n) % K).
        evaluator: the evaluator .onnx; None uses `default_evaluator_path(dataset)`.
        seed: latent seed.
        provider, threads, batch_size: onnxruntime settings for both the generator and the evaluator.
        floor: also compute the real-vs-real floor.
        cache: read/write reference statistics in `stats_cache_dir()`.
        progress: count images generated and scored on stderr (a tqdm bar on a terminal, a plain line every
            $EDGEGAN_PROGRESS_SECONDS elsewhere: runtime/progress.py).

    Returns:
        QualityReport.

    Raises:
        QualityError, DataError, and the Generator's errors (all EdgeganError).
    """
    from edgegan.runtime.generator import Generator

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= PR_NEIGHBOURS + 1:
        raise QualityError(f"-n must be an integer > {PR_NEIGHBOURS + 1} (10000 is the usual FID sample), got {n!r}")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    gen = Generator(model, provider=provider, threads=threads, batch_size=batch_size)
    ev_path = resolve_evaluator(evaluator, dataset)
    ev = Evaluator(ev_path, provider=provider, threads=threads)
    ev.check_images((1, *gen.image_shape), f"the generator's images ({gen.path.name})")
    notes = []
    if file_slug(ev.info.dataset) != file_slug(dataset):
        notes.append(f"the evaluator was trained on {ev.info.dataset!r}, the reference is {dataset!r}")

    # Whole stages on stderr, each line naming the one that runs next: the metrics are seconds to minutes of
    # numpy with nothing to count (images generated and scored are counted by their own bars).
    with Progress(len(EVAL_STAGES), unit="stage", desc="eval", quiet=not progress, interval=0, rate=False) as stages:
        stages.set_postfix(next="load and score the real reference")
        stages.update(0)
        ref_data, ref_split, more = load_reference(dataset, data_dir, ev.info)
        notes += more
        ev.check_images(ref_data.images.shape, f"the {dataset} {ref_split} images")
        reference = reference_features(ev, ref_data.images, dataset, ref_split, cache, progress)
        seconds["reference"] = time.perf_counter() - t0
        _stage_done(stages, "generate")

        t1 = time.perf_counter()
        images = _generate(gen, int(n), seed, progress)  # uint8 [n, H, W, C]
        seconds["generate"] = time.perf_counter() - t1
        _stage_done(stages, "score the generated images: FID, KID, precision, recall")
        t2 = time.perf_counter()
        fake = FeatureSet.from_outputs(*score_images(ev, images, "score generated", progress))
        metrics = compare_feature_sets(reference, fake)
        labels = None
        if gen.conditional:
            why = label_mismatch(gen.class_names, gen.num_classes, ev.info)
            if why is None:
                labels = gen.resolve_labels(None, int(n))
            else:
                notes.append(f"per-class coverage skipped: {why}")
        coverage = _coverage_dict(fake.probs, labels)
        seconds["score"] = time.perf_counter() - t2
        _stage_done(stages, "real-vs-real floor" if floor else "per-class figures")

        t3 = time.perf_counter()
        floor_figures, floor_sets = ({"method": "none", "reason": "not asked for"}, None)
        if floor:
            floor_figures, floor_sets = _floor(
                ev, dataset, data_dir, reference, ref_data, ref_split, int(n), cache, progress
            )
        seconds["floor"] = time.perf_counter() - t3
        _stage_done(stages, "per-class figures")

        # Per class: conditional models by the label asked for, unconditional ones by the evaluator's prediction.
        t4 = time.perf_counter()
        per_class = per_class_figures(
            reference.features,
            reference.probs,
            fake.features,
            fake.probs,
            labels,
            ev.info.class_names,
            floor=None
            if floor_sets is None
            else (floor_sets[0].features, floor_sets[0].probs, floor_sets[1].features, floor_sets[1].probs),
            seed=seed,
        )
        collapse = collapse_warnings(per_class)
        seconds["per_class"] = time.perf_counter() - t4
        _stage_done(stages, None)
    seconds["total"] = time.perf_counter() - t0

    return QualityReport(
        model={
            "path": str(gen.path),
            "precision": gen.precision,
            "arch": gen.contract.arch,
            "dataset": gen.contract.dataset,
            "num_classes": gen.num_classes,
            "n": int(n),
            "seed": seed,
            "provider": gen.providers[0],
        },
        evaluator={
            "path": str(ev.path),
            "sha256": ev.digest,
            "dataset": ev.info.dataset,
            "test_accuracy": ev.info.test_accuracy,
            "feature_layer": ev.info.feature_layer,
            "feature_dim": ev.info.feature_dim,
            "class_names": ev.info.class_names,
        },
        reference={
            "dataset": dataset,
            "split": ref_split,
            "n": len(reference),
            "source": ref_data.source,
            "cache": str(reference.cache_path) if reference.cache_path else None,
            "cached": reference.cached,
        },
        metrics=metrics,
        floor=floor_figures,
        coverage=coverage,
        reference_coverage=_coverage_dict(reference.probs),
        inception=inception_status(),
        seconds=seconds,
        notes=notes,
        per_class=per_class,
        warnings=collapse,
    )


def format_report(report: QualityReport) -> str:
    """The report as text: one row per figure, the model beside the real-vs-real floor."""
    m, fl, cov, ref_cov = report.metrics, report.floor, report.coverage, report.reference_coverage
    have_floor = "fid" in fl

    def pair(key: str, fmt: str) -> tuple[str, str]:
        return format(m[key], fmt), (format(fl[key], fmt) if have_floor else "-")

    kid_model = f"{m['kid_mean']:.4g} ± {m['kid_std']:.3g}"
    kid_floor = f"{fl['kid_mean']:.4g} ± {fl['kid_std']:.3g}" if have_floor else "-"
    rows = [
        ("metric", "model", "real (floor)"),
        ("FID (evaluator features)", *pair("fid", ".3f")),
        ("KID (mean ± std)", kid_model, kid_floor),
        (f"precision (k={PR_NEIGHBOURS})", *pair("precision", ".3f")),
        (f"recall (k={PR_NEIGHBOURS})", *pair("recall", ".3f")),
        ("class coverage (entropy)", f"{cov['entropy']:.3f}", f"{ref_cov['entropy']:.3f}"),
        ("mean confidence", f"{cov['confidence']:.3f}", f"{ref_cov['confidence']:.3f}"),
    ]
    if cov.get("label_accuracy") is not None:
        rows.append(("label accuracy (conditional)", f"{cov['label_accuracy']:.3f}", "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        f"model:     {report.model['path']} ({report.model['precision']}, {report.model['n']} images, "
        f"seed {report.model['seed']}, {report.model['provider']})",
        f"evaluator: {report.evaluator['path']} ({report.evaluator['dataset']}, {report.evaluator['feature_dim']}-d "
        f"{report.evaluator['feature_layer']}, test accuracy {report.evaluator['test_accuracy']:.2%})",
        f"reference: {report.reference['dataset']} {report.reference['split']} split, {report.reference['n']} images"
        f"{' (cached statistics)' if report.reference['cached'] else ''}",
        f"floor:     {fl.get('method', 'none')}" + (f" ({fl['reason']})" if "reason" in fl else ""),
        "",
    ]
    for i, row in enumerate(rows):
        lines.append(
            "  ".join(cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths)))
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(
        "(floor column: FID, KID, precision and recall of real images at the same n; coverage and "
        "confidence of the test split itself)"
    )
    names = report.evaluator["class_names"]
    hist = ", ".join(f"{names[k] if k < len(names) else k} {share:.0%}" for k, share in enumerate(cov["histogram"]))
    lines += ["", f"predicted classes: {hist}"]
    if cov.get("per_class") is not None:
        per = ", ".join(
            f"{names[k] if k < len(names) else k} {p:.0%}" for k, p in enumerate(cov["per_class"]) if p is not None
        )
        lines.append(f"asked-for label recognised: {per}")
    if report.per_class:
        lines += ["", *format_per_class(report.per_class)]
    lines.append(f"Inception FID: {report.inception['status']}: {report.inception['reason']}")
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)


def write_json(report: QualityReport, path: str | os.PathLike) -> Path:
    """Write the report as JSON atomically (temp file in the same folder, fsync, rename)."""
    return atomic_write(path, lambda f: f.write(json.dumps(report.to_dict(), indent=2) + "\n"), binary=False)
