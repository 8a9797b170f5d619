"""Sampling a trained generator in PyTorch by the contract's latent rule (the reference export is checked against)."""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from edgegan.runtime.contract import default_labels, draw_latents
from edgegan.trainer.checkpoint import load_checkpoint
from edgegan.trainer.config import TrainConfig
from edgegan.trainer.models import build_generator


def load_generator(source: str | os.PathLike, use_ema: bool = True, device: str = "cpu") -> tuple[nn.Module, TrainConfig, dict]:
    """Rebuild G from a run folder or checkpoint file, in eval mode.

    Returns:
        (G, config, checkpoint dict). G carries the EMA weights unless use_ema=False or the run had no EMA.
    """
    ckpt = load_checkpoint(source, map_location=device)
    cfg = TrainConfig.from_dict(ckpt["config"])
    G = build_generator(cfg.model)
    state = ckpt.get("G_ema") if use_ema and ckpt.get("G_ema") is not None else ckpt["G"]
    G.load_state_dict(state)
    return G.to(device).eval(), cfg, ckpt


@torch.no_grad()
def generate_images(
    G: nn.Module, n: int, seed: int | None, labels: np.ndarray | None = None, device: str | torch.device = "cpu"
) -> np.ndarray:
    """n images from contract latents draw_latents(n, nz, seed) -> float32 [N, C, H, W] in [-1, 1].

    Conditional generators get `labels` or, when None, arange(n) % num_classes (the contract rule).
    """
    cfg = G.cfg
    z = torch.from_numpy(draw_latents(n, cfg.nz, seed)).to(device)
    y = None
    if cfg.num_classes:
        lab = default_labels(n, cfg.num_classes) if labels is None else np.asarray(labels, dtype=np.int64)
        y = torch.from_numpy(lab).to(device)
    was_training = G.training
    G.eval()
    try:
        out = G(z, y).float().cpu().numpy()
    finally:
        G.train(was_training)
    return out
