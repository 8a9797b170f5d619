"""Where the MNIST MLP GAN's grey haze comes from: its output layer, pixel group by pixel group (issue 21)

The MLP G draws each pixel as tanh(w_p . h + b_p), h the last hidden layer [1024] (width 64). A real digit's
background is exactly black (-1); a pixel is grey where its pre-activation a_p = w_p . h + b_p climbs out of
tanh's tail (above -1.6 the pixel is brighter than 10 of 255). For one or more runs' checkpoints this prints, per
group of pixels (by the training images' mean: the far background that no digit touches, the band around the
digits, the ink region), the median over pixels of a_p's mean and spread over n latents, and the share of the
group's pixels above 10 and 128 levels beside the real training digits' share; then the output layer's rows: the
norm |w_p| against its DCGAN initialisation (0.02 x sqrt(fan-in)), and, where the checkpoint holds G's Adam state,
the RMS of the gradient each row saw (Adam's exp_avg_sq): Adam divides every step by that RMS, so a row whose
gradient is a thousandth of the ink rows' still moves by the full learning rate each step.

    python -m benchmarks.probes.mlp_output NAME=RUN/checkpoints/last.pt ... [-n 4000] [--seed 1]

Figures: benchmarks/results/recipes/cpu_2026-12-05f/README.md.
"""

from __future__ import annotations

import argparse
import math
from typing import cast

import numpy as np
import torch
from torch import nn

from edgegan.runtime.evaluation.datasets import load_images
from edgegan.trainer.checkpoint import load_checkpoint
from edgegan.trainer.config import TrainConfig
from edgegan.trainer.models import build_generator
from edgegan.trainer.step import output_layer

HAZE_LEVEL, STROKE_LEVEL = 10, 128
# Pixel groups by the training images' mean pixel in [-1, 1]: (name, low, high)
GROUPS = (("far background", -1.0, -0.98), ("band around the digits", -0.98, -0.8), ("ink region", -0.8, 1.0))


def pre_activations(g: nn.Module, n: int, seed: int) -> np.ndarray:
    """float [n, C*H*W]: the output layer's pre-activations for n latents of `seed`."""
    captured: list[torch.Tensor] = []
    hook = output_layer(g).register_forward_hook(lambda module, args, out: captured.append(out.detach()))
    z = torch.randn(n, g.cfg.nz, generator=torch.Generator().manual_seed(seed))  # [n, nz]
    with torch.no_grad():
        g(z)
    hook.remove()
    return captured[0].float().numpy()


def report(name: str, path: str, real: np.ndarray, mean_image: np.ndarray, n: int, seed: int) -> None:
    state = load_checkpoint(path)
    cfg = TrainConfig.from_dict(state["config"])
    if cfg.model.arch != "gan" or cfg.model.num_classes:
        raise SystemExit(f"{path}: an unconditional MLP GAN checkpoint is needed, got {cfg.model.arch}")
    g = build_generator(cfg.model)
    g.load_state_dict(state.get("G_ema") or state["G"])  # what export ships: the EMA weights
    g.eval()
    pre = pre_activations(g, n, seed)  # [n, 784]
    level = (np.tanh(pre) + 1) * 127.5  # what the pixel shows, 0..255
    layer = cast(nn.Linear, output_layer(g))  # the MLP G's: Linear(16w, C*H*W)
    row_norm = layer.weight.detach().norm(dim=1).numpy()  # [784]
    init_norm = 0.02 * math.sqrt(layer.in_features)
    adam = (state.get("opt_G") or {}).get("state", {})
    weight_state = next((s for s in adam.values() if s["exp_avg_sq"].shape == layer.weight.shape), None)
    rms = weight_state["exp_avg_sq"].sqrt().mean(dim=1).numpy() if weight_state is not None else None
    print(f"\n{name} ({path}, step {state['step']}), {n} latents of seed {seed}\n")
    print(
        "| pixels | count | pre-activation mean | spread over z | > 10 levels (real) | > 128 levels (real) "
        "| row norm / init | gradient RMS |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    for group, low, high in GROUPS:
        px = (mean_image >= low) & (mean_image < high)
        gen, ref = level[:, px], real[:, px]
        grad = f"{np.median(rms[px]):.1e}" if rms is not None else "-"
        print(
            f"| {group} | {px.sum()} | {np.median(pre[:, px].mean(0)):.2f} | {np.median(pre[:, px].std(0)):.2f} "
            f"| {(gen > HAZE_LEVEL).mean():.4f} ({(ref > HAZE_LEVEL).mean():.4f}) "
            f"| {(gen > STROKE_LEVEL).mean():.5f} ({(ref > STROKE_LEVEL).mean():.5f}) "
            f"| {np.median(row_norm[px]) / init_norm:.2f} | {grad} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=CHECKPOINT.pt")
    parser.add_argument("-n", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    train = load_images("mnist", "train", progress=False).images  # uint8 [60000, 28, 28, 1]
    flat = train.reshape(len(train), -1)  # [N, 784], the G's C-major order for one channel
    mean_image = flat.mean(0) / 127.5 - 1
    for spec in args.runs:
        name, _, path = spec.partition("=")
        report(name, path, flat[: args.n].astype(np.float64), mean_image, args.n, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
