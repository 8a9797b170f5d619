"""Tiny checkpoints for the export tests: width-8 DCGAN/MLP generators with non-trivial BatchNorm statistics."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgegan.trainer.checkpoint import save_checkpoint
from edgegan.trainer.config import ModelConfig, TrainConfig
from edgegan.trainer.models import ConditionalBatchNorm, build_discriminator, build_generator

CLASS_NAMES = ["T-shirt", "Trouser", "Pullover"]
WEIGHT_SCALE = 12.0  # images std ~0.5, a few pixels near +-1 (both ends of the range are exercised)


def make_checkpoint(
    path: Path, *, arch: str = "dcgan", num_classes: int = 0, image_size: int = 28, channels: int = 1,
    nz: int = 16, ema: bool = True, seed: int = 0, weight_scale: float | None = None,
) -> Path:
    """Save an edgegan checkpoint whose G has BatchNorm running stats and affine params away from identity,
    and (with ema) a G_ema that differs from G, so folding and --no-ema are really exercised."""
    torch.manual_seed(seed)
    cfg = TrainConfig(model=ModelConfig(arch=arch, nz=nz, image_size=image_size, channels=channels,
                                        num_classes=num_classes, width=8),
                      dataset="npz", class_names=CLASS_NAMES[:num_classes], seed=seed)
    G, D = build_generator(cfg.model), build_discriminator(cfg.model)
    with torch.no_grad():
        for module in G.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.momentum = 0.5
                if module.affine:
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.2, 0.2)
            if isinstance(module, ConditionalBatchNorm):  # per-class gains and biases away from identity
                module.gain.weight.uniform_(-0.5, 0.5)
                module.bias.weight.uniform_(-0.2, 0.2)
        # Larger weights than DCGAN init, so images span a good part of [-1, 1] instead of sitting near 0.
        for module in G.modules():
            if isinstance(module, (torch.nn.ConvTranspose2d, torch.nn.Linear)):
                module.weight.mul_(WEIGHT_SCALE if weight_scale is None else weight_scale)
        for _ in range(4):  # train-mode forwards: running_mean/var move away from 0/1
            z = torch.randn(16, nz) * 1.5 + 0.3
            label = torch.randint(0, num_classes, (16,)) if num_classes else None
            G(z, label)
    G_ema = None
    if ema:
        G_ema = {k: (v * 0.9 if v.is_floating_point() else v).clone() for k, v in G.state_dict().items()}
    state = {"config": cfg.to_dict(), "class_names": CLASS_NAMES[:num_classes], "G": G.state_dict(),
             "D": D.state_dict(), "G_ema": G_ema, "opt_G": {}, "opt_D": {}, "step": 7, "epoch": 1, "rng": {}}
    save_checkpoint(state, path)
    return path


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ckpts")


@pytest.fixture(scope="session")
def dcgan_cond_ckpt(ckpt_dir) -> Path:
    """Conditional DCGAN 28x28x1, 3 classes."""
    return make_checkpoint(ckpt_dir / "dcgan_cond.pt", arch="dcgan", num_classes=3)


@pytest.fixture(scope="session")
def dcgan_ckpt(ckpt_dir) -> Path:
    """Unconditional DCGAN 28x28x1, inside a run folder layout (RUN/checkpoints/last.pt)."""
    run = ckpt_dir / "run_dcgan"
    make_checkpoint(run / "checkpoints" / "last.pt", arch="dcgan", seed=1)
    return run


@pytest.fixture(scope="session")
def mlp_cond_ckpt(ckpt_dir) -> Path:
    return make_checkpoint(ckpt_dir / "mlp_cond.pt", arch="gan", num_classes=3, seed=2)


@pytest.fixture(scope="session")
def mlp_ckpt(ckpt_dir) -> Path:
    return make_checkpoint(ckpt_dir / "mlp.pt", arch="gan", seed=3, ema=False)


@pytest.fixture(scope="session")
def rgb32_ckpt(ckpt_dir) -> Path:
    """Unconditional DCGAN 32x32 RGB."""
    return make_checkpoint(ckpt_dir / "rgb32.pt", arch="dcgan", image_size=32, channels=3, seed=4)


@pytest.fixture(scope="session")
def full_export(dcgan_cond_ckpt, tmp_path_factory) -> tuple[Path, dict]:
    """Conditional DCGAN exported with --fp16 --ort-format --triton: (out_dir, report)."""
    from edgegan.export.pipeline import export_checkpoint

    out = tmp_path_factory.mktemp("exports") / "fashion"
    report = export_checkpoint(dcgan_cond_ckpt, out, fp16=True, ort_format=True, triton=True, progress=False)
    return out, report


@pytest.fixture(scope="session")
def uint8_export(rgb32_ckpt, tmp_path_factory) -> tuple[Path, dict]:
    """Unconditional 32x32 RGB DCGAN exported with --pixels uint8 --fp16 --triton: (out_dir, report)."""
    from edgegan.export.pipeline import export_checkpoint

    out = tmp_path_factory.mktemp("exports") / "rgb.pixels"
    report = export_checkpoint(rgb32_ckpt, out, pixels="uint8", fp16=True, triton=True, progress=False)
    return out, report
