"""Image quality of a generator, torch-free: features from a domain evaluator (ONNX), compared with real data.

The evaluator is a small classifier trained on the real training split (`edgegan evaluator train`), exported to
ONNX with its own metadata (keys below). It takes uint8 pixels [batch, H, W, C], exactly what
`Generator.sample()` returns and what `edgegan.runtime.evaluation.datasets.load_images` reads, and outputs class logits [batch, K]
and penultimate features [batch, D]. On those features this module computes FID and KID against the real test
split, precision and recall (k-NN manifolds), and from the logits class coverage and confidence (metrics.py).

Reference statistics are cached per (dataset, split, evaluator digest, data digest) in
($XDG_CACHE_HOME or ~/.cache)/edgegan/stats as .npz files read without pickle and written atomically, so a second
`edgegan eval` only generates and scores the model's images. Beside every figure the real-vs-real floor is
reported: what real images score against the same reference at the same sample size (a perfect generator's
figure).

Example:
    >>> report = evaluate("models/fm/generator.onnx", "fashion-mnist", n=10000)   # doctest: +SKIP
    >>> print(format_report(report))                                               # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.files import atomic_write, cache_root, file_sha256
from edgegan.runtime.evaluation.metrics import (
    PR_NEIGHBOURS,
    class_coverage,
    feature_stats,
    frechet_distance,
    kernel_inception_distance,
    kth_neighbour_radii,
    precision_recall,
)
from edgegan.runtime.evaluation.per_class import collapse_warnings, format_per_class, per_class_figures

if TYPE_CHECKING:
    from edgegan.runtime.evaluation.datasets import ImageData

__all__ = [
    "QualityError", "EvaluatorInfo", "Evaluator", "FeatureSet", "QualityReport", "evaluate", "format_report",
    "default_evaluator_path", "stats_cache_dir", "reference_features", "compare_feature_sets", "inception_status",
    "load_reference", "label_mismatch",
    "EVALUATOR_FORMAT", "INPUT_PIXELS", "OUTPUT_LOGITS", "OUTPUT_FEATURES",
]

# --- the evaluator's own contract (trainer/evaluator.py writes it, this module reads it) ----------------------
EVALUATOR_FORMAT = "1"
INPUT_PIXELS = "pixels"  # uint8 [batch, H, W, C]
OUTPUT_LOGITS = "logits"  # float32 [batch, K]
OUTPUT_FEATURES = "features"  # float32 [batch, D]
KEY_EVALUATOR = "edgegan.evaluator"  # the format version; its presence marks an evaluator
KEY_EVAL_DATASET = "edgegan.evaluator.dataset"
KEY_EVAL_IMAGE = "edgegan.evaluator.image"  # JSON {channels, height, width}
KEY_EVAL_NUM_CLASSES = "edgegan.evaluator.num_classes"
KEY_EVAL_CLASS_NAMES = "edgegan.evaluator.class_names"  # JSON list
KEY_EVAL_FEATURE_LAYER = "edgegan.evaluator.feature_layer"
KEY_EVAL_FEATURE_DIM = "edgegan.evaluator.feature_dim"
KEY_EVAL_ACCURACY = "edgegan.evaluator.test_accuracy"
KEY_EVAL_TRAIN = "edgegan.evaluator.train"  # JSON: epochs, seed, images, accuracy split, architecture
EVALUATOR_KEYS = (
    KEY_EVALUATOR, KEY_EVAL_DATASET, KEY_EVAL_IMAGE, KEY_EVAL_NUM_CLASSES, KEY_EVAL_CLASS_NAMES,
    KEY_EVAL_FEATURE_LAYER, KEY_EVAL_FEATURE_DIM, KEY_EVAL_ACCURACY, KEY_EVAL_TRAIN,
)

CACHE_FORMAT = 1
FLOOR_SEED = 0  # which real images form the floor sample (fixed: the floor must not move with --seed)
# Inception-v3 FID weights as pytorch-fid and torch-fidelity store them (both under torch.hub's checkpoints).
INCEPTION_FILES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")


class QualityError(EdgeganError):
    """An evaluator that is missing, unreadable or does not fit the generator or data being scored."""


def stats_cache_dir() -> Path:
    """($XDG_CACHE_HOME or ~/.cache)/edgegan/stats: cached reference features and statistics."""
    return cache_root() / "stats"


def default_evaluator_path(dataset: str) -> Path:
    """($XDG_CACHE_HOME or ~/.cache)/edgegan/evaluators/<dataset>.onnx: where `edgegan evaluator train` writes
    by default and where `edgegan eval` and `edgegan export` look when no evaluator is given."""
    return cache_root() / "evaluators" / f"{_slug(dataset)}.onnx"


def how_to_make_evaluator(dataset: str) -> str:
    return (f"make one with `edgegan evaluator train --dataset {dataset}` (writes {default_evaluator_path(dataset)}), "
            "or pass --evaluator E.onnx")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "data"


# ----------------------------------------------------------------------------------------------------- evaluator
@dataclass
class EvaluatorInfo:
    """What an evaluator ONNX file says about itself in its metadata_props."""

    dataset: str
    channels: int
    height: int
    width: int
    num_classes: int
    class_names: list[str]
    feature_layer: str
    feature_dim: int
    test_accuracy: float
    train: dict[str, Any] = field(default_factory=dict)
    format: str = EVALUATOR_FORMAT

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the uint8 pixels it takes."""
        return (self.height, self.width, self.channels)

    def to_metadata(self) -> dict[str, str]:
        return {
            KEY_EVALUATOR: self.format,
            KEY_EVAL_DATASET: self.dataset,
            KEY_EVAL_IMAGE: json.dumps({"channels": self.channels, "height": self.height, "width": self.width}),
            KEY_EVAL_NUM_CLASSES: str(self.num_classes),
            KEY_EVAL_CLASS_NAMES: json.dumps(list(self.class_names)),
            KEY_EVAL_FEATURE_LAYER: self.feature_layer,
            KEY_EVAL_FEATURE_DIM: str(self.feature_dim),
            KEY_EVAL_ACCURACY: f"{self.test_accuracy:.6f}",
            KEY_EVAL_TRAIN: json.dumps(self.train, sort_keys=True),
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], where: str = "the model") -> "EvaluatorInfo":
        """Parse an evaluator's metadata.

        Raises:
            QualityError: not an evaluator (a generator, or a foreign model), unknown version, malformed values.
        """
        if KEY_EVALUATOR not in meta:
            what = "an edgegan generator" if "edgegan.format" in meta else "not an edgegan evaluator"
            raise QualityError(f"{where} is {what} (no {KEY_EVALUATOR} metadata); pass the classifier that "
                               "`edgegan evaluator train` writes as --evaluator")
        if meta[KEY_EVALUATOR] != EVALUATOR_FORMAT:
            raise QualityError(f"{where} is an evaluator of format {meta[KEY_EVALUATOR]!r}; this edgegan reads "
                               f"format {EVALUATOR_FORMAT}: train a new one with `edgegan evaluator train`")
        missing = [k for k in EVALUATOR_KEYS if k not in meta]
        if missing:
            raise QualityError(f"{where} lacks evaluator metadata {', '.join(missing)}; train it again with "
                               "`edgegan evaluator train`")
        try:
            image = json.loads(meta[KEY_EVAL_IMAGE])
            info = cls(
                dataset=meta[KEY_EVAL_DATASET], channels=int(image["channels"]), height=int(image["height"]),
                width=int(image["width"]), num_classes=int(meta[KEY_EVAL_NUM_CLASSES]),
                class_names=[str(c) for c in json.loads(meta[KEY_EVAL_CLASS_NAMES])],
                feature_layer=meta[KEY_EVAL_FEATURE_LAYER], feature_dim=int(meta[KEY_EVAL_FEATURE_DIM]),
                test_accuracy=float(meta[KEY_EVAL_ACCURACY]), train=json.loads(meta[KEY_EVAL_TRAIN]),
                format=meta[KEY_EVALUATOR],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise QualityError(f"{where} has malformed evaluator metadata: {exc}") from exc
        if info.num_classes < 2 or info.feature_dim < 1 or min(info.channels, info.height, info.width) < 1:
            raise QualityError(f"{where} has inconsistent evaluator metadata: {info}")
        return info


class Evaluator:
    """An evaluator ONNX file loaded in onnxruntime: uint8 pixels -> (features, class probabilities).

    Args:
        path: the .onnx file `edgegan evaluator train` wrote.
        provider: onnxruntime provider name ("cpu", "cuda", "auto"; see edgegan.runtime.providers).
        threads: intra-op threads (None: onnxruntime's default).
        batch_size: images per session run.

    Raises:
        QualityError: missing file, not an evaluator, or inputs/outputs that do not match its contract.
    """

    def __init__(self, path: str | os.PathLike, provider: str = "cpu", threads: int | None = None,
                 batch_size: int = 500):
        from edgegan.runtime.generator import load_session
        from edgegan.runtime.providers import session_options

        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise QualityError(f"evaluator file not found: {self.path}; make one with `edgegan evaluator train`")
        if batch_size <= 0:
            raise QualityError(f"batch size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self.session, _ = load_session(self.path, provider, session_options(threads))
        self.info = EvaluatorInfo.from_metadata(self.session.get_modelmeta().custom_metadata_map, str(self.path))
        self._check_signature()
        self.digest = file_sha256(self.path)

    def _check_signature(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        problems = []
        if list(inputs) != [INPUT_PIXELS] or inputs[INPUT_PIXELS].type != "tensor(uint8)":
            problems.append(f"inputs {[(i.name, i.type) for i in inputs.values()]}, expected one uint8 {INPUT_PIXELS!r}")
        if set(outputs) != {OUTPUT_LOGITS, OUTPUT_FEATURES}:
            problems.append(f"outputs {sorted(outputs)}, expected {OUTPUT_LOGITS!r} and {OUTPUT_FEATURES!r}")
        if problems:
            raise QualityError(f"{self.path} does not follow the evaluator contract: " + "; ".join(problems))

    def check_images(self, shape: tuple[int, ...], what: str) -> None:
        """Raise QualityError unless images of `shape` ([N,] H, W, C) fit this evaluator."""
        if tuple(shape[-3:]) != self.info.image_shape:
            h, w, c = self.info.image_shape
            got = "x".join(str(d) for d in shape[-3:])
            raise QualityError(
                f"{what} are {got} (HxWxC) but the evaluator {self.path.name} was trained on {h}x{w}x{c} "
                f"{self.info.dataset} images; use an evaluator trained on matching data (`edgegan evaluator train`)"
            )

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features and class probabilities of uint8 [N, H, W, C] images.

        Returns:
            (features float32 [N, D], probabilities float32 [N, K]).
        """
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise QualityError(f"the evaluator takes uint8 images [N, H, W, C], got {images.dtype} {list(images.shape)}")
        self.check_images(images.shape, "the images")
        n = len(images)
        features = np.empty((n, self.info.feature_dim), np.float32)
        logits = np.empty((n, self.info.num_classes), np.float32)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            out_logits, out_features = self.session.run(
                [OUTPUT_LOGITS, OUTPUT_FEATURES], {INPUT_PIXELS: np.ascontiguousarray(images[start:stop])}
            )
            logits[start:stop], features[start:stop] = out_logits, out_features
        shifted = logits - logits.max(axis=1, keepdims=True)  # stable softmax
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        return features, probs


def resolve_evaluator(evaluator: str | os.PathLike | None, dataset: str) -> Path:
    """The evaluator file to use: the one given, else the default for `dataset`.

    Raises:
        QualityError: none given and no default; the message says how to make one.
    """
    if evaluator is not None:
        path = Path(evaluator).expanduser()
        if not path.is_file():
            raise QualityError(f"--evaluator {path} does not exist; {how_to_make_evaluator(dataset)}")
        return path
    path = default_evaluator_path(dataset)
    if not path.is_file():
        raise QualityError(f"no evaluator for {dataset!r}: {path} does not exist; {how_to_make_evaluator(dataset)}")
    return path


# ----------------------------------------------------------------------------------------------------- features
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
    def from_outputs(cls, features: np.ndarray, probs: np.ndarray) -> "FeatureSet":
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
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _cache_path(dataset: str, split: str, evaluator: Evaluator, data_digest: str) -> Path:
    return stats_cache_dir() / f"{_slug(dataset)}-{_slug(split)}-{evaluator.digest[:16]}-{data_digest[:16]}.npz"


def _read_cache(path: Path, meta: dict[str, Any]) -> FeatureSet | None:
    """A cached FeatureSet whose stored meta equals `meta`, or None (absent, stale, corrupt: recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            stored = json.loads(str(z["meta"]))
            if stored != meta:
                return None
            fs = FeatureSet(z["features"], z["probs"], z["mu"], z["sigma"], z["radii"], json.loads(str(z["extra"])),
                            cached=True)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # a truncated or foreign file: recomputed and rewritten
        return None
    return fs


def write_cache(path: Path, meta: dict[str, Any], fs: FeatureSet) -> None:
    """Store a FeatureSet (no pickle: plain arrays plus JSON strings)."""
    _atomic_savez(path, {
        "meta": np.array(json.dumps(meta, sort_keys=True)), "extra": np.array(json.dumps(fs.extra, sort_keys=True)),
        "features": fs.features, "probs": fs.probs, "mu": fs.mu, "sigma": fs.sigma, "radii": fs.radii,
    })


def reference_features(
    evaluator: Evaluator, images: np.ndarray, dataset: str, split: str, cache: bool = True
) -> FeatureSet:
    """Features and statistics of real images, from the cache when this exact (data, evaluator) was seen before.

    Args:
        evaluator: the loaded evaluator.
        images: uint8 [N, H, W, C] real images.
        dataset, split: names for the cache file (the key also holds the evaluator's and the images' digests).
        cache: read and write the cache.

    Returns:
        FeatureSet; `cached` says whether it came from disk, `cache_path` where it is stored (None: cache off).
    """
    digest = images_digest(images)
    path = _cache_path(dataset, split, evaluator, digest)
    meta = {"format": CACHE_FORMAT, "dataset": dataset, "split": split, "evaluator_sha256": evaluator.digest,
            "data_sha256": digest, "n": int(len(images)), "k": PR_NEIGHBOURS}
    found = _read_cache(path, meta) if cache else None
    fs = found or FeatureSet.from_outputs(*evaluator.run(images))
    if cache:
        fs.cache_path, fs.cache_meta = path, meta
        if found is None:
            fs.save()
    return fs


# ----------------------------------------------------------------------------------------------------- metrics
def compare_feature_sets(reference: FeatureSet, other: FeatureSet, kid_subsets: int = 100,
                         kid_subset_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """FID, KID (mean, std), precision and recall of `other` against `reference`.

    Returns:
        {"fid", "kid_mean", "kid_std", "precision", "recall"}.
    """
    kid = kernel_inception_distance(reference.features, other.features, kid_subsets, kid_subset_size, seed)
    precision, recall = precision_recall(reference.features, other.features, PR_NEIGHBOURS, real_radii=reference.radii)
    return {
        "fid": frechet_distance(reference.mu, reference.sigma, other.mu, other.sigma),
        "kid_mean": kid.mean, "kid_std": kid.std, "precision": precision, "recall": recall,
    }


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
        return {"status": "skipped", "reason": f"no local Inception weights (looked in {', '.join(looked)})",
                "looked": looked}
    return {"status": "skipped",
            "reason": f"Inception weights found at {found[0]}, but they are PyTorch weights and `edgegan eval` is "
                      "torch-free; compute the Inception FID with pytorch-fid or torch-fidelity on images written "
                      "by `edgegan sample --npy`",
            "looked": looked, "found": found}


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
    warnings: list[dict[str, Any]] = field(default_factory=list)  # edgegan.runtime.evaluation.per_class.collapse_warnings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_reference(dataset: str, data_dir, info: EvaluatorInfo) -> tuple["ImageData", str, list[str]]:
    """The real split to compare against: test, or train (with a note) when the data has no test split."""
    from edgegan.runtime.evaluation.datasets import DataError, load_images

    size = info.height if info.height == info.width else None
    try:
        return load_images(dataset, "test", data_dir, image_size=size, channels=info.channels,
                           progress=False), "test", []
    except DataError as exc:
        if dataset not in ("npz", "folder"):
            raise
        data = load_images(dataset, "train", data_dir, image_size=size, channels=info.channels, progress=False)
        first = str(exc).splitlines()[0]
        return data, "train", [f"no test split ({first}): comparing against the training split the evaluator "
                               "was trained on, which flatters every figure"]


def _floor(evaluator: Evaluator, dataset: str, data_dir, reference: FeatureSet, ref_data: "ImageData",
           ref_split: str, n: int, cache: bool) -> tuple[dict[str, Any], tuple[FeatureSet, FeatureSet] | None]:
    """Real-vs-real figures: n training images against the test reference (what a generator that samples the
    true distribution would score at this n), or, without a separate training split, two disjoint halves of
    the reference. The figures are cached with the floor sample's features.

    Returns:
        (figures, (the real set it was scored against, the floor sample) or None when there is no floor).
    """
    from edgegan.runtime.evaluation.datasets import DataError, load_images

    info = evaluator.info
    pool = None
    if ref_split == "test":
        try:
            size = info.height if info.height == info.width else None
            pool = load_images(dataset, "train", data_dir, image_size=size, channels=info.channels,
                               progress=False).images
        except DataError:
            pool = None
    rng = np.random.default_rng(FLOOR_SEED)
    if pool is not None and len(pool) > PR_NEIGHBOURS:
        m = min(n, len(pool))
        sample = pool[np.sort(rng.choice(len(pool), m, replace=False))]
        fs = reference_features(evaluator, sample, dataset, f"train-sample{m}", cache)
        against = reference
        method = f"{m} training images vs the {len(reference)} test images"
    else:
        order = rng.permutation(len(ref_data.images))
        half = len(order) // 2
        if half <= PR_NEIGHBOURS:
            return {"method": "none", "reason": f"the reference has only {len(order)} images"}, None
        a, b = np.sort(order[:half]), np.sort(order[half:2 * half])
        against = reference_features(evaluator, ref_data.images[a], dataset, f"{ref_split}-halfA", cache)
        fs = reference_features(evaluator, ref_data.images[b], dataset, f"{ref_split}-halfB", cache)
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
    if _slug(ev.info.dataset) != _slug(dataset):
        notes.append(f"the evaluator was trained on {ev.info.dataset!r}, the reference is {dataset!r}")

    ref_data, ref_split, more = load_reference(dataset, data_dir, ev.info)
    notes += more
    ev.check_images(ref_data.images.shape, f"the {dataset} {ref_split} images")
    reference = reference_features(ev, ref_data.images, dataset, ref_split, cache)
    seconds["reference"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    images = gen.sample(int(n), seed=seed)  # uint8 [n, H, W, C]
    seconds["generate"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    fake = FeatureSet.from_outputs(*ev.run(images))
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

    t3 = time.perf_counter()
    floor_figures, floor_sets = (_floor(ev, dataset, data_dir, reference, ref_data, ref_split, int(n), cache)
                                 if floor else ({"method": "none", "reason": "not asked for"}, None))
    seconds["floor"] = time.perf_counter() - t3

    # Per class: conditional models by the label asked for, unconditional ones by the evaluator's prediction.
    t4 = time.perf_counter()
    per_class = per_class_figures(
        reference.features, reference.probs, fake.features, fake.probs, labels, ev.info.class_names,
        floor=None if floor_sets is None else (floor_sets[0].features, floor_sets[0].probs,
                                               floor_sets[1].features, floor_sets[1].probs),
        seed=seed)
    collapse = collapse_warnings(per_class)
    seconds["per_class"] = time.perf_counter() - t4
    seconds["total"] = time.perf_counter() - t0

    return QualityReport(
        model={"path": str(gen.path), "precision": gen.precision, "arch": gen.contract.arch,
               "dataset": gen.contract.dataset, "num_classes": gen.num_classes, "n": int(n), "seed": seed,
               "provider": gen.providers[0]},
        evaluator={"path": str(ev.path), "sha256": ev.digest, "dataset": ev.info.dataset,
                   "test_accuracy": ev.info.test_accuracy, "feature_layer": ev.info.feature_layer,
                   "feature_dim": ev.info.feature_dim, "class_names": ev.info.class_names},
        reference={"dataset": dataset, "split": ref_split, "n": len(reference), "source": ref_data.source,
                   "cache": str(reference.cache_path) if reference.cache_path else None,
                   "cached": reference.cached},
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
        lines.append("  ".join(cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("(floor column: FID, KID, precision and recall of real images at the same n; coverage and "
                 "confidence of the test split itself)")
    names = report.evaluator["class_names"]
    hist = ", ".join(f"{names[k] if k < len(names) else k} {share:.0%}" for k, share in enumerate(cov["histogram"]))
    lines += ["", f"predicted classes: {hist}"]
    if cov.get("per_class") is not None:
        per = ", ".join(f"{names[k] if k < len(names) else k} {p:.0%}" for k, p in enumerate(cov["per_class"])
                        if p is not None)
        lines.append(f"asked-for label recognised: {per}")
    if report.per_class:
        lines += ["", *format_per_class(report.per_class)]
    lines.append(f"Inception FID: {report.inception['status']}: {report.inception['reason']}")
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)


def write_json(report: QualityReport, path: str | os.PathLike) -> Path:
    """Write the report as JSON atomically (temp file in the same folder, fsync, rename)."""
    return atomic_write(path, lambda f: f.write(json.dumps(report.to_dict(), indent=2) + "\n"), binary=False)
