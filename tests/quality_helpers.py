"""Tiny, learnable data, a tiny trained evaluator and tiny generator checkpoints for the quality tests.

The data: 16x16 grey images of three shapes (horizontal bar, vertical bar, square) at random places with noise,
saved as an .npz dataset with a train and a test split. A width-4 evaluator learns them in a few dozen steps.
"""
from __future__ import annotations

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
            images[i, a:a + 3, 1:SIZE - 1] += 200
        elif label == 1:
            images[i, 1:SIZE - 1, b:b + 3] += 200
        else:
            images[i, a:a + 6, b:b + 6] += 200
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def make_npz(path: Path, n_train: int = 300, n_test: int = 150) -> Path:
    """An .npz dataset (edgegan.runtime.evaluation.datasets layout) with train and test splits and class names."""
    images, labels = shapes(n_train, 0)
    test_images, test_labels = shapes(n_test, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=images, labels=labels, test_images=test_images, test_labels=test_labels,
             class_names=np.array(CLASS_NAMES))
    return path


def train_tiny_evaluator(npz: Path, out: Path, steps: int = 60) -> Path:
    """A width-4, 16-feature evaluator trained for a few dozen steps on the shapes (one CPU thread)."""
    from edgegan.trainer.evaluator import EvaluatorConfig, train_evaluator

    cfg = EvaluatorConfig(dataset="npz", data_dir=str(npz), epochs=20, batch_size=32, width=4, feature_dim=16,
                          max_steps=steps, lr=1e-2, dropout=0.0, threads=1)
    return train_evaluator(cfg, out, progress=False).path


def make_checkpoint(path: Path, *, num_classes: int = 0, seed: int = 0, nz: int = 8) -> Path:
    """An MLP generator checkpoint for 16x16x1 images with non-trivial BatchNorm statistics."""
    import torch

    from edgegan.trainer.checkpoint import save_checkpoint
    from edgegan.trainer.config import ModelConfig, TrainConfig
    from edgegan.trainer.models import build_discriminator, build_generator

    torch.manual_seed(seed)
    cfg = TrainConfig(model=ModelConfig(arch="gan", nz=nz, image_size=SIZE, channels=1, num_classes=num_classes,
                                        width=8), dataset="npz", class_names=CLASS_NAMES[:num_classes], seed=seed)
    G, D = build_generator(cfg.model), build_discriminator(cfg.model)
    with torch.no_grad():
        for module in G.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.mul_(10.0)  # images spread over [-1, 1] instead of sitting at 0
        for _ in range(3):  # train-mode forwards move the BatchNorm running statistics
            label = torch.randint(0, num_classes, (32,)) if num_classes else None
            G(torch.randn(32, nz), label)
    state = {"config": cfg.to_dict(), "class_names": CLASS_NAMES[:num_classes], "G": G.state_dict(),
             "D": D.state_dict(), "G_ema": None, "opt_G": {}, "opt_D": {}, "step": 1, "epoch": 0, "rng": {}}
    save_checkpoint(state, path)
    return path
