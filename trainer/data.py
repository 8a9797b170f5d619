"""Training batches: the whole dataset as one uint8 tensor on the device, sliced by a per-epoch permutation.

Why not a DataLoader: Fashion-MNIST is 47 MB; per-sample PIL transforms and worker processes cost more than the
training step on 2 CPU cores. One gather + one float conversion per batch is the cheapest correct pipeline, and a
permutation that depends only on (seed, epoch) makes `--resume` land on exactly the batch it stopped at.
"""

from __future__ import annotations

import torch

from edgegan.runtime.evaluation.datasets import ImageData
from edgegan.runtime.evaluation.image_data import DataError


class BatchSource:
    """Batches of real images in [-1, 1] for step (epoch, index), sharded by rank.

    Args:
        data: uint8 [N, H, W, C] images (+ int64 [N] labels) from edgegan.runtime.evaluation.datasets.load_images.
        batch_size: per-rank batch size.
        seed: run seed; epoch e uses randperm(N) from a generator seeded with (seed, e).
        device: where the images live and batches are made.
        rank, world_size: data-parallel shard: rank r takes permutation[r::world_size].
        channels_last: return batches in channels_last memory format (faster convolutions on CPU and GPU).
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int,
        seed: int,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
    ):
        per_rank = len(data.images) // world_size
        if per_rank // batch_size == 0:  # before the images move to the device: a one-line error, not a traceback
            most = f"--batch-size {per_rank} or less" if per_rank else "more images"
            raise DataError(
                f"--batch-size {batch_size} is larger than the data: {len(data.images)} images on "
                f"{world_size} rank(s) make no full batch; use {most}"
            )
        # uint8 [N, C, H, W]: a quarter of the float size, converted per batch.
        images = data.images if data.images.flags.writeable else data.images.copy()
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
        self.labels = torch.from_numpy(data.labels).to(device) if data.labels is not None else None
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.rank, self.world_size = rank, world_size
        self.channels_last = channels_last
        self.steps_per_epoch = len(self.images) // world_size // batch_size
        self._epoch = -1
        self._order: torch.Tensor | None = None

    def _order_for(self, epoch: int) -> torch.Tensor:
        if self._order is None or epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(len(self.images), generator=gen)
            self._order = perm[self.rank :: self.world_size].to(self.device)
            self._epoch = epoch
        return self._order

    def batch(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> (images float32 [B, C, H, W] in [-1, 1], labels int64 [B] or None)."""
        idx = self._order_for(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        x = self.images[idx].float().mul_(1.0 / 127.5).sub_(1.0)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        y = self.labels[idx] if self.labels is not None else None
        return x, y
