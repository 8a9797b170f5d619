"""pytorch/examples' DCGAN data path, inlined for the plain-loop baselines (no torchvision dependency).

torchvision.datasets.FashionMNIST (or MNIST) + Compose([ToTensor(), Normalize((0.5,), (0.5,))]): a map-style dataset
decoding one PIL image per sample, exactly the per-sample work a pytorch/examples user's DataLoader does.
"""

from __future__ import annotations

import numpy as np
import torch


class ExamplesFashionMNIST(torch.utils.data.Dataset):
    """Samples as torchvision gives them: (float [1, 28, 28] in [-1, 1], int label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.data = torch.from_numpy(images[..., 0].copy())  # uint8 [N, 28, 28], as torchvision stores it
        self.targets = torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        from PIL import Image

        img, target = self.data[index], int(self.targets[index])
        img = Image.fromarray(img.numpy(), mode="L")
        # ToTensor: HWC uint8 -> CHW float in [0, 1]
        t = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(28, 28, 1).permute(2, 0, 1).contiguous()
        t = t.to(torch.get_default_dtype()).div(255)
        # Normalize((0.5,), (0.5,))
        mean = torch.as_tensor((0.5,), dtype=t.dtype).view(-1, 1, 1)
        std = torch.as_tensor((0.5,), dtype=t.dtype).view(-1, 1, 1)
        return t.sub_(mean).div_(std), target
