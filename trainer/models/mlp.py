"""GAN (Goodfellow et al. 2014): MLP generator and discriminator, `--arch gan`.

Pure modules: torch only, explicit ModelConfig, no I/O. A conditional G takes its label through
ConditionalBatchNorm by default (models/layers.py says what was measured); D through a projection head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from edgegan.trainer.models.layers import LabelJoin, LabelledSequential, Projection, g_norm
from edgegan.trainer.models.spec import Architecture

if TYPE_CHECKING:  # annotations only: the config validates against the registry, so it imports this package
    from edgegan.trainer.config import ModelConfig


class MLPGenerator(nn.Module):
    """Goodfellow-style MLP: z -> 4w -> 8w -> 16w (256, 512, 1024 at w=64) -> C*H*W, tanh."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.join = LabelJoin(cfg)
        widths = [cfg.width * 4, cfg.width * 8, cfg.width * 16]
        layers: list[nn.Module] = []
        fan_in = self.join.out_features
        for width in widths:
            layers += [nn.Linear(fan_in, width), g_norm(cfg, width, 1), nn.LeakyReLU(0.2, inplace=True)]
            fan_in = width
        layers += [nn.Linear(fan_in, cfg.channels * cfg.image_size**2), nn.Tanh()]
        self.net = LabelledSequential(*layers)

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        c, s = self.cfg.channels, self.cfg.image_size
        return self.net(self.join(z, label), label).view(-1, c, s, s)  # [B, C, H, W]

    @torch.no_grad()
    def init_output_bias(self, mean_image: torch.Tensor) -> None:
        """Output layer bias = atanh(mean_image) (float [C, H, W] in [-1, 1], clipped to +-0.98 so atanh stays
        finite): before training each pixel sits at the data's mean (trainer/step.py GANStep.init_output_bias)."""
        out = [m for m in self.net if isinstance(m, nn.Linear)][-1]  # [C*H*W] bias, C-major as view() reads it
        out.bias.copy_(torch.atanh(mean_image.clamp(-0.98, 0.98)).reshape(-1).to(out.bias.dtype))


class MLPDiscriminator(nn.Module):
    """x [B, C, H, W] -> 16w -> 8w -> 4w (LeakyReLU 0.2; `depth` more 4w layers) -> logit."""

    def __init__(self, cfg: ModelConfig, depth: int = 0):
        super().__init__()
        widths = [cfg.width * 16, cfg.width * 8, cfg.width * 4] + [cfg.width * 4] * depth
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = cfg.channels * cfg.image_size**2
        for width in widths:
            layers += [nn.Linear(fan_in, width), nn.LeakyReLU(0.2, inplace=True)]
            fan_in = width
        self.features = nn.Sequential(*layers)
        self.head = Projection(fan_in, cfg.num_classes)

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x), label)


SPEC = Architecture(
    name="gan",
    generator=MLPGenerator,
    discriminator=MLPDiscriminator,
    image_size_ok=lambda size: size > 0,
    image_size_error="image size must be positive, got {size}",
    g_conditioning="cbn",  # measured: a label joined to z collapsed each class to one image (layers.py)
    channels_last=False,  # no convolutions: the memory format changes nothing
)
