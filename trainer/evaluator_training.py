"""The domain evaluator: a small CNN classifier trained on a dataset's real training split, exported to ONNX.

`edgegan eval` (runtime/evaluation/quality.py) runs the ONNX file with onnxruntime alone: its input is uint8 pixels
[batch, H, W, C] (the scaling to [-1, 1] and the NHWC -> NCHW transpose are inside the graph), its outputs are
class logits [batch, K] and the penultimate features [batch, D] that FID, KID and precision/recall use. The file
describes itself in metadata_props (edgegan.runtime.evaluation.quality.EvaluatorInfo): dataset, image shape, classes, feature layer
and size, and the test accuracy measured on the exported file itself.

Architecture (28x28 input, width w = 32, D = 128):
    [B, C, 28, 28] -> conv3x3 w, BN, ReLU, maxpool -> [B, w, 14, 14]
                   -> conv3x3 2w, BN, ReLU, maxpool -> [B, 2w, 7, 7]
                   -> conv3x3 2w, BN, ReLU            -> [B, 2w, 7, 7] -> flatten [B, 2w*49]
                   -> linear D, ReLU = "features" [B, D] -> dropout -> linear K = "logits" [B, K]
Larger images get one more conv+pool stage per halving until the map is at most 8x8.

Example:
    >>> result = train_evaluator(EvaluatorConfig(dataset="fashion-mnist"), "fm_evaluator.onnx")  # doctest: +SKIP
    >>> round(result.info.test_accuracy, 2)                                                      # doctest: +SKIP
    0.91
"""
from __future__ import annotations

import io
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgegan.runtime.files import atomic_write
from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.progress import Progress
from edgegan.runtime.evaluation.quality import (
    INPUT_PIXELS,
    OUTPUT_FEATURES,
    OUTPUT_LOGITS,
    EvaluatorInfo,
    default_evaluator_path,
)

FEATURE_LAYER = "fc1 after ReLU (input of the final linear layer)"
HOLDOUT_SHARE = 0.1  # without a test split, this share of the training images measures accuracy
EXPORT_OPSET = 17


class EvaluatorError(EdgeganError):
    """The evaluator cannot be trained on the data given, or its export failed."""


@dataclass
class EvaluatorConfig:
    """How to train an evaluator; saved (as JSON) in the ONNX file's edgegan.evaluator.train metadata."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    image_size: int | None = None  # None: the size the data is stored at
    channels: int | None = None  # None: as stored
    epochs: int = 3
    batch_size: int = 128
    lr: float = 3e-3  # AdamW peak: linear warm-up over a quarter of the steps, then cosine decay to 0
    weight_decay: float = 5e-4
    width: int = 32
    feature_dim: int = 128
    dropout: float = 0.3
    seed: int = 0
    max_images: int | None = None  # train on a random subset of this many images (quick runs, tests)
    max_steps: int | None = None  # stop after this many steps (tests)
    device: str = "auto"
    threads: int | None = None  # torch intra-op threads (None: torch's default, one per core)

    def validate(self) -> None:
        if self.epochs <= 0 or self.batch_size <= 0 or self.lr <= 0:
            raise EvaluatorError("--epochs, --batch-size and --lr must be positive")
        if self.width <= 0 or self.feature_dim <= 0 or not 0 <= self.dropout < 1:
            raise EvaluatorError("--width and --feature-dim must be positive and dropout in [0, 1)")
        if self.max_images is not None and self.max_images <= 1:
            raise EvaluatorError("--max-images must be at least 2")
        if self.max_steps is not None and self.max_steps <= 0:
            raise EvaluatorError("--max-steps must be positive")
        if self.threads is not None and self.threads <= 0:
            raise EvaluatorError("--threads must be positive")


class EvaluatorNet(nn.Module):
    """Small CNN: x float [B, C, H, W] in [-1, 1] -> (logits [B, K], features [B, D])."""

    def __init__(self, channels: int, height: int, width: int, num_classes: int, base: int = 32,
                 feature_dim: int = 128, dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c_out, h, w = channels, base, height, width
        while True:  # conv + pool stages until the map is at most 8x8 (at least one)
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in, h, w = c_out, h // 2, w // 2
            c_out = min(c_out * 2, base * 4)
            if max(h, w) <= 8 or min(h, w) < 2:
                break
        layers += [nn.Conv2d(c_in, c_in, 3, padding=1, bias=False), nn.BatchNorm2d(c_in), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.fc1 = nn.Linear(c_in * h * w, feature_dim)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = F.relu(self.fc1(self.body(x).flatten(1)))  # [B, D]
        return self.fc2(self.dropout(features)), features  # logits [B, K], features [B, D]


class PixelsEvaluator(nn.Module):
    """What is exported: uint8 pixels [B, H, W, C] -> (logits, features), the scaling folded into the graph."""

    def __init__(self, net: EvaluatorNet):
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = pixels.permute(0, 3, 1, 2).float() * (1.0 / 127.5) - 1.0  # [B, C, H, W] in [-1, 1]
        return self.net(x)


@dataclass
class EvaluatorResult:
    path: Path
    info: EvaluatorInfo
    seconds: float
    steps: int
    train_accuracy: float


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise EvaluatorError("--device cuda: no CUDA device is available; use --device cpu")
    return torch.device(name)


def _to_batch(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W, C] -> float [B, C, H, W] in [-1, 1] (the same formula the exported graph holds)."""
    return images.permute(0, 3, 1, 2).float() * (1.0 / 127.5) - 1.0


def _splits(cfg: EvaluatorConfig, progress: bool):
    """(train ImageData, accuracy images uint8, accuracy labels, accuracy split name)."""
    from edgegan.runtime.evaluation.datasets import DataError, load_images

    train = load_images(cfg.dataset, "train", cfg.data_dir, image_size=cfg.image_size, channels=cfg.channels,
                        progress=progress)
    if train.labels is None or len(train.class_names) < 2:
        raise EvaluatorError(
            f"the evaluator is a classifier: {cfg.dataset} ({train.source}) needs labels with at least 2 classes "
            "(npz: a 'labels' array; folder: one subfolder per class)"
        )
    try:
        test = load_images(cfg.dataset, "test", cfg.data_dir, image_size=cfg.image_size,
                           channels=int(train.images.shape[-1]), progress=progress)
        if test.labels is None or test.images.shape[1:] != train.images.shape[1:]:
            raise DataError("the test split has no labels or another image shape")
        return train, test.images, test.labels, "test"
    except DataError:
        # No usable test split (npz/folder without one): hold out a seeded share of the training images.
        rng = np.random.default_rng(cfg.seed + 1)
        order = rng.permutation(len(train.images))
        cut = max(1, int(len(order) * HOLDOUT_SHARE))
        held, kept = np.sort(order[:cut]), np.sort(order[cut:])
        images, labels = train.images[held], train.labels[held]
        train.images, train.labels = train.images[kept], train.labels[kept]
        return train, images, labels, f"holdout ({cut} training images, not trained on)"


def export_evaluator_bytes(net: EvaluatorNet, image_shape: tuple[int, int, int]) -> bytes:
    """ONNX bytes of PixelsEvaluator(net) (eval mode) with a dynamic batch axis; no metadata yet."""
    h, w, c = image_shape
    module = PixelsEvaluator(net).eval()
    example = torch.zeros(2, h, w, c, dtype=torch.uint8)
    buffer = io.BytesIO()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module, (example,), buffer, dynamo=False, input_names=[INPUT_PIXELS],
            output_names=[OUTPUT_LOGITS, OUTPUT_FEATURES], opset_version=EXPORT_OPSET, do_constant_folding=True,
            dynamic_axes={INPUT_PIXELS: {0: "batch"}, OUTPUT_LOGITS: {0: "batch"}, OUTPUT_FEATURES: {0: "batch"}},
        )
    return buffer.getvalue()


def _onnx_outputs(model_bytes: bytes, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(logits [N, K], features [N, D]) of the exported graph in onnxruntime: what `edgegan eval` will see."""
    import onnxruntime as ort

    from edgegan.runtime.providers import session_options

    session = ort.InferenceSession(model_bytes, session_options(), providers=["CPUExecutionProvider"])
    parts = [session.run([OUTPUT_LOGITS, OUTPUT_FEATURES], {INPUT_PIXELS: images[i:i + batch]})
             for i in range(0, len(images), batch)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _save_onnx(model_bytes: bytes, info: EvaluatorInfo, path: Path) -> None:
    """Attach the evaluator metadata, check the graph, and write it atomically (temp file, fsync, rename)."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, info.to_metadata())
    onnx.checker.check_model(model)
    atomic_write(path, lambda f: f.write(model.SerializeToString()))


def train_evaluator(cfg: EvaluatorConfig, out: str | os.PathLike | None = None,
                    progress: bool = True) -> EvaluatorResult:
    """Train the evaluator on the real training split and export it to ONNX with its metadata.

    Args:
        cfg: the recipe.
        out: the .onnx file to write; None writes `edgegan.runtime.evaluation.quality.default_evaluator_path(cfg.dataset)`, where
            `edgegan eval` and `edgegan export` look by default.
        progress: show progress on stderr (a tqdm bar on a terminal, plain lines elsewhere: runtime/progress.py).

    Returns:
        EvaluatorResult: path, metadata (test accuracy measured on the exported file in onnxruntime), seconds,
        steps, and the last epoch's training accuracy.

    Raises:
        EvaluatorError, DataError.
    """
    cfg.validate()
    path = Path(out).expanduser() if out is not None else default_evaluator_path(cfg.dataset)
    if path.suffix.lower() != ".onnx":
        raise EvaluatorError(f"--out {path}: the evaluator is an ONNX file; give a path ending in .onnx")
    start = time.perf_counter()
    device = _device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    train, acc_images, acc_labels, acc_split = _splits(cfg, progress)
    if cfg.max_images is not None and cfg.max_images < len(train.images):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(train.images), cfg.max_images, replace=False))
        train.images, train.labels = train.images[keep], train.labels[keep]
    n, h, w, c = train.images.shape
    num_classes = max(len(train.class_names), int(train.labels.max()) + 1)
    class_names = list(train.class_names) + [str(k) for k in range(len(train.class_names), num_classes)]

    torch.manual_seed(cfg.seed)
    net = EvaluatorNet(c, h, w, num_classes, cfg.width, cfg.feature_dim, cfg.dropout).to(device)
    images = torch.from_numpy(np.ascontiguousarray(train.images)).to(device)  # uint8 [N, H, W, C]
    labels = torch.from_numpy(train.labels).to(device)
    batch = min(cfg.batch_size, n)
    steps_per_epoch = max(1, n // batch)
    total = steps_per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = max(1, total // 4)

    def lr_factor(t: int) -> float:  # linear warm-up over the first quarter, then cosine down to 0
        if t < warmup:
            return (t + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (t - warmup) / max(1, total - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    order_gen = torch.Generator().manual_seed(cfg.seed)

    net.train()
    step, correct, seen = 0, torch.zeros((), device=device), 0
    with Progress(total, unit="step", desc=f"evaluator {cfg.dataset}", quiet=not progress) as bar:
        while step < total:
            order = torch.randperm(n, generator=order_gen).to(device)
            correct.zero_()
            seen = 0
            for i in range(steps_per_epoch):
                if step >= total:
                    break
                idx = order[i * batch:(i + 1) * batch]
                x, y = _to_batch(images[idx]), labels[idx]  # [B, C, H, W], [B]
                logits, _ = net(x)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                correct += (logits.argmax(1) == y).sum()  # stays on the device: no sync per step
                seen += len(y)
                step += 1
                bar.update(1)
                if progress and step % 50 == 0:  # .item() is a host sync: not every step
                    bar.set_postfix(loss=f"{loss.item():.3f}")
    train_accuracy = float(correct.item()) / max(seen, 1)

    net = net.cpu().eval()
    model_bytes = export_evaluator_bytes(net, (h, w, c))
    acc_images = np.ascontiguousarray(acc_images)
    onnx_logits, _ = _onnx_outputs(model_bytes, acc_images)
    accuracy = float((onnx_logits.argmax(1) == acc_labels).mean())
    with torch.no_grad():  # the exported graph must compute what the trained network does
        probe = acc_images[:64]
        torch_logits, _ = net(_to_batch(torch.from_numpy(probe)))
    onnx_err = float(np.abs(onnx_logits[:len(probe)] - torch_logits.numpy()).max())
    if not onnx_err <= 1e-3 * max(1.0, float(np.abs(torch_logits.numpy()).max())):
        raise EvaluatorError(f"the exported evaluator disagrees with PyTorch (max logit error {onnx_err:.3g})")

    recipe = {k: v for k, v in asdict(cfg).items() if k not in ("data_dir", "device", "threads")}
    info = EvaluatorInfo(
        dataset=cfg.dataset, channels=c, height=h, width=w, num_classes=num_classes, class_names=class_names,
        feature_layer=FEATURE_LAYER, feature_dim=cfg.feature_dim, test_accuracy=accuracy,
        train={**recipe, "architecture": "cnn", "train_images": int(n), "steps": step,
               "train_accuracy": round(train_accuracy, 6), "accuracy_split": acc_split,
               "accuracy_images": int(len(acc_images)), "onnx_max_logit_err": onnx_err, "source": train.source},
    )
    _save_onnx(model_bytes, info, path)
    return EvaluatorResult(path, info, time.perf_counter() - start, step, train_accuracy)
