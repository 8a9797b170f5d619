"""The architecture registry: `--arch NAME` -> its Architecture (models/spec.py), one module per architecture.

Adding an architecture is one module that defines G, D and a `SPEC`, plus one row in trainer/architectures.py (torch-free,
so `--help` works without torch); ARCHITECTURES below is built from it, and the config's validation, the CLI's
`--arch` choice and the builders all read it.
Every generator maps (z [B, nz], label [B] | None) to images [B, C, H, W] in [-1, 1]; every discriminator maps
(x, label | None) to logits [B].
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from torch import nn

from edgegan.trainer.architectures import ARCHITECTURE_MODULES, D_NORMS
from edgegan.trainer.models.dcgan import DCGANDiscriminator, DCGANGenerator
from edgegan.trainer.models.layers import ConditionalBatchNorm, init_weights, spectrally_normed
from edgegan.trainer.models.mlp import MLPDiscriminator, MLPGenerator
from edgegan.trainer.models.spec import Architecture

if TYPE_CHECKING:  # annotations only: the config validates against the registry, so it imports this package
    from edgegan.trainer.config import ModelConfig

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "D_NORMS",
    "ConditionalBatchNorm",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "build_discriminator",
    "build_generator",
    "init_weights",
]


def _load_specs() -> dict[str, Architecture]:
    """Every row of trainer/architectures.py imported: name -> its module's SPEC (whose name must match)."""
    specs = {}
    for name, module in ARCHITECTURE_MODULES.items():
        spec = importlib.import_module(module).SPEC
        if spec.name != name:
            raise ImportError(
                f"{module}.SPEC is named {spec.name!r}, but trainer/architectures.py lists it as {name!r}"
            )
        specs[name] = spec
    return specs


ARCHITECTURES: dict[str, Architecture] = _load_specs()


def build_generator(cfg: ModelConfig) -> nn.Module:
    """G for a validated `cfg`, DCGAN-initialised (`build_generator(ModelConfig(**ckpt["config"]["model"]))`)."""
    cfg.validate()
    model = ARCHITECTURES[cfg.arch].generator(cfg)
    init_weights(model)
    return model


def build_discriminator(cfg: ModelConfig, norm: str = "batch", depth: int = 0) -> nn.Module:
    """D for a validated `cfg`, DCGAN-initialised; `norm` "spectral" swaps its BatchNorms for spectral
    normalisation of every weight (models/layers.py spectrally_normed), "batch" keeps the architecture's own;
    `depth` layers more per stage (the architecture's D says where; 0: as published)."""
    cfg.validate()
    if norm not in D_NORMS:
        raise ValueError(f"unknown discriminator normalisation {norm!r}; choose one of {', '.join(D_NORMS)}")
    model = ARCHITECTURES[cfg.arch].discriminator(cfg, depth)
    init_weights(model)
    return spectrally_normed(model) if norm == "spectral" else model
