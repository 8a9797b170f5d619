"""GAN losses on raw discriminator logits [B]. Each splits into real/fake parts so D can backprop them apart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GANLoss:
    d_real: Loss  # D's loss on real logits
    d_fake: Loss  # D's loss on generated logits
    g: Loss  # G's loss on D's logits for generated images


def _bce(target: float) -> Loss:
    # BCE-with-logits against a constant target, without materialising a target tensor per step.
    if target == 1.0:
        return lambda logits: F.softplus(-logits).mean()
    return lambda logits: F.softplus(logits).mean()


LOSSES: dict[str, GANLoss] = {
    # Non-saturating BCE (Goodfellow 2014, as used by DCGAN): G maximises log D(G(z)).
    "bce": GANLoss(d_real=_bce(1.0), d_fake=_bce(0.0), g=_bce(1.0)),
    # Hinge (Lim & Ye 2017; Miyato et al. 2018).
    "hinge": GANLoss(
        d_real=lambda logits: F.relu(1.0 - logits).mean(),
        d_fake=lambda logits: F.relu(1.0 + logits).mean(),
        g=lambda logits: -logits.mean(),
    ),
    # Least squares (Mao et al. 2017), 0/1 targets; the 1/2 factors of the paper.
    "lsgan": GANLoss(
        d_real=lambda logits: 0.5 * (logits - 1.0).pow(2).mean(),
        d_fake=lambda logits: 0.5 * logits.pow(2).mean(),
        g=lambda logits: 0.5 * (logits - 1.0).pow(2).mean(),
    ),
}


def get_loss(name: str) -> GANLoss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
