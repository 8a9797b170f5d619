"""The architecture registry: `--arch NAME` -> its Architecture (models/spec.py), one module per architecture.

Adding an architecture is one module that defines G, D and a `SPEC`, plus one line in ARCHITECTURES; the config's
ARCHS, its validation, the CLI's `--arch` choice and the builders below all read this table.
Every generator maps (z [B, nz], label [B] | None) to images [B, C, H, W] in [-1, 1]; every discriminator maps
(x, label | None) to logits [B].
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from edgegan.trainer.models import dcgan, mlp
from edgegan.trainer.models.dcgan import DCGANDiscriminator, DCGANGenerator
from edgegan.trainer.models.layers import ConditionalBatchNorm, init_weights
from edgegan.trainer.models.mlp import MLPDiscriminator, MLPGenerator
from edgegan.trainer.models.spec import Architecture

if TYPE_CHECKING:  # annotations only: the config validates against the registry, so it imports this package
    from edgegan.trainer.config import ModelConfig

__all__ = [
    "ARCHITECTURES", "Architecture", "ConditionalBatchNorm", "DCGANDiscriminator", "DCGANGenerator",
    "MLPDiscriminator", "MLPGenerator", "build_discriminator", "build_generator", "init_weights",
]

# The order is the CLI's and the error messages' ("choose one of gan, dcgan").
ARCHITECTURES: dict[str, Architecture] = {"gan": mlp.SPEC, "dcgan": dcgan.SPEC}


def build_generator(cfg: ModelConfig) -> nn.Module:
    """G for a validated `cfg`, DCGAN-initialised (`build_generator(ModelConfig(**ckpt["config"]["model"]))`)."""
    cfg.validate()
    model = ARCHITECTURES[cfg.arch].generator(cfg)
    init_weights(model)
    return model


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    """D for a validated `cfg`, DCGAN-initialised."""
    cfg.validate()
    model = ARCHITECTURES[cfg.arch].discriminator(cfg)
    init_weights(model)
    return model
