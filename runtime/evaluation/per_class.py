"""Per-class figures of a generator, and the warnings that keep mode collapse from passing silently.

A conditional GAN that ignores z draws one image per class: its labels are right, the evaluator is confident and
every class appears equally often, so class coverage and confidence look fine and FID over the whole set only
looks "somewhat worse". What gives it away is inside each class: the images of a class are all alike (diversity
far below that of the real images of the class) and cover almost none of the class's real images (recall).

Per class k (`per_class_figures`):
    n, share: generated images of class k (asked for label k by a conditional model; predicted as k by the
        evaluator for an unconditional one) and their share of all generated images; real_n, real_share: the
        same for the real reference.
    accuracy: conditional models only: share of the images asked for k that the evaluator classifies as k.
    precision, recall: Kynkaanniemi et al.'s k-NN precision and recall against the real images of class k.
    diversity: mean pairwise evaluator-feature distance within the generated images of class k, divided by the
        same figure for the real images of class k (1 = as varied as real images, 0 = all identical).
    floor_precision, floor_recall, floor_diversity: the same for the real-vs-real floor sample (real training
        images of class k against the reference), i.e. what a perfect generator scores at this sample size.

Real images are grouped by the evaluator's predicted class, not by their labels: one rule for labelled and
unlabelled data, for the reference and for the floor sample (whose cached outputs hold probabilities, not
labels). The evaluator's test accuracy, in the report, says how far that grouping can be off (97-99% on MNIST
and Fashion-MNIST evaluators).

`collapse_warnings` turns the figures into warnings (`mode_collapse`, and for unconditional models
`missing_classes` and `dominant_class`); `format_per_class` prints the table. numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgegan.runtime.evaluation.metrics import PR_NEIGHBOURS, mean_pairwise_distance, precision_recall

__all__ = [
    "per_class_figures",
    "collapse_warnings",
    "format_per_class",
    "format_warning",
    "DIVERSITY_COLLAPSE",
    "DIVERSITY_LOW",
    "RECALL_WARN_SHARE",
    "RECALL_WARN",
    "MISSING_SHARE",
    "DOMINANT_SHARE",
]

# Thresholds, measured on MNIST with a 128-d evaluator (98.8% test accuracy), 1000 generated images per class
# against the ~1000 test images of the class. Real training images: diversity 0.97-1.05, recall 0.87-0.92.
# One image per class (G ignores z): diversity 0.000, recall 0.000; with slight pixel noise on that image:
# diversity 0.05-0.09, recall 0.000. Two distinct images per class: diversity 0.26-0.65, recall 0.000. A real
# conditional MLP GAN after 600 steps (labels 61% right): diversity 0.13-0.22, recall 0.000 in every class. Real
# digits blurred twice (3x3 box) or at half contrast: diversity 0.46-0.54, recall ~0 (on the border: in feature
# space a blurry class is less varied too). Real digits under heavy noise (sigma 80 levels): diversity 0.72-0.89,
# recall 0.00-0.03. k-NN recall drops to ~0 both for a collapsed class and for images off the data manifold, so
# diversity decides which of the two a low recall is.
DIVERSITY_COLLAPSE = 0.3  # below: the images of the class are (near) copies of one or two images -> mode_collapse
DIVERSITY_LOW = 0.5  # below, with a recall far under real's: a few modes per class -> mode_collapse too
RECALL_WARN_SHARE = 0.25  # "far under": below a quarter of the real floor's recall for the class ...
RECALL_WARN = 0.2  # ... or, without a floor, below this (real images score 0.87-0.92 at 1000 per class)
# An unconditional model: a class generated at under a fifth of its real share is missing; at over twice its real
# share, dominant (a generator that draws one class far more often than the data has it is collapsing onto it).
MISSING_SHARE = 0.2
DOMINANT_SHARE = 2.0
MIN_ROWS = PR_NEIGHBOURS + 1  # k-NN precision/recall need more than k images on each side


def _group(features: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    return features[groups == k]


def _compare(real: np.ndarray, fake: np.ndarray, real_spread: float | None, seed: int) -> dict[str, float | None]:
    """precision, recall and diversity ratio of one class's generated (or floor) features against real ones."""
    out: dict[str, float | None] = {"precision": None, "recall": None, "diversity": None}
    if len(real) >= MIN_ROWS and len(fake) >= MIN_ROWS:
        out["precision"], out["recall"] = precision_recall(real, fake, PR_NEIGHBOURS)
    elif len(real) >= MIN_ROWS:
        out["recall"] = 0.0  # no (or almost no) images of the class: none of its real images is covered
    if real_spread and len(fake) >= 2:
        out["diversity"] = mean_pairwise_distance(fake, seed=seed) / real_spread
    return out


def per_class_figures(
    real_features: np.ndarray,
    real_probs: np.ndarray,
    fake_features: np.ndarray,
    fake_probs: np.ndarray,
    labels: np.ndarray | None = None,
    class_names: list[str] | None = None,
    floor: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-class figures of generated images against real ones (see the module docstring).

    Args:
        real_features, real_probs: the real reference's evaluator outputs [N, D], [N, K].
        fake_features, fake_probs: the generated images' outputs [M, D], [M, K].
        labels: int [M] labels the images were asked for (conditional models), or None (group by prediction).
        class_names: K names (defaults to the indices).
        floor: (against_features, against_probs, sample_features, sample_probs): real images scored against
            real ones, for the floor columns; None leaves them out.
        seed: seed of the subsets the diversity figure takes above 2000 images.

    Returns:
        {"grouping": "label" | "predicted", "classes": [one dict per class], "thresholds": {...}}.
    """
    k_classes = real_probs.shape[1]
    names = list(class_names or [])
    names += [str(k) for k in range(len(names), k_classes)]
    real_groups = real_probs.argmax(axis=1)
    predicted = fake_probs.argmax(axis=1)
    fake_groups = predicted if labels is None else np.asarray(labels, np.int64)
    if floor is not None:
        against_f, against_p, sample_f, sample_p = floor
        against_groups, sample_groups = against_p.argmax(axis=1), sample_p.argmax(axis=1)
    rows = []
    for k in range(k_classes):
        real_k, fake_k = _group(real_features, real_groups, k), _group(fake_features, fake_groups, k)
        real_spread = mean_pairwise_distance(real_k, seed=seed) if len(real_k) >= 2 else None
        row: dict[str, Any] = {
            "class": k,
            "name": names[k],
            "n": int(len(fake_k)),
            "share": float(len(fake_k) / len(fake_groups)),
            "real_n": int(len(real_k)),
            "real_share": float(len(real_k) / len(real_groups)),
            "accuracy": None if labels is None or not len(fake_k) else float((predicted[fake_groups == k] == k).mean()),
            **_compare(real_k, fake_k, real_spread, seed),
            "floor_precision": None,
            "floor_recall": None,
            "floor_diversity": None,
        }
        if floor is not None:
            against_k = _group(against_f, against_groups, k)
            spread = mean_pairwise_distance(against_k, seed=seed) if len(against_k) >= 2 else None
            row.update(
                {
                    f"floor_{key}": value
                    for key, value in _compare(against_k, _group(sample_f, sample_groups, k), spread, seed).items()
                }
            )
        rows.append(row)
    return {
        "grouping": "predicted" if labels is None else "label",
        "classes": rows,
        "thresholds": {
            "diversity_collapse": DIVERSITY_COLLAPSE,
            "diversity_low": DIVERSITY_LOW,
            "recall_share_of_floor": RECALL_WARN_SHARE,
            "recall_without_floor": RECALL_WARN,
            "missing_share": MISSING_SHARE,
            "dominant_share": DOMINANT_SHARE,
        },
    }


def _label(row: dict[str, Any]) -> str:
    return str(row["class"]) if row["name"] == str(row["class"]) else f"{row['class']} ({row['name']})"


def _listing(rows: list[dict[str, Any]], limit: int = 10) -> str:
    labels = [_label(r) for r in rows]
    return ", ".join(labels[:limit]) + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


def _low_recall(row: dict[str, Any]) -> bool:
    if row["recall"] is None:
        return False
    limit = RECALL_WARN_SHARE * row["floor_recall"] if row.get("floor_recall") else RECALL_WARN
    return row["recall"] < limit


def _recall_text(rows: list[dict[str, Any]]) -> str:
    recalls = [r["recall"] for r in rows if r["recall"] is not None]
    if not recalls:
        return ""
    floors = [r["floor_recall"] for r in rows if r.get("floor_recall") is not None]
    real = f" vs {float(np.mean(floors)):.2f} for real images" if floors else f" (warns below {RECALL_WARN:g})"
    low, high = f"{min(recalls):.2f}", f"{max(recalls):.2f}"
    return f"recall {low}" + ("" if low == high else f"-{high}") + real


def _warning(kind: str, rows: list[dict[str, Any]], message: str, keys: tuple[str, ...]) -> dict[str, Any]:
    return {
        "kind": kind,
        "classes": [r["class"] for r in rows],
        "names": [r["name"] for r in rows],
        "message": message,
        "details": [{key: r.get(key) for key in ("class", "name", *keys)} for r in rows],
    }


def _shares(rows: list[dict[str, Any]]) -> str:
    return ", ".join(f"{_label(r)} {r['share']:.1%} vs {r['real_share']:.1%}" for r in rows[:5])


def collapse_warnings(per_class: dict[str, Any]) -> list[dict[str, Any]]:
    """Warnings from `per_class_figures`' result: a list of {"kind", "classes", "names", "message", "details"}.

    mode_collapse: classes whose diversity is below DIVERSITY_COLLAPSE of real images', or below DIVERSITY_LOW
        with a recall under RECALL_WARN_SHARE of the real floor's (RECALL_WARN without a floor).
    low_recall: classes with such a recall whose images still vary: off the data manifold (noise, broken shapes)
        rather than collapsed.
    missing_classes (unconditional): classes generated at less than MISSING_SHARE of their real share.
    dominant_class (unconditional): classes generated at more than DOMINANT_SHARE times their real share.
    Classes an unconditional model does not draw at all are reported as missing only.
    """
    rows = per_class["classes"]
    conditional = per_class["grouping"] == "label"
    missing = [] if conditional else [r for r in rows if r["real_n"] and r["share"] < MISSING_SHARE * r["real_share"]]
    dominant = [] if conditional else [r for r in rows if r["real_n"] and r["share"] > DOMINANT_SHARE * r["real_share"]]
    present = [r for r in rows if r["class"] not in {m["class"] for m in missing}]

    def below(r: dict[str, Any], limit: float) -> bool:
        return r["diversity"] is not None and r["diversity"] < limit

    identical = [r for r in present if below(r, DIVERSITY_COLLAPSE)]
    partial = [r for r in present if not below(r, DIVERSITY_COLLAPSE) and below(r, DIVERSITY_LOW) and _low_recall(r)]
    low_recall = [r for r in present if not below(r, DIVERSITY_LOW) and _low_recall(r)]
    figure_keys = ("n", "diversity", "recall", "floor_recall", "precision")
    warnings: list[dict[str, Any]] = []

    collapsed = sorted(identical + partial, key=lambda r: r["class"])
    if collapsed:
        what = "nearly identical" if not partial else "far less varied than real images"
        figures = [f"diversity {min(r['diversity'] for r in collapsed):.2f} of real", _recall_text(collapsed)]
        few = f"the generator draws only a few distinct images of these {'labels' if conditional else 'classes'}"
        cause = "the generator ignores its latent z for these labels" if conditional and not partial else few
        warnings.append(
            _warning(
                "mode_collapse",
                collapsed,
                f"mode collapse: the images of class{'es' if len(collapsed) > 1 else ''} {_listing(collapsed)} are "
                f"{what} ({'; '.join(f for f in figures if f)}): {cause}",
                figure_keys,
            )
        )
    if low_recall:
        spreads = [r["diversity"] for r in low_recall if r["diversity"] is not None]
        varied = f" though they vary (diversity {min(spreads):.2f} of real or more)" if spreads else ""
        warnings.append(
            _warning(
                "low_recall",
                low_recall,
                f"low recall: the images of class{'es' if len(low_recall) > 1 else ''} {_listing(low_recall)} cover few "
                f"of the real images of the class ({_recall_text(low_recall)}){varied}: they lie off the data (noise, "
                "broken shapes) more than they collapse",
                figure_keys,
            )
        )
    if missing:
        warnings.append(
            _warning(
                "missing_classes",
                missing,
                f"mode collapse: the generator (almost) never draws class{'es' if len(missing) > 1 else ''} "
                f"{_listing(missing)} (generated vs real share: {_shares(missing)}; warns under {MISSING_SHARE:g}x)",
                ("n", "share", "real_share"),
            )
        )
    if dominant:
        warnings.append(
            _warning(
                "dominant_class",
                dominant,
                f"mode collapse: the generator draws class{'es' if len(dominant) > 1 else ''} {_listing(dominant)} far "
                f"more often than the data holds (generated vs real share: {_shares(dominant)}; warns over "
                f"{DOMINANT_SHARE:g}x)",
                ("n", "share", "real_share"),
            )
        )
    return warnings


def format_warning(warning: dict[str, Any]) -> str:
    """One warning as the line `edgegan eval` prints to stderr."""
    return f"Warning: {warning['message']}"


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_per_class(per_class: dict[str, Any]) -> list[str]:
    """The per-class table, one row per class, the real floor beside each figure."""
    conditional = per_class["grouping"] == "label"
    rows = per_class["classes"]
    header = (
        ["class", "n"]
        + (["label acc"] if conditional else ["share", "real share"])
        + ["precision", "recall", "real recall", "diversity", "real diversity"]
    )
    table = [header]
    for r in rows:
        cells = [_label(r), str(r["n"])]
        if conditional:
            cells.append(_cell(r["accuracy"], ".1%"))
        else:
            cells += [_cell(r["share"], ".1%"), _cell(r["real_share"], ".1%")]
        cells += [
            _cell(r["precision"], ".3f"),
            _cell(r["recall"], ".3f"),
            _cell(r["floor_recall"], ".3f"),
            _cell(r["diversity"], ".3f"),
            _cell(r["floor_diversity"], ".3f"),
        ]
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    grouping = (
        "the label each image was asked for"
        if conditional
        else "the class the evaluator predicts for each generated image"
    )
    lines = [f"per class (generated images grouped by {grouping}; real images by the evaluator's prediction):"]
    for i, row in enumerate(table):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [
        "(diversity: mean pairwise feature distance within the class / the same for real images of the class,",
        " 1 = as varied as real, 0 = all identical; real columns: real training images of the class, same n)",
    ]
    return lines
