"""Layers every architecture shares: the label paths into G, D's projection head, and the DCGAN weight init.

Conditioning: G takes the label through class-conditional BatchNorm (each BatchNorm's gain and bias looked up
per class, z alone feeds the first layer; see ConditionalBatchNorm for why not a label joined to z) or, with
g_conditioning "concat", through a label embedding joined to z (LabelJoin); D uses a projection head (Miyato &
Koyama 2018): logit = w·h + embed(label)·h on its last features h.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # annotations only: the config validates against the registry, so it imports this package
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
        if isinstance(m, Projection) and m.embed is not None:
            # D's projection sums embed(y)·h over thousands of features: at N(0, 1) the initial logits would be
            # ~sqrt(F) large and BCE would start saturated; start it on the linear head's scale instead.
            nn.init.normal_(m.embed.weight, 0.0, 0.02)


def spectrally_normed(d: nn.Module) -> nn.Module:
    """D with spectral normalisation (Miyato et al. 2018), in place: each Conv2d, Linear and Embedding weight is
    divided by its largest singular value (one power iteration per training forward), and D's BatchNorms become
    identities, as in SN-GAN's D: batch statistics rescale each layer by the batch it sees, which undoes the
    per-layer Lipschitz bound the normalisation exists for. Call after init_weights: the parametrization then
    normalises the DCGAN-initialised weights.
    """
    from torch.nn.utils.parametrizations import spectral_norm

    for parent in list(d.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
                setattr(parent, name, nn.Identity())
            elif isinstance(child, (nn.Conv2d, nn.Linear, nn.Embedding)):
                spectral_norm(child)
    return d


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


class LabelledSequential(nn.Sequential):
    """nn.Sequential that hands the label to its ConditionalBatchNorm layers."""

    def forward(self, h: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            h = layer(h, label) if isinstance(layer, ConditionalBatchNorm) else layer(h)
        return h


def joins_label(cfg: ModelConfig) -> bool:
    """True for the legacy conditional G that joins a label embedding to z."""
    return bool(cfg.num_classes) and cfg.conditioning == "concat"


def g_norm(cfg: ModelConfig, features: int, dims: int) -> nn.Module:
    """G's normalisation: BatchNorm, or ConditionalBatchNorm for a conditional G (g_conditioning="cbn")."""
    if cfg.num_classes and cfg.conditioning == "cbn":
        return ConditionalBatchNorm(features, cfg.num_classes, dims)
    return nn.BatchNorm2d(features) if dims == 2 else nn.BatchNorm1d(features)


class LabelJoin(nn.Module):
    """(z [B, nz], label [B]) -> [B, nz + embed] for the legacy concat G; identity otherwise."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        joined = joins_label(cfg)
        self.embed = nn.Embedding(cfg.num_classes, cfg.label_embed_dim) if joined else None
        self.out_features = cfg.nz + (cfg.label_embed_dim if joined else 0)
        self.conditional = bool(cfg.num_classes)

    def forward(self, z: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        if self.conditional and label is None:
            raise ValueError("this generator is class-conditional: pass labels")
        if self.embed is None:
            return z
        return torch.cat([z, self.embed(label).to(z.dtype)], dim=1)


class Projection(nn.Module):
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
