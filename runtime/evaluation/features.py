"""Evaluator features of image sets (FeatureSet), their statistics cache, and FID/KID/precision/recall of two sets.

Reference statistics are cached per (dataset, split, evaluator digest, data digest) in
($XDG_CACHE_HOME or ~/.cache)/edgegan/stats as .npz files read without pickle and written atomically, so a second
`edgegan eval` only generates and scores the model's images.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgegan.runtime.evaluation.evaluator import Evaluator, file_slug
from edgegan.runtime.evaluation.metrics import (
    PR_NEIGHBOURS,
    feature_stats,
    frechet_distance,
    kernel_inception_distance,
    kth_neighbour_radii,
    precision_recall,
)
from edgegan.runtime.files import atomic_write, cache_root
from edgegan.runtime.progress import Progress

__all__ = [
    "FeatureSet",
    "stats_cache_dir",
    "reference_features",
    "compare_feature_sets",
    "images_digest",
    "write_cache",
    "score_images",
    "CACHE_FORMAT",
]

CACHE_FORMAT = 1


def stats_cache_dir() -> Path:
    """($XDG_CACHE_HOME or ~/.cache)/edgegan/stats: cached reference features and statistics."""
    return cache_root() / "stats"


@dataclass
class FeatureSet:
    """Evaluator outputs for one set of images, with what the metrics reuse.

    features: float32 [N, D]; probs: float32 [N, K]; mu: float64 [D]; sigma: float64 [D, D];
    radii: float32 [N] squared k-th neighbour distances (k = PR_NEIGHBOURS) for precision/recall;
    extra: JSON-able notes stored with a cached set (e.g. floor figures).
    """

    features: np.ndarray
    probs: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    radii: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)
    cached: bool = False  # read from the stats cache
    cache_path: Path | None = None  # where it is cached (None: not cached)
    cache_meta: dict[str, Any] | None = None

    def save(self) -> None:
        """Rewrite the cache entry (after `extra` changed); a no-op for a set that is not cached."""
        if self.cache_path is not None and self.cache_meta is not None:
            write_cache(self.cache_path, self.cache_meta, self)

    @classmethod
    def from_outputs(cls, features: np.ndarray, probs: np.ndarray) -> FeatureSet:
        mu, sigma = feature_stats(features)
        return cls(features, probs, mu, sigma, kth_neighbour_radii(features, PR_NEIGHBOURS))

    def __len__(self) -> int:
        return len(self.features)


def images_digest(images: np.ndarray) -> str:
    """SHA-256 of an image array's shape and bytes: identifies a data set in the stats cache."""
    digest = hashlib.sha256(json.dumps([list(images.shape), str(images.dtype)]).encode())
    digest.update(np.ascontiguousarray(images).data)
    return digest.hexdigest()


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # allow_pickle=False: plain arrays only, as read_cache loads them (np.load with allow_pickle=False)
    atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **arrays))


def _cache_path(dataset: str, split: str, evaluator: Evaluator, data_digest: str) -> Path:
    name = f"{file_slug(dataset)}-{file_slug(split)}-{evaluator.digest[:16]}-{data_digest[:16]}.npz"
    return stats_cache_dir() / name


def _read_cache(path: Path, meta: dict[str, Any]) -> FeatureSet | None:
    """A cached FeatureSet whose stored meta equals `meta`, or None (absent, stale, corrupt: recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            stored = json.loads(str(z["meta"]))
            if stored != meta:
                return None
            fs = FeatureSet(
                z["features"], z["probs"], z["mu"], z["sigma"], z["radii"], json.loads(str(z["extra"])), cached=True
            )
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        zipfile.BadZipFile,
    ):  # a truncated or foreign file: recomputed and rewritten
        return None
    return fs


def write_cache(path: Path, meta: dict[str, Any], fs: FeatureSet) -> None:
    """Store a FeatureSet (no pickle: plain arrays plus JSON strings)."""
    _atomic_savez(
        path,
        {
            "meta": np.array(json.dumps(meta, sort_keys=True)),
            "extra": np.array(json.dumps(fs.extra, sort_keys=True)),
            "features": fs.features,
            "probs": fs.probs,
            "mu": fs.mu,
            "sigma": fs.sigma,
            "radii": fs.radii,
        },
    )


def score_images(
    evaluator: Evaluator, images: np.ndarray, desc: str = "score", progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """`evaluator.run(images)` a batch at a time, counted on stderr when `progress` (runtime/progress.py).

    Each slice is one of the session runs `run` makes itself (same batch size, rows independent), so the figures
    are exactly `run`'s.

    Returns:
        (features float32 [N, D], probabilities float32 [N, K]).
    """
    step = evaluator.batch_size
    if len(images) <= step:
        return evaluator.run(images)
    features, probs = [], []
    with Progress(len(images), unit="image", desc=desc, quiet=not progress) as bar:
        for start in range(0, len(images), step):
            part_features, part_probs = evaluator.run(images[start : start + step])
            features.append(part_features)
            probs.append(part_probs)
            bar.update(len(part_features))
    return np.concatenate(features), np.concatenate(probs)


def reference_features(
    evaluator: Evaluator, images: np.ndarray, dataset: str, split: str, cache: bool = True, progress: bool = False
) -> FeatureSet:
    """Features and statistics of real images, from the cache when this exact (data, evaluator) was seen before.

    Args:
        evaluator: the loaded evaluator.
        images: uint8 [N, H, W, C] real images.
        dataset, split: names for the cache file (the key also holds the evaluator's and the images' digests).
        cache: read and write the cache.
        progress: count the images scored on stderr (nothing is shown for a set read from the cache).

    Returns:
        FeatureSet; `cached` says whether it came from disk, `cache_path` where it is stored (None: cache off).
    """
    digest = images_digest(images)
    path = _cache_path(dataset, split, evaluator, digest)
    meta = {
        "format": CACHE_FORMAT,
        "dataset": dataset,
        "split": split,
        "evaluator_sha256": evaluator.digest,
        "data_sha256": digest,
        "n": int(len(images)),
        "k": PR_NEIGHBOURS,
    }
    found = _read_cache(path, meta) if cache else None
    fs = found or FeatureSet.from_outputs(*score_images(evaluator, images, f"score {dataset} {split}", progress))
    if cache:
        fs.cache_path, fs.cache_meta = path, meta
        if found is None:
            fs.save()
    return fs


def compare_feature_sets(
    reference: FeatureSet, other: FeatureSet, kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0
) -> dict[str, float]:
    """FID, KID (mean, std), precision and recall of `other` against `reference`.

    Returns:
        {"fid", "kid_mean", "kid_std", "precision", "recall"}.
    """
    kid = kernel_inception_distance(reference.features, other.features, kid_subsets, kid_subset_size, seed)
    precision, recall = precision_recall(reference.features, other.features, PR_NEIGHBOURS, real_radii=reference.radii)
    return {
        "fid": frechet_distance(reference.mu, reference.sigma, other.mu, other.sigma),
        "kid_mean": kid.mean,
        "kid_std": kid.std,
        "precision": precision,
        "recall": recall,
    }
