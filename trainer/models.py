"""GAN (Goodfellow et al. 2014) and DCGAN (Radford et al. 2015) generators and discriminators.

Pure modules: torch only, explicit ModelConfig, no I/O. Every generator maps (z [B, nz], label [B] | None)
to images [B, C, H, W] in [-1, 1]; every discriminator maps (x, label | None) to logits [B].
Conditioning: G joins a label embedding to z; D uses a projection head (Miyato & Koyama 2018):
logit = w·h + embed(label)·h on its last features h.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from trainer.config import ModelConfig


def init_weights(module: nn.Module) -> None:
    """DCGAN init: conv/linear weights ~ N(0, 0.02); BatchNorm gamma ~ N(1, 0.02), beta = 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)  # G's label embedding: on the scale of z
    for m in module.modules():
        if isinstance(m, _Projection) and m.embed is not None:
            # D's projection sums embed(y)·h over thousands of features: at N(0, 1) the initial logits would be
            # ~sqrt(F) large and BCE would start saturated; start it on the linear head's scale instead.
            nn.init.normal_(m.embed.weight, 0.0, 0.02)


class _LabelJoin(nn.Module):
    """(z [B, nz], label [B]) -> [B, nz + embed] for conditional G; identity for unconditional G."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.num_classes, cfg.label_embed_dim) if cfg.num_classes else None
        self.out_features = cfg.nz + (cfg.label_embed_dim if cfg.num_classes else 0)

    def forward(self, z: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None:
            return z
        if label is None:
            raise ValueError("this generator is class-conditional: pass labels")
        return torch.cat([z, self.embed(label).to(z.dtype)], dim=1)


class _Projection(nn.Module):
    """Discriminator head: features h [B, F] -> logits [B], plus embed(label)·h when conditional."""

    def __init__(self, features: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features) if num_classes else None

    def forward(self, h: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        logit = self.linear(h).squeeze(1)
        if self.embed is not None:
            if label is None:
                raise ValueError("this discriminator is class-conditional: pass labels")
            logit = logit + (self.embed(label).to(h.dtype) * h).sum(dim=1)
        return logit


class MLPGenerator(nn.Module):
    """Goodfellow-style MLP: z -> 4w -> 8w -> 16w (256, 512, 1024 at w=64) -> C*H*W, tanh."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.join = _LabelJoin(cfg)
        widths = [cfg.width * 4, cfg.width * 8, cfg.width * 16]
        layers: list[nn.Module] = []
        fan_in = self.join.out_features
        for width in widths:
            layers += [nn.Linear(fan_in, width), nn.BatchNorm1d(width), nn.LeakyReLU(0.2, inplace=True)]
            fan_in = width
        layers += [nn.Linear(fan_in, cfg.channels * cfg.image_size**2), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        c, s = self.cfg.channels, self.cfg.image_size
        return self.net(self.join(z, label)).view(-1, c, s, s)  # [B, C, H, W]


class MLPDiscriminator(nn.Module):
    """x [B, C, H, W] -> 16w -> 8w -> 4w (LeakyReLU 0.2) -> logit."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        widths = [cfg.width * 16, cfg.width * 8, cfg.width * 4]
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = cfg.channels * cfg.image_size**2
        for width in widths:
            layers += [nn.Linear(fan_in, width), nn.LeakyReLU(0.2, inplace=True)]
            fan_in = width
        self.features = nn.Sequential(*layers)
        self.head = _Projection(fan_in, cfg.num_classes)

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x), label)


def _dcgan_plan(cfg: ModelConfig) -> tuple[int, list[int]]:
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
        self.join = _LabelJoin(cfg)
        start, ladder = _dcgan_plan(cfg)
        # z [B, nz(+e), 1, 1] -> [B, ladder[0], start, start]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(self.join.out_features, ladder[0], start, 1, 0, bias=False),
            nn.BatchNorm2d(ladder[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(ladder, ladder[1:]):  # each doubles H and W
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ladder[-1], cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        h = self.join(z, label)
        return self.net(h.view(h.shape[0], h.shape[1], 1, 1))  # [B, C, H, W]


class DCGANDiscriminator(nn.Module):
    """Strided Conv2d + LeakyReLU(0.2), BatchNorm on all but the first layer, then a linear/projection head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        start, g_ladder = _dcgan_plan(cfg)
        # w, 2w, 4w, ... as in pytorch/examples (ndf first); the mirror of G's ladder at sizes 2^k, and at 28x28
        # w -> 2w rather than G's 4w/2w (a 4x larger D bought no quality and cost 4x the D multiply-adds).
        ladder = [cfg.width * 2**i for i in range(len(g_ladder))]
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, ladder[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(ladder, ladder[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Flatten())  # [B, widest * start * start]
        self.features = nn.Sequential(*layers)
        # The head is the paper's final convolution over the start x start map, written as a Linear so a
        # conditional projection can share its features.
        self.head = _Projection(ladder[-1] * start * start, cfg.num_classes)

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x), label)


def build_generator(cfg: ModelConfig) -> nn.Module:
    cfg.validate()
    model = DCGANGenerator(cfg) if cfg.arch == "dcgan" else MLPGenerator(cfg)
    init_weights(model)
    return model


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    cfg.validate()
    model = DCGANDiscriminator(cfg) if cfg.arch == "dcgan" else MLPDiscriminator(cfg)
    init_weights(model)
    return model
