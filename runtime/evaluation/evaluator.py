"""The evaluator contract: the domain classifier `edgegan eval` scores with, its metadata keys, and loading it.

The evaluator is a small classifier trained on the real training split (`edgegan evaluator train`), exported to
ONNX with its own metadata (keys below). It takes uint8 pixels [batch, H, W, C], exactly what
`Generator.sample()` returns and what `edgegan.runtime.evaluation.datasets.load_images` reads, and outputs class
logits [batch, K] and penultimate features [batch, D] (features.py turns those into statistics, quality.py into
figures).

Example:
    >>> ev = Evaluator(resolve_evaluator(None, "fashion-mnist"))   # doctest: +SKIP
    >>> features, probs = ev.run(images)                            # float32 [N, D], float32 [N, K]
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.files import cache_root, file_sha256

__all__ = [
    "QualityError",
    "EvaluatorInfo",
    "Evaluator",
    "resolve_evaluator",
    "default_evaluator_path",
    "how_to_make_evaluator",
    "file_slug",
    "EVALUATOR_FORMAT",
    "INPUT_PIXELS",
    "OUTPUT_LOGITS",
    "OUTPUT_FEATURES",
    "EVALUATOR_KEYS",
]

# --- the evaluator's own contract (export/evaluator_onnx.py writes it, this module reads it) --------------------
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
    KEY_EVALUATOR,
    KEY_EVAL_DATASET,
    KEY_EVAL_IMAGE,
    KEY_EVAL_NUM_CLASSES,
    KEY_EVAL_CLASS_NAMES,
    KEY_EVAL_FEATURE_LAYER,
    KEY_EVAL_FEATURE_DIM,
    KEY_EVAL_ACCURACY,
    KEY_EVAL_TRAIN,
)


class QualityError(EdgeganError):
    """An evaluator that is missing, unreadable or does not fit the generator or data being scored."""


def default_evaluator_path(dataset: str) -> Path:
    """($XDG_CACHE_HOME or ~/.cache)/edgegan/evaluators/<dataset>.onnx: where `edgegan evaluator train` writes
    by default and where `edgegan eval` and `edgegan export` look when no evaluator is given."""
    return cache_root() / "evaluators" / f"{file_slug(dataset)}.onnx"


def how_to_make_evaluator(dataset: str) -> str:
    """The fix to suggest when `dataset` has no evaluator: only a command `edgegan evaluator train` accepts."""
    from edgegan.runtime.evaluation.datasets import DATASETS

    if dataset not in DATASETS:
        return (
            f"edgegan reads {', '.join(DATASETS)}, not {dataset!r}: give other images as an image tree or "
            "an .npz file (`--dataset folder --data-dir DIR`, here and in `edgegan evaluator train`)"
        )
    where = " --data-dir PATH" if dataset in ("npz", "folder") else ""  # no download for these: the data is yours
    return (
        f"make one with `edgegan evaluator train --dataset {dataset}{where}` (writes "
        f"{default_evaluator_path(dataset)}), or pass --evaluator E.onnx"
    )


def file_slug(text: str) -> str:
    """A dataset or split name as a safe file-name part ("fashion mnist" -> "fashion_mnist")."""
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
    def from_metadata(cls, meta: Mapping[str, str], where: str = "the model") -> EvaluatorInfo:
        """Parse an evaluator's metadata.

        Raises:
            QualityError: not an evaluator (a generator, or a foreign model), unknown version, malformed values.
        """
        if KEY_EVALUATOR not in meta:
            what = "an edgegan generator" if "edgegan.format" in meta else "not an edgegan evaluator"
            raise QualityError(
                f"{where} is {what} (no {KEY_EVALUATOR} metadata); pass the classifier that "
                "`edgegan evaluator train` writes as --evaluator"
            )
        if meta[KEY_EVALUATOR] != EVALUATOR_FORMAT:
            raise QualityError(
                f"{where} is an evaluator of format {meta[KEY_EVALUATOR]!r}; this edgegan reads "
                f"format {EVALUATOR_FORMAT}: train a new one with `edgegan evaluator train`"
            )
        missing = [k for k in EVALUATOR_KEYS if k not in meta]
        if missing:
            raise QualityError(
                f"{where} lacks evaluator metadata {', '.join(missing)}; train it again with `edgegan evaluator train`"
            )
        try:
            image = json.loads(meta[KEY_EVAL_IMAGE])
            info = cls(
                dataset=meta[KEY_EVAL_DATASET],
                channels=int(image["channels"]),
                height=int(image["height"]),
                width=int(image["width"]),
                num_classes=int(meta[KEY_EVAL_NUM_CLASSES]),
                class_names=[str(c) for c in json.loads(meta[KEY_EVAL_CLASS_NAMES])],
                feature_layer=meta[KEY_EVAL_FEATURE_LAYER],
                feature_dim=int(meta[KEY_EVAL_FEATURE_DIM]),
                test_accuracy=float(meta[KEY_EVAL_ACCURACY]),
                train=json.loads(meta[KEY_EVAL_TRAIN]),
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

    def __init__(
        self, path: str | os.PathLike, provider: str = "cpu", threads: int | None = None, batch_size: int = 500
    ):
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
            problems.append(
                f"inputs {[(i.name, i.type) for i in inputs.values()]}, expected one uint8 {INPUT_PIXELS!r}"
            )
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
            raise QualityError(
                f"the evaluator takes uint8 images [N, H, W, C], got {images.dtype} {list(images.shape)}"
            )
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
