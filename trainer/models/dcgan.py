"""DCGAN (Radford et al. 2015): convolutional generator and discriminator, `--arch dcgan`.

Pure modules: torch only, explicit ModelConfig, no I/O. A conditional G joins a label embedding to z by default
(its first layer draws a per-class template; trainer/step.py's mode-seeking term keeps z alive); D takes the
label through a projection head.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from edgegan.trainer.models.layers import LabelJoin, LabelledSequential, Projection, g_norm
from edgegan.trainer.models.spec import Architecture

if TYPE_CHECKING:  # annotations only: the config validates against the registry, so it imports this package
    from edgegan.trainer.config import ModelConfig


def dcgan_plan(cfg: ModelConfig) -> tuple[int, list[int]]:
    """Start size and channel ladder of the DCGAN generator.

    28x28 (MNIST family): 7x7 x 4w -> 14x14 x 2w -> 28x28 x C.
    2^k >= 32: 4x4 x w*2^(k-3) -> ... -> (S/2)x(S/2) x w -> SxS x C (64: 512, 256, 128, 64 at w=64).
    """
    if cfg.image_size == 28:
        return 7, [cfg.width * 4, cfg.width * 2]
    doublings = int(math.log2(cfg.image_size)) - 2  # 4 -> S
    return 4, [cfg.width * 2 ** (doublings - 1 - i) for i in range(doublings)]


class DCGANGenerator(nn.Module):
    """ConvTranspose2d + BatchNorm + ReLU, Tanh output; no pooling, no hidden fully-connected layers."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.join = LabelJoin(cfg)
        start, ladder = dcgan_plan(cfg)
        # z [B, nz(+e), 1, 1] -> [B, ladder[0], start, start]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(self.join.out_features, ladder[0], start, 1, 0, bias=False),
            g_norm(cfg, ladder[0], 2),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(ladder, ladder[1:]):  # each doubles H and W
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), g_norm(cfg, c_out, 2), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ladder[-1], cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = LabelledSequential(*layers)

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        h = self.join(z, label)
        return self.net(h.view(h.shape[0], h.shape[1], 1, 1), label)  # [B, C, H, W]


def _refine(channels: int, depth: int, norm: bool) -> list[nn.Module]:
    """`depth` 3x3 stride-1 convolutions at one resolution of D (SNGAN's "standard CNN" D pairs each strided
    convolution with one), each with BatchNorm where its stage has one, then LeakyReLU(0.2)."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers.append(nn.Conv2d(channels, channels, 3, 1, 1, bias=False))
        layers += [nn.BatchNorm2d(channels)] if norm else []
        layers.append(nn.LeakyReLU(0.2, True))
    return layers


class DCGANDiscriminator(nn.Module):
    """Strided Conv2d + LeakyReLU(0.2), BatchNorm on all but the first layer, then a linear/projection head;
    `depth` 3x3 convolutions after each strided one (0: the DCGAN paper's D)."""

    def __init__(self, cfg: ModelConfig, depth: int = 0):
        super().__init__()
        start, g_ladder = dcgan_plan(cfg)
        # w, 2w, 4w, ... as in pytorch/examples (ndf first); the mirror of G's ladder at sizes 2^k, and at 28x28
        # w -> 2w rather than G's 4w/2w (a 4x larger D bought no quality and cost 4x the D multiply-adds).
        ladder = [cfg.width * 2**i for i in range(len(g_ladder))]
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, ladder[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        layers += _refine(ladder[0], depth, norm=False)
        for c_in, c_out in zip(ladder, ladder[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
            layers += _refine(c_out, depth, norm=True)
        layers.append(nn.Flatten())  # [B, widest * start * start]
        self.features = nn.Sequential(*layers)
        # The head is the paper's final convolution over the start x start map, written as a Linear so a
        # conditional projection can share its features.
        self.head = Projection(ladder[-1] * start * start, cfg.num_classes)

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x), label)


SPEC = Architecture(
    name="dcgan",
    generator=DCGANGenerator,
    discriminator=DCGANDiscriminator,
    # 28 (the MNIST family: 7 -> 14 -> 28) or 4 doubled k >= 3 times
    image_size_ok=lambda size: size == 28 or (size >= 32 and size & (size - 1) == 0),
    image_size_error="DCGAN image size must be 28 or a power of two >= 32, got {size}",
    g_conditioning="concat",  # measured: with conditional BatchNorm its samples ignored the label (layers.py)
    channels_last=True,  # NHWC convolutions: faster on CPU (oneDNN) and on tensor cores
)
