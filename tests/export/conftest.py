"""Tiny checkpoints for the export tests: width-8 DCGAN/MLP generators with non-trivial BatchNorm statistics."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import quality_helpers

CLASS_NAMES = ["T-shirt", "Trouser", "Pullover"]
WEIGHT_SCALE = 12.0  # images std ~0.5, a few pixels near +-1 (both ends of the range are exercised)


def make_checkpoint(
    path: Path,
    *,
    arch: str = "dcgan",
    num_classes: int = 0,
    image_size: int = 28,
    channels: int = 1,
    nz: int = 16,
    ema: bool = True,
    seed: int = 0,
    weight_scale: float | None = None,
) -> Path:
    """Save an edgegan checkpoint whose G has BatchNorm running stats and affine params away from identity,
    and (with ema) a G_ema that differs from G, so folding and --no-ema are really exercised
    (tests/quality_helpers.make_checkpoint with the export tests' settings)."""
    return quality_helpers.make_checkpoint(
        path,
        arch=arch,
        num_classes=num_classes,
        image_size=image_size,
        channels=channels,
        nz=nz,
        ema=ema,
        seed=seed,
        weight_scale=WEIGHT_SCALE if weight_scale is None else weight_scale,
        class_names=CLASS_NAMES,
        perturb_norms=True,
        warmup=quality_helpers.Warmup(forwards=4, batch=16, z_scale=1.5, z_shift=0.3),
        step=7,
        epoch=1,
    )


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
