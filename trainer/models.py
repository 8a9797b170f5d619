"""GAN (Goodfellow et al. 2014) and DCGAN (Radford et al. 2015) generators and discriminators.

Pure modules: torch only, explicit ModelConfig, no I/O. Every generator maps (z [B, nz], label [B] | None)
to images [B, C, H, W] in [-1, 1]; every discriminator maps (x, label | None) to logits [B].
Conditioning: G takes the label through class-conditional BatchNorm (each BatchNorm's gain and bias looked up
per class, z alone feeds the first layer; see ConditionalBatchNorm for why not a label joined to z); D uses a
projection head (Miyato & Koyama 2018): logit = w·h + embed(label)·h on its last features h.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from edgegan.trainer.config import ModelConfig


def init_weights(module: nn.Module) -> None:
    """DCGAN init: conv/linear weights ~ N(0, 0.02); BatchNorm gamma ~ N(1, 0.02), beta = 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)  # G's label embedding: on the scale of z
    for m in module.modules():
        if isinstance(m, ConditionalBatchNorm):  # gain 1 + N(0, 0.02) per class as DCGAN's BatchNorm, bias 0
            nn.init.normal_(m.gain.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias.weight)
        if isinstance(m, _Projection) and m.embed is not None:
            # D's projection sums embed(y)·h over thousands of features: at N(0, 1) the initial logits would be
            # ~sqrt(F) large and BCE would start saturated; start it on the linear head's scale instead.
            nn.init.normal_(m.embed.weight, 0.0, 0.02)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without an affine of its own, then a gain and a bias per class (de Vries et al. 2017, as in the
    projection-discriminator cGANs): h [B, C, ...] -> BN(h) * (1 + gain[label]) + bias[label].

    The conditional MLP G's label path (g_conditioning "cbn", the default for arch gan). Why: a label embedding
    joined to z collapses. The label is shared by a whole class, so its weights get a coherent gradient while z's
    averages out; the label's share of the first layer's variance grows, and the BatchNorm after it, normalising
    by batch statistics, shrinks z's share until G ignores z within a class. Here z alone feeds the first layer
    and each BatchNorm normalises z's variation before the label rescales and shifts it. Measured on MNIST
    (conditional, 1,000-1,500 steps, benchmarks/results/conditional_collapse/): MLP G with the joined label:
    within-class spread 0.17 of real images', one image per class; with this: 0.85, every row its digit. The
    DCGAN G keeps the joined label (its first layer draws a per-class 7x7 template this cannot): with this its
    samples ignored the label at 1,000 steps; the mode-seeking term in trainer/step.py keeps its z alive instead.
    """

    def __init__(self, num_features: int, num_classes: int, dims: int):
        super().__init__()
        self.norm = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)

    def forward(self, h: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        if label is None:
            raise ValueError("this generator is class-conditional: pass labels")
        shape = (h.shape[0], h.shape[1]) + (1,) * (h.dim() - 2)  # [B, C] -> [B, C, 1, 1] for conv features
        gain = 1.0 + self.gain(label).to(h.dtype).view(shape)
        return self.norm(h) * gain + self.bias(label).to(h.dtype).view(shape)


class _LabelledSequential(nn.Sequential):
    """nn.Sequential that hands the label to its ConditionalBatchNorm layers."""

    def forward(self, h: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            h = layer(h, label) if isinstance(layer, ConditionalBatchNorm) else layer(h)
        return h


def _label_input(cfg: ModelConfig) -> bool:
    """True for the legacy conditional G that joins a label embedding to z."""
    return bool(cfg.num_classes) and cfg.conditioning == "concat"


def _norm(cfg: ModelConfig, features: int, dims: int) -> nn.Module:
    """G's normalisation: BatchNorm, or ConditionalBatchNorm for a conditional G (g_conditioning="cbn")."""
    if cfg.num_classes and cfg.conditioning == "cbn":
        return ConditionalBatchNorm(features, cfg.num_classes, dims)
    return nn.BatchNorm2d(features) if dims == 2 else nn.BatchNorm1d(features)


class _LabelJoin(nn.Module):
    """(z [B, nz], label [B]) -> [B, nz + embed] for the legacy concat G; identity otherwise."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        joined = _label_input(cfg)
        self.embed = nn.Embedding(cfg.num_classes, cfg.label_embed_dim) if joined else None
        self.out_features = cfg.nz + (cfg.label_embed_dim if joined else 0)
        self.conditional = bool(cfg.num_classes)

    def forward(self, z: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        if self.conditional and label is None:
            raise ValueError("this generator is class-conditional: pass labels")
        if self.embed is None:
            return z
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
            layers += [nn.Linear(fan_in, width), _norm(cfg, width, 1), nn.LeakyReLU(0.2, inplace=True)]
            fan_in = width
        layers += [nn.Linear(fan_in, cfg.channels * cfg.image_size**2), nn.Tanh()]
        self.net = _LabelledSequential(*layers)

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        c, s = self.cfg.channels, self.cfg.image_size
        return self.net(self.join(z, label), label).view(-1, c, s, s)  # [B, C, H, W]


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
            _norm(cfg, ladder[0], 2),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(ladder, ladder[1:]):  # each doubles H and W
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), _norm(cfg, c_out, 2), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ladder[-1], cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = _LabelledSequential(*layers)

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        h = self.join(z, label)
        return self.net(h.view(h.shape[0], h.shape[1], 1, 1), label)  # [B, C, H, W]


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
