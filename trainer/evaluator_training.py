"""The domain evaluator's training: a small CNN classifier trained on a dataset's real training split.

The trainer knows nothing of ONNX (docs/DESIGN.md): `train_evaluator` hands back the trained network with what
its export needs (TrainedEvaluator), and edgegan.export.evaluator_onnx turns it into the .onnx file `edgegan eval`
runs with onnxruntime alone (uint8 pixels in, logits and features out, its metadata, verified against this
network). `edgegan evaluator train` runs both.

Architecture (28x28 input, width w = 32, D = 128):
    [B, C, 28, 28] -> conv3x3 w, BN, ReLU, maxpool -> [B, w, 14, 14]
                   -> conv3x3 2w, BN, ReLU, maxpool -> [B, 2w, 7, 7]
                   -> conv3x3 2w, BN, ReLU            -> [B, 2w, 7, 7] -> flatten [B, 2w*49]
                   -> linear D, ReLU = "features" [B, D] -> dropout -> linear K = "logits" [B, K]
Larger images get one more conv+pool stage per halving until the map is at most 8x8.

Example:
    >>> trained = train_evaluator(EvaluatorConfig(dataset="fashion-mnist"))   # doctest: +SKIP
    >>> round(trained.train_accuracy, 2)                                        # doctest: +SKIP
    0.9
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgegan.runtime.progress import Progress
from edgegan.trainer.config import EvaluatorConfig, EvaluatorError

FEATURE_LAYER = "fc1 after ReLU (input of the final linear layer)"
HOLDOUT_SHARE = 0.1  # without a test split, this share of the training images measures accuracy


class EvaluatorNet(nn.Module):
    """Small CNN: x float [B, C, H, W] in [-1, 1] -> (logits [B, K], features [B, D])."""

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        num_classes: int,
        base: int = 32,
        feature_dim: int = 128,
        dropout: float = 0.3,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c_out, h, w = channels, base, height, width
        while True:  # conv + pool stages until the map is at most 8x8 (at least one)
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
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
    """What is exported: uint8 pixels [B, H, W, C] -> (logits, features), the scaling inside the module."""

    def __init__(self, net: EvaluatorNet):
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(_to_batch(pixels))


@dataclass
class TrainedEvaluator:
    """A trained evaluator and what its export needs: the network (eval mode, CPU), the data it describes, the
    images its accuracy is measured on (never trained on) and its training provenance."""

    net: EvaluatorNet
    cfg: EvaluatorConfig
    image_shape: tuple[int, int, int]  # (H, W, C) of the uint8 pixels it takes
    class_names: list[str]  # K names
    accuracy_images: np.ndarray  # uint8 [M, H, W, C]
    accuracy_labels: np.ndarray  # int [M]
    accuracy_split: str  # "test", or the holdout's description
    train_images: int
    steps: int
    train_accuracy: float  # the last epoch's, in training mode
    source: str  # where the training images came from
    seconds: float

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def pixels_module(self) -> PixelsEvaluator:
        """What is exported: uint8 pixels [B, H, W, C] -> (logits [B, K], features [B, D]), eval mode."""
        return PixelsEvaluator(self.net).eval()

    def provenance(self) -> dict[str, Any]:
        """The recipe and training figures the exported file records (its edgegan.evaluator.train metadata)."""
        recipe = {k: v for k, v in asdict(self.cfg).items() if k not in ("data_dir", "device", "threads")}
        return {
            **recipe,
            "architecture": "cnn",
            "train_images": self.train_images,
            "steps": self.steps,
            "train_accuracy": round(self.train_accuracy, 6),
            "accuracy_split": self.accuracy_split,
            "accuracy_images": int(len(self.accuracy_images)),
            "source": self.source,
        }


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

    train = load_images(
        cfg.dataset, "train", cfg.data_dir, image_size=cfg.image_size, channels=cfg.channels, progress=progress
    )
    if train.labels is None or len(train.class_names) < 2:
        raise EvaluatorError(
            f"the evaluator is a classifier: {cfg.dataset} ({train.source}) needs labels with at least 2 classes "
            "(npz: a 'labels' array; folder: one subfolder per class)"
        )
    try:
        test = load_images(
            cfg.dataset,
            "test",
            cfg.data_dir,
            image_size=cfg.image_size,
            channels=int(train.images.shape[-1]),
            progress=progress,
        )
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


def train_evaluator(cfg: EvaluatorConfig, progress: bool = True) -> TrainedEvaluator:
    """Train the evaluator on the real training split (export it with edgegan.export.evaluator_onnx).

    Args:
        cfg: the recipe.
        progress: show progress on stderr (a tqdm bar on a terminal, plain lines elsewhere: runtime/progress.py).

    Returns:
        TrainedEvaluator: the network in eval mode on the CPU, the accuracy images, steps, the last epoch's
        training accuracy.

    Raises:
        EvaluatorError, DataError.
    """
    cfg.validate()
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
                idx = order[i * batch : (i + 1) * batch]
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

    return TrainedEvaluator(
        net=net.cpu().eval(),
        cfg=cfg,
        image_shape=(h, w, c),
        class_names=class_names,
        accuracy_images=np.ascontiguousarray(acc_images),
        accuracy_labels=acc_labels,
        accuracy_split=acc_split,
        train_images=int(n),
        steps=step,
        train_accuracy=train_accuracy,
        source=train.source,
        seconds=time.perf_counter() - start,
    )
