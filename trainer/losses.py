"""GAN losses on raw discriminator logits [B]. Each splits into real/fake parts so D can backprop them apart.

Top-k training (Sinha et al., NeurIPS 2020, "Top-k Training of GANs: Improving GAN Performance by Throwing Away
Bad Samples"): G's loss averages over only the k fakes D rates most real, so G is not pulled towards the fakes D
already rejects (on MNIST, samples between two digits: a gradient towards "a more plausible in-between" there
drags nearby samples off the data). `GANLoss.g_top_k` is that loss; `top_k_fraction` anneals the kept fraction.

Relativistic average losses (Jolicoeur-Martineau 2018, "The relativistic discriminator: a key element missing from
standard GAN", arXiv 1807.00734, Algorithm 2): D estimates how much more realistic a real image is than the
average fake, and the other way round. With C the raw logits, f1 and f2 the plain loss's real and fake terms:
  D: f1(C(x_r) - mean C(x_f)) + f2(C(x_f) - mean C(x_r))
  G: f1(C(x_f) - mean C(x_r)) + f2(C(x_r) - mean C(x_f))
each term a batch mean; rasgan takes f1, f2 = softplus(-t), softplus(t) (bce's), rahinge relu(1 - t), relu(1 + t)
(hinge's). Each side's loss reads both logit sets, so these GANLoss's have no `gen` and are called
through `d` and `g` with both (`d_real` / `d_fake` alone refuse them).
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
    """Per-sample losses; d_real, d_fake and g average them over the batch.

    gen None: a relativistic average loss (module docstring, `relativistic`): `real` and `fake` are f1 and f2,
    applied to differences from the other set's mean, and `d` and `g` need both logit sets.
    to_prob: what the step statistics D(x) and D(G(z)) show, from logits (`scores`): sigmoid where the logit is a
    log-odds (bce; rasgan, of the relative logit), None for raw scores (hinge, lsgan; rahinge, relative).
    """

    real: Loss  # D's loss on real logits (relativistic: f1)
    fake: Loss  # D's loss on generated logits (relativistic: f2)
    gen: Loss | None  # G's loss on D's logits for generated images; None: relativistic (G's loss is D's, roles swapped)
    to_prob: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def relativistic(self) -> bool:
        return self.gen is None

    def _plain(self, what: str) -> None:
        if self.relativistic:
            raise ValueError(f"a relativistic loss reads both logit sets: call {what} with real and fake logits")

    def d_real(self, logits: torch.Tensor) -> torch.Tensor:
        self._plain("d(real, fake)")
        return self.real(logits).mean()

    def d_fake(self, logits: torch.Tensor) -> torch.Tensor:
        self._plain("d(real, fake)")
        return self.fake(logits).mean()

    def d(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's loss as its (real, fake) terms, whose sum D minimises; real, fake: logits [B] (any batch sizes).

        Plain: d_real(real), d_fake(fake). Relativistic: f1(C_r - mean C_f), f2(C_f - mean C_r), batch means."""
        if not self.relativistic:
            return self.d_real(real), self.d_fake(fake)
        return self.real(real - fake.mean()).mean(), self.fake(fake - real.mean()).mean()

    def g(self, logits: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        """G's loss from D's logits [B] for the fakes; a relativistic loss also reads D's logits `real` [B'] for
        real images: f1(C_f - mean C_r) + f2(C_r - mean C_f), batch means."""
        if self.gen is not None:
            return self.gen(logits).mean()
        as_real, as_fake = self.d(logits, self._need_real(real))  # D's loss with the fakes in the reals' place
        return as_real + as_fake

    def _need_real(self, real: torch.Tensor | None) -> torch.Tensor:
        if real is None:
            raise ValueError("a relativistic G loss reads D's logits for the real batch too: pass real=")
        return real

    def g_top_k(self, logits: torch.Tensor, fraction: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        """G's loss over the k = max(1, ceil(fraction * B)) fakes with the highest logits [B].

        `fraction` is a float64 scalar tensor on the logits' device, not a float: a CUDA graph that captured this
        step reads each step's value from its address (a float would be frozen at capture). Hence a mask over the
        sorted logits rather than `topk(logits, k)`, whose k must be a host int; the same value either way.
        float64 so that ceil(fraction * B) is exactly the host's max(1, math.ceil(fraction * B)).

        Relativistic (`real`: D's logits [B'] for the real batch): `g` as if the batch's fakes were only the k
        kept ones, so both terms see them alone: f1 averaged over the kept fakes against mean C_r, and f2 over the
        reals against the kept fakes' mean. At fraction 1 it is `g`.
        """
        batch = logits.shape[0]
        k = torch.ceil(fraction * batch).clamp(min=1)  # float64 [], a whole number
        ranked = logits.sort(descending=True).values  # [B], most real first
        keep = torch.arange(batch, device=logits.device) < k  # [B] bool: the first k
        count = k.to(logits.dtype)
        if self.gen is not None:
            return (self.gen(ranked) * keep).sum() / count
        real = self._need_real(real)
        kept_mean = (ranked * keep).sum() / count  # mean C_f over the kept fakes
        return (self.real(ranked - real.mean()) * keep).sum() / count + self.fake(real - kept_mean).mean()

    def scores(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The step statistics D(x) and D(G(z)) from D's logits [B] for real and fake images: batch means of
        to_prob(logits), or of the raw logits without to_prob.

        Relativistic: of the relative logits C_r - mean C_f and C_f - mean C_r, the only part of the logits the
        loss sees (adding a constant to every logit changes neither loss, so the raw means wander: -8.5 / -9.8 at
        step 1,600 of a rahinge Fashion-MNIST run). rasgan: sigmoid of them, the paper's D~(x_r) and D~(x_f), the
        probability that a real is more realistic than the average fake and the other way round; rahinge: D's
        margin mean C_r - mean C_f and its negative (hinge's target margin is 1)."""
        if self.relativistic:
            real, fake = real - fake.mean(), fake - real.mean()
        if self.to_prob is None:
            return real.mean(), fake.mean()
        return self.to_prob(real).mean(), self.to_prob(fake).mean()


def top_k_fraction(top_k: float, step: int) -> float:
    """The fraction of fakes G's loss keeps at 0-based `step`: 1.0 at step 0, falling linearly to `top_k` at
    TOP_K_ANNEAL_STEPS and `top_k` from there on."""
    return 1.0 - (1.0 - top_k) * min(step, TOP_K_ANNEAL_STEPS) / TOP_K_ANNEAL_STEPS


LOSSES: dict[str, GANLoss] = {
    # Non-saturating BCE (Goodfellow 2014, as used by DCGAN): G maximises log D(G(z)). BCE-with-logits against a
    # constant target is softplus(-logit) (target 1) or softplus(logit) (target 0), with no target tensor.
    "bce": GANLoss(
        real=lambda logits: F.softplus(-logits),
        fake=F.softplus,
        gen=lambda logits: F.softplus(-logits),
        to_prob=torch.sigmoid,
    ),
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
    # Relativistic average standard GAN and hinge (Jolicoeur-Martineau 2018, Algorithm 2): f1, f2 are bce's and
    # hinge's real and fake terms, applied to C(x) minus the other set's mean logit (GANLoss.d, GANLoss.g).
    "rasgan": GANLoss(
        real=lambda t: F.softplus(-t),
        fake=F.softplus,
        gen=None,
        to_prob=torch.sigmoid,
    ),
    "rahinge": GANLoss(
        real=lambda t: F.relu(1.0 - t),
        fake=lambda t: F.relu(1.0 + t),
        gen=None,
    ),
}


def get_loss(name: str) -> GANLoss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
