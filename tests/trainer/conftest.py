from __future__ import annotations

import numpy as np
import pytest


def write_npz(path, n: int = 256, size: int = 28, channels: int = 1, classes: int = 3, seed: int = 0):
    """Tiny labelled dataset: class k is a bright band at a class-specific row, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 40, (n, size, size, channels), dtype=np.uint8)
    for i, k in enumerate(labels):
        row = (k + 1) * size // (classes + 1)
        images[i, row - 2 : row + 2] = 220
    np.savez(path, images=images, labels=labels, class_names=np.array([f"class{k}" for k in range(classes)]))
    return path


@pytest.fixture
def tiny_npz(tmp_path):
    return write_npz(tmp_path / "tiny.npz")


@pytest.fixture
def tiny_cfg(tiny_npz):
    """A DCGAN small enough for a training step in milliseconds."""
    from edgegan.trainer.config import ModelConfig, TrainConfig

    return TrainConfig(
        model=ModelConfig(arch="dcgan", nz=16, image_size=28, width=8),
        dataset="npz",
        data_dir=str(tiny_npz),
        batch_size=16,
        max_steps=4,
        log_every=2,
        seed=3,
    )
