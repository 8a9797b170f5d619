"""Truncated and interpolated latents, and the checks of a Generator's counts, seeds, truncation and latents.

The plain latent rule itself is the contract's `draw_latents`; numpy only."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgegan.runtime.contract import LATENT_RULE, LATENT_RULE_NUMPY, LATENT_RULES
from edgegan.runtime.errors import GeneratorInputError
from edgegan.runtime.latent_rule import rule_truncated
from edgegan.runtime.sample_result import fresh_seed

__all__ = [
    "truncated_latents",
    "slerp",
    "check_count",
    "check_seed",
    "check_truncation",
    "check_latents",
    "MIN_TRUNCATION",
]

MIN_TRUNCATION = 0.01


def truncated_latents(n: int, nz: int, seed: int | None, truncation: float, rule: str = LATENT_RULE) -> np.ndarray:
    """The contract latents with the truncation trick (BigGAN, Brock et al. 2019): every |z| <= truncation.

    LATENT_RULE (default): entries of `draw_latents(n, nz, seed)` with |z| > float32(truncation) take the rule's next
    attempt until inside (runtime/latent_rule.py: rule_truncated; each entry on its own, the same in any language).

    LATENT_RULE_NUMPY (models exported before it), exactly: rng = np.random.default_rng(seed);
    z = rng.standard_normal((n, nz), dtype=float32), which is `draw_latents(n, nz, seed, LATENT_RULE_NUMPY)`; then, while some entries have |z| > truncation, those entries (in row-major
    order) are replaced by `rng.standard_normal(count, dtype=float32)` from the same rng, continuing its stream.
    Entries already within the threshold keep their untruncated value, and one seed always gives the same
    latents (whatever the batch size used later).

    Args:
        n: number of latents.
        nz: latent size.
        seed: the seed (None: fresh entropy, not reproducible).
        truncation: threshold t >= MIN_TRUNCATION (0.01; below it almost every entry would be redrawn hundreds
            of times, and all images collapse to G(0) anyway).
        rule: the model's latent rule (GeneratorContract.latent_rule).

    Returns:
        float32 [n, nz] with every |entry| <= truncation.
    """
    check_truncation(truncation)
    check_count(n)
    if rule != LATENT_RULE_NUMPY:
        if rule not in LATENT_RULES:
            raise GeneratorInputError(f"unknown latent rule {rule!r}; this runtime knows {', '.join(LATENT_RULES)}")
        return rule_truncated(fresh_seed() if seed is None else seed, 0, n, nz, truncation)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, nz), dtype=np.float32)  # [n, nz], identical to draw_latents(n, nz, seed)
    threshold = np.float32(truncation)
    outside = np.abs(z) > threshold
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()), dtype=np.float32)
        outside = np.abs(z) > threshold
    return z


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation from latent a to latent b (both [nz]) in `steps` points, ends included.

    z(t) = sin((1 - t) w) / sin(w) * a + sin(t w) / sin(w) * b, with w the angle between a and b, computed in
    float64; nearly parallel latents (sin w < 1e-6) fall back to linear interpolation. The end points are a and
    b exactly.

    Returns:
        float32 [steps, nz].
    """
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]  # [steps, 1]
    cos = np.dot(a64, b64) / max(np.linalg.norm(a64) * np.linalg.norm(b64), 1e-12)
    omega = math.acos(min(1.0, max(-1.0, float(cos))))
    if math.sin(omega) < 1e-6:
        z = (1.0 - t) * a64 + t * b64
    else:
        z = (np.sin((1.0 - t) * omega) * a64 + np.sin(t * omega) * b64) / math.sin(omega)
    z = z.astype(np.float32)
    z[0], z[-1] = a, b
    return z


def check_truncation(truncation: Any) -> float:
    """A truncation threshold as a float >= MIN_TRUNCATION, else GeneratorInputError."""
    if (
        isinstance(truncation, bool)
        or not isinstance(truncation, (int, float, np.floating))
        or not math.isfinite(truncation)
        or truncation < MIN_TRUNCATION
    ):
        raise GeneratorInputError(
            f"truncation must be a finite number >= {MIN_TRUNCATION} (e.g. 0.5 to 1.0), got {truncation!r}"
        )
    return float(truncation)


def check_count(n: Any, what: str = "number of images") -> int:
    """A positive int (bools and floats refused), else GeneratorInputError naming `what`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise GeneratorInputError(f"{what} must be a positive integer, got {n!r}")
    return int(n)


def check_seed(seed: Any) -> int | None:
    """None or a non-negative int, else GeneratorInputError."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GeneratorInputError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def check_latents(z: Any, nz: int) -> np.ndarray:
    """Caller's latents as C-contiguous float32 [N, nz] (N >= 1, all finite), else GeneratorInputError."""
    z = np.asarray(z)
    if z.dtype.kind != "f":
        raise GeneratorInputError(f"latents must be floating point (float32), got dtype {z.dtype}")
    if z.ndim != 2 or z.shape[1] != nz or z.shape[0] == 0:
        raise GeneratorInputError(f"latents must have shape [N, {nz}] with N >= 1, got {list(z.shape)}")
    if not np.isfinite(z).all():
        raise GeneratorInputError("latents contain NaN or Inf; pass finite values")
    return np.ascontiguousarray(z, dtype=np.float32)
