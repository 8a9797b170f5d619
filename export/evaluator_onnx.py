"""The domain evaluator's export: a trained evaluator (edgegan.trainer.evaluator_training) -> a verified .onnx.

`edgegan eval` (runtime/evaluation/quality.py) runs the file with onnxruntime alone: its input is uint8 pixels
"pixels" [batch, H, W, C] (the scaling to [-1, 1] and the NHWC -> NCHW transpose are inside the graph), its outputs
are class logits "logits" [batch, K] and the penultimate features "features" [batch, D] that FID, KID and
precision/recall use. The file describes itself in metadata_props (edgegan.runtime.evaluation.evaluator.EvaluatorInfo):
dataset, image shape, classes, feature layer and size, and the accuracy measured on the exported file itself.

The graph is made by the generator's exporter (edgegan.export.onnx: BatchNorm folded, dynamo first, TorchScript as
the fallback, the batch axis named) and verified like a generator's (edgegan.export.verify's checks and records):
  onnx_checker        onnx.checker.check_model(full_check=True)
  interface           names, dtypes and shapes against EVALUATOR_IO (the batch axis named "batch")
  metadata            metadata_props exactly EvaluatorInfo.to_metadata(), readable by EvaluatorInfo.from_metadata
  vs_torch_batch{n}   logits and features in onnxruntime (CPU) against PyTorch at n = 1, 3, 17 real images, within
                      the fp32 tolerance (1e-4 absolute) plus EVALUATOR_RTOL relative to |torch's value|
A failed check raises ShapeError / AtolError (edgegan.export.check_records) naming every failed figure; nothing is
written then.

Example:
    >>> trained = train_evaluator(EvaluatorConfig(dataset="fashion-mnist"))   # doctest: +SKIP
    >>> result = export_evaluator(trained, "fm_evaluator.onnx")               # doctest: +SKIP
    >>> round(result.info.test_accuracy, 2)                                     # doctest: +SKIP
    0.91
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import torch

from edgegan.export.check_records import TOLERANCES, CheckRecord, raise_for_records
from edgegan.export.onnx import EXPORT_BATCH, export_module, fold_batchnorm
from edgegan.export.staging import ExportOptionError
from edgegan.export.verify import VERIFY_BATCHES, guard_check, make_session
from edgegan.export.verify_structure import check_interface, check_onnx_checker, interface_from_onnx
from edgegan.runtime.contract import BATCH_AXIS, IOSpec, TensorSpec
from edgegan.runtime.evaluation.evaluator import (
    INPUT_PIXELS,
    OUTPUT_FEATURES,
    OUTPUT_LOGITS,
    EvaluatorInfo,
    default_evaluator_path,
)
from edgegan.runtime.files import atomic_write
from edgegan.trainer.evaluator_training import (
    FEATURE_LAYER,
    EvaluatorConfig,
    PixelsEvaluator,
    TrainedEvaluator,
    train_evaluator,
)

EVALUATOR_OPSET = 18  # the generator's default opset: the exporter's own, no version conversion
# Logits grow with training (|logit| ~ 10-30): the fp32 absolute budget plus this share of |torch's value|.
EVALUATOR_RTOL = 1e-4
ACCURACY_CHUNK = 1000  # images per onnxruntime call when measuring accuracy


@dataclass
class EvaluatorResult:
    """The written evaluator: its path, metadata, the verification records, and the training's figures."""

    path: Path
    info: EvaluatorInfo
    seconds: float  # training and export
    steps: int
    train_accuracy: float
    records: list[CheckRecord] = field(default_factory=list)


def evaluator_io(image_shape: tuple[int, int, int], num_classes: int, feature_dim: int) -> IOSpec:
    """The evaluator's graph signature: pixels uint8 [batch, H, W, C] -> logits float32 [batch, K], features
    float32 [batch, D]."""
    h, w, c = image_shape
    return IOSpec(
        (TensorSpec(INPUT_PIXELS, "uint8", (BATCH_AXIS, h, w, c)),),
        (
            TensorSpec(OUTPUT_LOGITS, "float32", (BATCH_AXIS, num_classes)),
            TensorSpec(OUTPUT_FEATURES, "float32", (BATCH_AXIS, feature_dim)),
        ),
    )


def evaluator_path(out: str | os.PathLike | None, dataset: str) -> Path:
    """Where the evaluator goes: `out`, or default_evaluator_path(dataset) (where `edgegan eval` and `edgegan
    export` look by default). Checked before any training.

    Raises:
        ExportOptionError: a path that does not end in .onnx.
    """
    path = Path(out).expanduser() if out is not None else default_evaluator_path(dataset)
    if path.suffix.lower() != ".onnx":
        raise ExportOptionError(f"-o/--output {path}: the evaluator is an ONNX file; give a path ending in .onnx")
    return path


def export_graph(module: PixelsEvaluator, image_shape: tuple[int, int, int]) -> onnx.ModelProto:
    """ONNX graph of the evaluator module (BatchNorm folded, batch axis dynamic), no metadata yet."""
    folded = PixelsEvaluator(fold_batchnorm(module.net)[0]).eval()
    example = torch.zeros(EXPORT_BATCH, *image_shape, dtype=torch.uint8)  # [B, H, W, C]
    model, _ = export_module(
        folded,
        (example,),
        [INPUT_PIXELS],
        [OUTPUT_LOGITS, OUTPUT_FEATURES],
        opset=EVALUATOR_OPSET,
        what="the evaluator",
    )
    return model


def _run(session, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits [N, K], features [N, D]) of the exported graph in onnxruntime: what `edgegan eval` will see."""
    parts = [
        session.run([OUTPUT_LOGITS, OUTPUT_FEATURES], {INPUT_PIXELS: images[i : i + ACCURACY_CHUNK]})
        for i in range(0, len(images), ACCURACY_CHUNK)
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def check_vs_torch(session, module: PixelsEvaluator, images: np.ndarray, n: int) -> CheckRecord:
    """The first n images' logits and features in onnxruntime against PyTorch's (the unfolded module)."""
    probe = np.ascontiguousarray(images[:n])
    got = _run(session, probe)
    with torch.no_grad():
        want = [t.numpy() for t in module(torch.from_numpy(probe))]
    tol, worst, mean, parts = TOLERANCES["fp32"].vs_torch_max, 0.0, 0.0, []
    ok = all(g.shape == w.shape for g, w in zip(got, want))
    for name, g, w in zip((OUTPUT_LOGITS, OUTPUT_FEATURES), got, want):
        if g.shape != w.shape:
            parts.append(f"{name} {g.shape} != torch's {w.shape}")
            continue
        err = np.abs(g.astype(np.float64) - w.astype(np.float64))
        ok = ok and bool(np.isfinite(err).all() and (err <= tol + EVALUATOR_RTOL * np.abs(w)).all())
        worst, mean = max(worst, float(err.max())), max(mean, float(err.mean()))
        parts.append(f"{name} max err {err.max():.3g}")
    return CheckRecord(
        f"vs_torch_batch{n}", ok, worst, mean, tol, f"{n} real images; {', '.join(parts)}; rtol {EVALUATOR_RTOL:g}"
    )


def check_metadata(meta: dict[str, str], info: EvaluatorInfo) -> CheckRecord:
    expected = info.to_metadata()
    problems = [f"{k}: {meta.get(k)!r} != {v!r}" for k, v in expected.items() if meta.get(k) != v]
    problems += [f"unexpected key {k}" for k in sorted(set(meta) - set(expected))]
    if not problems:
        EvaluatorInfo.from_metadata(meta, "the exported evaluator")  # raises QualityError (guard_check records it)
    return CheckRecord(
        "metadata", not problems, detail="; ".join(problems) or f"{len(expected)} evaluator keys", kind="structure"
    )


def export_evaluator(
    trained: TrainedEvaluator, out: str | os.PathLike | None = None, started: float | None = None
) -> EvaluatorResult:
    """Export a trained evaluator, verify it, measure its accuracy on the file itself, and write it atomically.

    Args:
        trained: train_evaluator's result.
        out: the .onnx file to write; None: default_evaluator_path(dataset).
        started: time.perf_counter() when the work began (the result's seconds); None: the training's own time.

    Returns:
        EvaluatorResult with the metadata written (accuracy measured on the exported graph in onnxruntime).

    Raises:
        ExportOptionError (a path not ending in .onnx), ExportError (no exporter could export it),
        ShapeError / AtolError (a failed check; nothing written).
    """
    path = evaluator_path(out, trained.cfg.dataset)
    module = trained.pixels_module()
    model = export_graph(module, trained.image_shape)
    feature_dim = trained.net.fc1.out_features
    with tempfile.TemporaryDirectory(prefix="edgegan-evaluator-") as work:
        graph_path = Path(work) / "graph.onnx"
        onnx.save_model(model, str(graph_path))
        session = make_session(graph_path)
        records = [check_vs_torch(session, module, trained.accuracy_images, n) for n in VERIFY_BATCHES]
        logits, _ = _run(session, trained.accuracy_images)
        accuracy = float((logits.argmax(1) == trained.accuracy_labels).mean())
        logit_err = max(r.max_err or 0.0 for r in records)
        h, w, c = trained.image_shape
        info = EvaluatorInfo(
            dataset=trained.cfg.dataset,
            channels=c,
            height=h,
            width=w,
            num_classes=trained.num_classes,
            class_names=list(trained.class_names),
            feature_layer=FEATURE_LAYER,
            feature_dim=feature_dim,
            test_accuracy=accuracy,
            train={**trained.provenance(), "onnx_max_logit_err": logit_err},
        )
        del model.metadata_props[:]
        onnx.helper.set_model_props(model, info.to_metadata())
        final = Path(work) / path.name
        onnx.save_model(model, str(final))
        found, inputs, outputs, meta = interface_from_onnx(final)
        spec = evaluator_io(trained.image_shape, trained.num_classes, feature_dim)
        structure = [
            guard_check("onnx_checker", "structure", partial(check_onnx_checker, final)),
            check_interface(found, inputs, outputs, spec),
            guard_check("metadata", "structure", partial(check_metadata, meta, info)),
        ]
        records = [*structure, *records]
        raise_for_records("evaluator", records)
        data = final.read_bytes()
    atomic_write(path, lambda f: f.write(data))
    seconds = time.perf_counter() - started if started is not None else trained.seconds
    return EvaluatorResult(path, info, seconds, trained.steps, trained.train_accuracy, records)


def train_and_export_evaluator(
    cfg: EvaluatorConfig, out: str | os.PathLike | None = None, progress: bool = True
) -> EvaluatorResult:
    """`edgegan evaluator train`: the output path checked first, then train_evaluator, then export_evaluator."""
    started = time.perf_counter()
    cfg.validate()
    path = evaluator_path(out, cfg.dataset)  # a bad path fails before the training
    return export_evaluator(train_evaluator(cfg, progress=progress), path, started=started)
