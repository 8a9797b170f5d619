"""Sampling a generator in PyTorch by the contract's latent rule: the reference the export is checked against, and
the one place the trainer runs G on the contract's latents (the grid, the diversity figure, tests)."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from edgegan.runtime.contract import default_labels, draw_latents
from edgegan.trainer.checkpoint import load_checkpoint
from edgegan.trainer.config import ModelConfig, TrainConfig
from edgegan.trainer.models import build_generator


def load_generator(
    source: str | os.PathLike, use_ema: bool = True, device: str = "cpu"
) -> tuple[nn.Module, TrainConfig, dict]:
    """Rebuild G from a run folder or checkpoint file, in eval mode.

    Returns:
        (G, config, checkpoint dict). G carries the EMA weights unless use_ema=False or the run had no EMA.
    """
    ckpt = load_checkpoint(source, map_location=device)
    cfg = TrainConfig.from_dict(ckpt["config"])
    G = build_generator(cfg.model)
    state = ckpt["G_ema"] if use_ema and ckpt.get("G_ema") is not None else ckpt["G"]
    G.load_state_dict(state)
    return G.to(device).eval(), cfg, ckpt


def contract_inputs(
    n: int,
    seed: int | None,
    nz: int,
    num_classes: int,
    labels: np.ndarray | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """G's inputs for n contract latents: z = draw_latents(n, nz, seed) float32 [n, nz] and, when num_classes > 0,
    y = `labels` or default_labels(n, num_classes) (arange(n) % num_classes) int64 [n]; y is None otherwise."""
    z = torch.from_numpy(draw_latents(n, nz, seed)).to(device)
    if not num_classes:
        return z, None
    lab = default_labels(n, num_classes) if labels is None else np.asarray(labels, dtype=np.int64)
    return z, torch.from_numpy(lab).to(device)


def _model_config(G: nn.Module) -> ModelConfig:
    """G.cfg: the ModelConfig each generator of trainer/models keeps (an attribute nn.Module's types cannot see)."""
    cfg: ModelConfig = G.cfg  # type: ignore[assignment]  # set in the generators' __init__, not a Tensor or Module
    return cfg


@torch.no_grad()
def generate_images(
    G: nn.Module,
    n: int,
    seed: int | None,
    labels: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    *,
    nz: int | None = None,
    num_classes: int | None = None,
) -> np.ndarray:
    """n images from contract latents draw_latents(n, nz, seed) -> float32 [N, C, H, W] in [-1, 1], G in eval mode
    (its training mode is restored after).

    Conditional generators get `labels` [n] or, when None, arange(n) % num_classes (the contract rule).
    nz, num_classes: G's, read from G.cfg unless given (a wrapped G, e.g. DDP or a test double, has no cfg).
    """
    nz = _model_config(G).nz if nz is None else nz
    num_classes = _model_config(G).num_classes if num_classes is None else num_classes
    z, y = contract_inputs(n, seed, nz, num_classes, labels, device)
    was_training = G.training
    G.eval()
    try:
        out = G(z, y).float().cpu().numpy()
    finally:
        G.train(was_training)
    return out
