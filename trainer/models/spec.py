"""What the trainer needs to know about one architecture: the registry entry each architecture module states."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:  # annotations only: the config validates against the registry, so it imports this package
    from edgegan.trainer.config import ModelConfig


@dataclass(frozen=True)
class Architecture:
    """One architecture in `edgegan.trainer.models.ARCHITECTURES`.

    Attributes:
        name: the `--arch` value, saved as `config.model.arch` in every checkpoint.
        generator: ModelConfig -> G, (z [B, nz], label [B] | None) -> images [B, C, H, W] in [-1, 1].
        discriminator: (ModelConfig, depth) -> D, (x [B, C, H, W], label [B] | None) -> logits [B]; depth: the
            layers it adds to each stage (--d-depth; 0: as published).
        image_size_ok: whether G and D can be built for an image side of this many pixels.
        image_size_error: the ConfigError message otherwise, with `{size}` for the refused size.
        g_conditioning: how a conditional G takes its label unless the config says ("cbn" or "concat").
        channels_last: whether NHWC memory format pays (convolutions) for G, D and the batches.
    """

    name: str
    generator: Callable[[ModelConfig], nn.Module]
    discriminator: Callable[[ModelConfig, int], nn.Module]
    image_size_ok: Callable[[int], bool]
    image_size_error: str
    g_conditioning: str
    channels_last: bool
