"""A cheap diversity figure of a run's fixed-seed samples, so a generator that collapses says so while it trains.

A conditional GAN that ignores z draws one image per class: the loss curves and the sample grid's labels look
fine, and a glance at the grid can miss that every 3 is the same 3. Each epoch (and at each checkpoint) the run
measures, per class, how far apart G's images for different latents are, and compares that with real training
images of the class:

    spread(X) = mean over pairs i != j of |s(x_i) - s(x_j)|_2 / sqrt(C * H * W)

where s() standardises an image (zero mean, unit RMS over its pixels): the RMS pixel difference of two images
of the class, blind to overall brightness and contrast. G's figure uses fixed latents
(`draw_latents(PER_CLASS * K, nz, sample_seed)`, PER_CLASS per class; UNCONDITIONAL_N for an unconditional G),
the real figure up to REAL_PER_CLASS training images per class, drawn once per run. ratio = G's / real's: about
1 for a generator as varied as the data, 0 when every image of a class is the same image.

The figure is pixel-space and cheap (one forward pass of ~10 x 8 images); `edgegan eval` measures the same idea
properly, on evaluator features with recall beside it (runtime/evaluation/per_class.py).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edgegan.trainer.sample import generate_images

PER_CLASS = 8  # latents per class: 28 pairs, enough to tell 0.03 from 0.7
UNCONDITIONAL_N = 32  # latents for an unconditional G: 496 pairs
REAL_PER_CLASS = 128  # real images per class for the reference figure (the mean over pairs is unbiased at any n)
REAL_SEED = 0
# Warn below this ratio. Measured on MNIST, 8 images per class against the real reference: real digits 0.86-1.09;
# real digits blurred twice with a 3x3 box 0.63-0.95, at 30% contrast 0.85-1.16, under sigma-80 noise 1.1-1.4;
# two distinct digits per class 0.32-0.78; one digit per class (G ignores z) 0.000, 0.08-0.12 with sigma-8 pixel
# noise on it, 0.25-0.38 with sigma-25 noise. A freshly initialised G (faint, but z-dependent) scores ~1.
COLLAPSE_RATIO = 0.25


def spread(images: np.ndarray | torch.Tensor) -> float:
    """Mean pairwise L2 distance of a set of images [N, ...] after each image is standardised (zero mean, unit
    RMS over its pixels), divided by sqrt(pixels per image); N >= 2.

    Standardising makes the figure about structure, not contrast: a young G whose images are faint (all near
    grey) but differ from z to z is not collapsed, and scores like a bright one. Two standardised images with
    pixel correlation rho are sqrt(2 (1 - rho)) apart per sqrt(pixel): 0 for copies, ~1.4 for unrelated noise.
    """
    x = torch.as_tensor(images).detach().reshape(len(images), -1).to("cpu", torch.float64)
    if len(x) < 2:
        raise ValueError(f"the spread of a set needs >= 2 images, got {len(x)}")
    x = x - x.mean(dim=1, keepdim=True)
    x = x / x.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-6)  # a flat image stays 0, not NaN
    x = x - x.mean(dim=0)  # distances unchanged; keeps cdist's |a|^2 + |b|^2 - 2ab exact for near-duplicates
    d = torch.cdist(x, x)  # [N, N], zero diagonal
    return float(d.sum() / (len(x) * (len(x) - 1)) / np.sqrt(x.shape[1]))


def real_spread(
    images: np.ndarray,
    labels: np.ndarray | None,
    num_classes: int,
    per_class: int = REAL_PER_CLASS,
    seed: int = REAL_SEED,
) -> list[float]:
    """Reference spread of real training images: one figure per class (conditional), or one overall.

    Args:
        images: uint8 [N, H, W, C] (edgegan.runtime.evaluation.datasets layout).
        labels: int [N], needed when num_classes > 0.
        num_classes: 0 for an unconditional model.
        per_class: images per class taken (a seeded subset when a class has more).

    Returns:
        [K] spreads (K = max(num_classes, 1)); NaN for a class with fewer than 2 images.
    """
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(images))] if not num_classes else [np.flatnonzero(labels == k) for k in range(num_classes)]
    out = []
    for index in groups:
        if len(index) < 2:
            out.append(float("nan"))
            continue
        take = max(per_class, UNCONDITIONAL_N) if not num_classes else per_class
        if len(index) > take:
            index = np.sort(rng.choice(index, take, replace=False))
        x = images[index].astype(np.float32) / 127.5 - 1.0  # the trainer's [-1, 1] pixels
        out.append(spread(x))
    return out


@torch.no_grad()
def sample_spread(
    G: nn.Module, nz: int, num_classes: int, device: torch.device | str, seed: int = 0, per_class: int = PER_CLASS
) -> list[float]:
    """G's spread on fixed latents: one figure per class (conditional) or one overall, G in eval mode.

    Args:
        G: a generator, G(z [B, nz], labels [B] | None) -> [B, C, H, W].
        nz, num_classes: its latent size and classes (0: unconditional).
        seed: latent seed (the run's sample_seed: the same latents every epoch).
        per_class: latents per class.
    """
    k = max(num_classes, 1)
    n = per_class * k if num_classes else UNCONDITIONAL_N
    labels = np.repeat(np.arange(k), per_class) if num_classes else None  # [n]: class 0 x per_class, 1, ...
    images = generate_images(G, n, seed, labels, device, nz=nz, num_classes=num_classes)  # [n, C, H, W]
    if not num_classes:
        return [spread(images)]
    return [spread(images[labels == c]) for c in range(k)]


@dataclass
class Diversity:
    """G's sample spread against real data's: `ratio` is the mean over classes of generated / real."""

    ratio: float
    per_class: list[float]  # generated / real per class ([one] for an unconditional G)
    generated: list[float]
    real: list[float]

    def collapsed(self, threshold: float = COLLAPSE_RATIO) -> list[int]:
        """Classes whose ratio is below `threshold` (index 0 stands for the whole set when unconditional)."""
        return [k for k, r in enumerate(self.per_class) if np.isfinite(r) and r < threshold]

    def metrics(self) -> dict[str, float | list[float]]:
        """The metrics.jsonl keys: diversity (mean ratio), diversity_min, diversity_per_class."""
        finite = [r for r in self.per_class if np.isfinite(r)]
        return {
            "diversity": self.ratio,
            "diversity_min": min(finite) if finite else float("nan"),
            "diversity_per_class": [round(r, 4) for r in self.per_class],
        }


def sample_diversity(
    G: nn.Module,
    nz: int,
    num_classes: int,
    device: torch.device | str,
    real: list[float],
    seed: int = 0,
    per_class: int = PER_CLASS,
) -> Diversity:
    """G's sample spread (`sample_spread`) divided by the real spread (`real_spread`) per class.

    Example:
        >>> real = real_spread(data.images, data.labels, 10)                          # doctest: +SKIP
        >>> sample_diversity(G, 100, 10, "cpu", real).collapsed()                       # doctest: +SKIP
        [3, 7]
    """
    generated = sample_spread(G, nz, num_classes, device, seed, per_class)
    ratios = [g / r if r > 0 else float("nan") for g, r in zip(generated, real)]
    finite = [r for r in ratios if np.isfinite(r)]
    return Diversity(float(np.mean(finite)) if finite else float("nan"), ratios, generated, list(real))


class DiversityMonitor:
    """What the training loop calls: measure at a step, log, warn on collapse, and give the metrics row's keys.

    Args:
        cfg: the run's TrainConfig (model.nz, model.num_classes, sample_seed).
        data: the training ImageData (the real reference is measured here, once).
        device: where G runs.
        log: train.log writer.
        bar: the run's edgegan.runtime.progress.Progress, or None; a warning is printed above it, not through it.
        enabled: False on the ranks that do not write (DDP): every call is then a no-op.
    """

    def __init__(
        self, cfg, data, device: torch.device | str, log: Callable[[str], None], bar=None, enabled: bool = True
    ):
        self.cfg, self.device, self.log, self.bar, self.enabled = cfg, device, log, bar, enabled
        self.real = real_spread(data.images, data.labels, cfg.model.num_classes) if enabled else []
        self.class_names = list(getattr(cfg, "class_names", []) or [])
        self._last: tuple[int, Diversity] | None = None

    def measure(self, G: nn.Module, step: int) -> dict:
        """Measure at `step` (once: a second call at the same step returns the same figure), write train.log,
        warn when a class collapses, and return the metrics keys ({} when disabled)."""
        if not self.enabled:
            return {}
        if self._last is None or self._last[0] != step:
            m = self.cfg.model
            div = sample_diversity(G, m.nz, m.num_classes, self.device, self.real, self.cfg.sample_seed)
            self._last = (step, div)
            self._report(div, step)
        return self._last[1].metrics()

    def _name(self, k: int) -> str:
        if not self.cfg.model.num_classes:
            return "the samples"
        name = self.class_names[k] if k < len(self.class_names) else str(k)
        return f"class {k}" if name == str(k) else f"class {k} ({name})"

    def _report(self, div: Diversity, step: int) -> None:
        per = " ".join(f"{r:.2f}" for r in div.per_class)
        self.log(f"diversity at step {step}: {div.ratio:.3f} of real (per class: {per})")
        collapsed = div.collapsed()
        if not collapsed:
            return
        worst = min(collapsed, key=lambda k: div.per_class[k])
        what = ", ".join(self._name(k) for k in collapsed)
        subject = "samples are" if not self.cfg.model.num_classes else f"samples of {what} are"
        message = (
            f"mode collapse at step {step}: {subject} nearly identical (diversity "
            f"{div.per_class[worst]:.2f} of real, warns below {COLLAPSE_RATIO:g}); G is ignoring z"
        )
        self.log(message)
        # On a terminal the bar is cleared while the warning prints, then redrawn below it.
        with self.bar.paused() if self.bar is not None else contextlib.nullcontext():
            warnings.warn(message, RuntimeWarning, stacklevel=3)
