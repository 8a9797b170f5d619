"""`SampleResult`: what `Generator.__call__` returns, the images with everything needed to make them again.

diffusers' pipelines return a small output dataclass (`pipe(...).images`) rather than a bare array; this is
ours, with the inputs kept beside the pixels: `generator.generate(r.latents, r.labels)` and
`generator.sample(len(r), r.seed, r.labels, r.truncation)` both give `r.images` again. numpy only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = ["SampleResult", "fresh_seed"]


@dataclass(frozen=True)
class SampleResult:
    """One call's images and the inputs that made them.

    Attributes:
        images: uint8 [N, H, W, C].
        latents: float32 [N, nz], the rows fed to the model (after truncation, when asked for).
        labels: int64 [N], the class of each image; None for an unconditional model.
        seed: the seed of the contract's latent rule; a fresh one (`fresh_seed`) when the call gave none, so
            every result can be made again.
        truncation: the truncation threshold used, or None.
    """

    images: np.ndarray
    latents: np.ndarray
    labels: np.ndarray | None
    seed: int
    truncation: float | None = None

    def __len__(self) -> int:
        return len(self.images)


def fresh_seed() -> int:
    """A seed from the OS's entropy, below 2**63 so that it fits an int64 wherever it is stored."""
    # os.urandom, not `secrets`: secrets imports hmac and hashlib (~8 ms of every runtime import) for this one call
    return int.from_bytes(os.urandom(8), "big") >> 1
