"""Tiny, learnable data, a tiny trained evaluator and tiny generator checkpoints for the quality tests.

The data: 16x16 grey images of three shapes (horizontal bar, vertical bar, square) at random places with noise,
saved as an .npz dataset with a train and a test split. A width-4 evaluator learns them in a few dozen steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIZE = 16
CLASS_NAMES = ["hbar", "vbar", "square"]


def shapes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images uint8 [n, 16, 16] and labels int64 [n] (balanced: label i % 3)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(30, 12, (n, SIZE, SIZE))  # dark noisy background
    labels = np.arange(n) % 3
    for i, label in enumerate(labels):
        a, b = rng.integers(2, SIZE - 6, 2)
        if label == 0:
            images[i, a : a + 3, 1 : SIZE - 1] += 200
        elif label == 1:
            images[i, 1 : SIZE - 1, b : b + 3] += 200
        else:
            images[i, a : a + 6, b : b + 6] += 200
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def make_npz(path: Path, n_train: int = 300, n_test: int = 150) -> Path:
    """An .npz dataset (edgegan.runtime.evaluation.datasets layout) with train and test splits and class names."""
    images, labels = shapes(n_train, 0)
    test_images, test_labels = shapes(n_test, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        images=images,
        labels=labels,
        test_images=test_images,
        test_labels=test_labels,
        class_names=np.array(CLASS_NAMES),
    )
    return path


def train_tiny_evaluator(npz: Path, out: Path, steps: int = 60) -> Path:
    """A width-4, 16-feature evaluator trained for a few dozen steps on the shapes (one CPU thread)."""
    from edgegan.export.evaluator_onnx import train_and_export_evaluator
    from edgegan.trainer.evaluator_training import EvaluatorConfig

    cfg = EvaluatorConfig(
        dataset="npz",
        data_dir=str(npz),
        epochs=20,
        batch_size=32,
        width=4,
        feature_dim=16,
        max_steps=steps,
        lr=1e-2,
        dropout=0.0,
        threads=1,
    )
    return train_and_export_evaluator(cfg, out, progress=False).path


@dataclass(frozen=True)
class Warmup:
    """The train-mode forwards that move G's BatchNorm running statistics: `forwards` batches of `batch`
    latents z ~ N(z_shift, z_scale^2) [batch, nz] (off-centre latents move them further from 0 and 1)."""

    forwards: int = 3
    batch: int = 32
    z_scale: float = 1.0
    z_shift: float = 0.0


def make_checkpoint(
    path: Path,
    *,
    arch: str = "gan",
    num_classes: int = 0,
    image_size: int = SIZE,
    channels: int = 1,
    nz: int = 8,
    width: int = 8,
    ema: bool = False,
    seed: int = 0,
    weight_scale: float = 10.0,
    class_names: list[str] = CLASS_NAMES,
    perturb_norms: bool = False,
    warmup: Warmup = Warmup(),
    step: int = 1,
    epoch: int = 0,
) -> Path:
    """Save an edgegan checkpoint of a freshly built G and D whose G has non-trivial BatchNorm statistics.

    The defaults: an MLP generator for the 16x16x1 shapes. The export tests (tests/export/conftest.py) ask for
    more: `perturb_norms` moves every BatchNorm affine and per-class gain/bias away from identity, and `ema`
    saves a G_ema (0.9 x G) that differs from G, so folding and --no-ema are really exercised.

    Args:
        weight_scale: G's ConvTranspose2d/Linear weights times this, so images span a good part of [-1, 1]
            instead of sitting near 0 (DCGAN init alone).
        class_names: the first `num_classes` name the classes.
    """
    import torch

    from edgegan.trainer.checkpoint import save_weights_checkpoint
    from edgegan.trainer.config import ModelConfig, TrainConfig
    from edgegan.trainer.models import ConditionalBatchNorm, build_discriminator, build_generator

    torch.manual_seed(seed)
    names = list(class_names[:num_classes])
    cfg = TrainConfig(
        model=ModelConfig(
            arch=arch, nz=nz, image_size=image_size, channels=channels, num_classes=num_classes, width=width
        ),
        dataset="npz",
        class_names=names,
        seed=seed,
    )
    G, D = build_generator(cfg.model), build_discriminator(cfg.model)
    with torch.no_grad():
        for module in G.modules() if perturb_norms else ():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.momentum = 0.5
                if module.affine:
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.2, 0.2)
            if isinstance(module, ConditionalBatchNorm):  # per-class gains and biases away from identity
                module.gain.weight.uniform_(-0.5, 0.5)
                module.bias.weight.uniform_(-0.2, 0.2)
        for module in G.modules():
            if isinstance(module, (torch.nn.ConvTranspose2d, torch.nn.Linear)):
                module.weight.mul_(weight_scale)
        for _ in range(warmup.forwards):  # train-mode forwards: running_mean/var move away from 0/1
            z = torch.randn(warmup.batch, nz) * warmup.z_scale + warmup.z_shift
            label = torch.randint(0, num_classes, (warmup.batch,)) if num_classes else None
            G(z, label)
    G_ema = None
    if ema:
        G_ema = {k: (v * 0.9 if v.is_floating_point() else v).clone() for k, v in G.state_dict().items()}
    save_weights_checkpoint(
        cfg, G.state_dict(), path, D=D.state_dict(), G_ema=G_ema, class_names=names, step=step, epoch=epoch
    )
    return path
