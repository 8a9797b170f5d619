"""D's regularisers beyond its loss: R1 and balanced consistency regularisation (`--r1`, `--consistency`).

Both are terms D also minimises in its step (trainer/step.py), off (weight 0) by default:
- R1 (Mescheder et al. 2018): gamma / 2 x E ||grad_x D(x)||^2 on real images; D's slope at the data, penalised.
- bCR (Zhao et al. 2020, "Improved consistency regularization for GANs"): lambda x E (D(x) - D(T(x)))^2 on real and
  on fake images, T a random translation: D learns to give a shifted image the logit of the image itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def max_shift(size: int) -> int:
    """The largest translation for an image `size` pixels wide: an eighth of it (3 px at 28, 4 at 32), at least 1."""
    return max(1, size // 8)


def translate(x: torch.Tensor, offsets: torch.Tensor, shift: int) -> torch.Tensor:
    """x [B, C, H, W] moved by whole pixels per image, the border repeated (replicate padding), so a Fashion-MNIST
    or MNIST image keeps its black background and a photo its edge colours.

    offsets: int64 [B, 2] in [0, 2 shift] (row, column; `shift` = no move). Returns [B, C, H, W] with
    out[b, :, i, j] = x[b, :, clamp(i + offsets[b, 0] - shift), clamp(j + offsets[b, 1] - shift)].
    """
    b, c, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")  # [B, C, H + 2s, W + 2s]
    rows = torch.arange(h, device=x.device) + offsets[:, :1]  # [B, H]
    cols = torch.arange(w, device=x.device) + offsets[:, 1:]  # [B, W]
    padded = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * shift))  # [B, C, H, W + 2s]
    return padded.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def r1_penalty(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """1/2 x mean over the batch of ||d logits[i] / d images[i]||^2, differentiable (for D's backward).

    logits [B] computed from images [B, C, H, W] (which requires grad), each row from its own image.
    """
    (grad,) = torch.autograd.grad(logits.sum(), images, create_graph=True)  # [B, C, H, W]
    return 0.5 * grad.float().square().sum(dim=(1, 2, 3)).mean()


def consistency_penalty(logits: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
    """mean (D(x) - D(T(x)))^2 over the batch: logits [B] of the images, moved [B] of their translations."""
    return (logits - moved).square().mean()
