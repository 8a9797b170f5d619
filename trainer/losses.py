"""GAN losses on raw discriminator logits [B]. Each splits into real/fake parts so D can backprop them apart.

Top-k training (Sinha et al., NeurIPS 2020, "Top-k Training of GANs: Improving GAN Performance by Throwing Away
Bad Samples"): G's loss averages over only the k fakes D rates most real, so G is not pulled towards the fakes D
already rejects (on MNIST, samples between two digits: a gradient towards "a more plausible in-between" there
drags nearby samples off the data). `GANLoss.g_top_k` is that loss; `top_k_fraction` anneals the kept fraction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor], torch.Tensor]  # logits [B] -> per-sample losses [B]

#: Steps over which the kept fraction falls linearly from 1.0 to `top_k`. The paper multiplies it by gamma = 0.99
#: each epoch down to a floor nu; early D scores carry no information (D has not yet learnt what real looks
#: like, so its ranking of fakes is noise), so the filter starts open and closes as D learns.
TOP_K_ANNEAL_STEPS = 1000


@dataclass(frozen=True)
class GANLoss:
    """Per-sample losses; d_real, d_fake and g average them over the batch."""

    real: Loss  # D's loss on real logits
    fake: Loss  # D's loss on generated logits
    gen: Loss  # G's loss on D's logits for generated images

    def d_real(self, logits: torch.Tensor) -> torch.Tensor:
        return self.real(logits).mean()

    def d_fake(self, logits: torch.Tensor) -> torch.Tensor:
        return self.fake(logits).mean()

    def g(self, logits: torch.Tensor) -> torch.Tensor:
        return self.gen(logits).mean()

    def g_top_k(self, logits: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
        """G's loss over the k = max(1, ceil(fraction * B)) fakes with the highest logits [B].

        `fraction` is a float64 scalar tensor on the logits' device, not a float: a CUDA graph that captured this
        step reads each step's value from its address (a float would be frozen at capture). Hence a mask over the
        sorted logits rather than `topk(logits, k)`, whose k must be a host int; the same value either way.
        float64 so that ceil(fraction * B) is exactly the host's max(1, math.ceil(fraction * B)).
        """
        batch = logits.shape[0]
        k = torch.ceil(fraction * batch).clamp(min=1)  # float64 [], a whole number
        ranked = logits.sort(descending=True).values  # [B], most real first
        keep = torch.arange(batch, device=logits.device) < k  # [B] bool: the first k
        return (self.gen(ranked) * keep).sum() / k.to(logits.dtype)


def top_k_fraction(top_k: float, step: int) -> float:
    """The fraction of fakes G's loss keeps at 0-based `step`: 1.0 at step 0, falling linearly to `top_k` at
    TOP_K_ANNEAL_STEPS and `top_k` from there on."""
    return 1.0 - (1.0 - top_k) * min(step, TOP_K_ANNEAL_STEPS) / TOP_K_ANNEAL_STEPS


LOSSES: dict[str, GANLoss] = {
    # Non-saturating BCE (Goodfellow 2014, as used by DCGAN): G maximises log D(G(z)). BCE-with-logits against a
    # constant target is softplus(-logit) (target 1) or softplus(logit) (target 0), with no target tensor.
    "bce": GANLoss(real=lambda logits: F.softplus(-logits), fake=F.softplus, gen=lambda logits: F.softplus(-logits)),
    # Hinge (Lim & Ye 2017; Miyato et al. 2018).
    "hinge": GANLoss(
        real=lambda logits: F.relu(1.0 - logits),
        fake=lambda logits: F.relu(1.0 + logits),
        gen=lambda logits: -logits,
    ),
    # Least squares (Mao et al. 2017), 0/1 targets; the 1/2 factors of the paper.
    "lsgan": GANLoss(
        real=lambda logits: 0.5 * (logits - 1.0).pow(2),
        fake=lambda logits: 0.5 * logits.pow(2),
        gen=lambda logits: 0.5 * (logits - 1.0).pow(2),
    ),
}


def get_loss(name: str) -> GANLoss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
