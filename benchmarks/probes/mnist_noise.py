"""Probe: why do the unconditional MNIST models draw noisy or broken digits? One checkpoint, several ways to sample.

For a run's checkpoint, draws n images from each of: the shipped G (EMA weights with the BatchNorm statistics the
checkpoint holds), the EMA G with standing statistics (BatchNorm re-estimated on its own activations), the EMA G with
batch statistics, and the raw G both ways; optionally the shipped G with truncated latents. Each is scored against
the real test images with the evaluator's features (FID, precision, recall: `edgegan eval`'s figures) and two pixel
figures: the share of grey pixels (neither background nor stroke: real MNIST is nearly binary, 8.5%) and the share
of bright pixels with no bright neighbour (salt). Grids go to --out.

Usage: python -m benchmarks.probes.mnist_noise RUN/checkpoints/last.pt [--evaluator E.onnx] [-n 2000]
       [--truncation 1.5,1.0,0.7] [--out DIR]
Results: benchmarks/results/recipes/mnist_noise.md.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgegan.runtime.contract import draw_latents
from edgegan.runtime.evaluation.datasets import load_images
from edgegan.runtime.evaluation.evaluator import Evaluator, resolve_evaluator
from edgegan.runtime.evaluation.metrics import fid_from_features, precision_recall
from edgegan.runtime.images import save_grid
from edgegan.trainer.checkpoint import load_checkpoint
from edgegan.trainer.config import TrainConfig
from edgegan.trainer.models import build_generator
from edgegan.trainer.step import EMA


def grey_share(images: np.ndarray) -> float:
    """uint8 [N, H, W, C] -> share of pixels in (25, 230): neither background nor stroke."""
    return float(((images > 25) & (images < 230)).mean())


def salt_share(images: np.ndarray) -> float:
    """Share of bright pixels (> 127) none of whose 8 neighbours is bright."""
    bright = images[..., 0] > 127  # [N, H, W]
    pad = np.pad(bright, ((0, 0), (1, 1), (1, 1)))
    neighbours = sum(
        np.roll(np.roll(pad, dy, 1), dx, 2) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)
    )[:, 1:-1, 1:-1]
    return float((bright & (neighbours == 0)).sum() / max(int(bright.sum()), 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--evaluator", default=None, help="default: the cached evaluator of the run's dataset")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--truncation", default="", help="also the shipped G with latents truncated at these")
    parser.add_argument("--out", default=None, help="write a 10x10 grid per arm here")
    args = parser.parse_args(argv)

    ckpt = load_checkpoint(args.checkpoint, map_location="cpu")
    cfg = TrainConfig.from_dict(ckpt["config"])

    def generator(state: dict) -> nn.Module:
        g = build_generator(cfg.model)
        g.load_state_dict(state)
        return g.eval()

    raw, shipped = generator(ckpt["G"]), generator(ckpt.get("G_ema") or ckpt["G"])
    num_classes = cfg.model.num_classes
    labels = torch.arange(args.n) % num_classes if num_classes else None

    def standing(g: nn.Module) -> nn.Module:
        ema = EMA(g, decay=0.0)
        gen = torch.Generator().manual_seed(123)
        ema.standing_statistics(
            lambda: (
                torch.randn(256, cfg.model.nz, generator=gen),
                torch.randint(num_classes, (256,), generator=gen) if num_classes else None,
            ),
            16,
        )
        return ema.model

    def images(g: nn.Module, z: np.ndarray, batch_stats: bool = False) -> np.ndarray:
        g = copy.deepcopy(g).train(batch_stats)
        parts = []
        with torch.no_grad():
            for s in range(0, args.n, 500):
                parts.append(g(torch.from_numpy(z[s : s + 500]), None if labels is None else labels[s : s + 500]))
        x = torch.cat(parts).clamp(-1, 1)  # [n, C, H, W]
        return ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

    z = draw_latents(args.n, cfg.model.nz, 1)
    arms = {
        "shipped G (EMA weights, the checkpoint's BatchNorm statistics)": images(shipped, z),
        "EMA weights, standing statistics": images(standing(shipped), z),
        "EMA weights, batch statistics": images(shipped, z, batch_stats=True),
        "raw G, its running statistics": images(raw, z),
        "raw G, batch statistics": images(raw, z, batch_stats=True),
    }
    rng = np.random.default_rng(1)
    for t in (float(v) for v in args.truncation.split(",") if v):
        zt = z.copy()
        while (bad := np.abs(zt) > t).any():  # redraw entries beyond t
            zt[bad] = rng.standard_normal(int(bad.sum())).astype(np.float32)
        arms[f"shipped G, latents truncated at {t:g}"] = images(shipped, zt)

    evaluator = Evaluator(resolve_evaluator(args.evaluator, cfg.dataset))
    real = load_images(cfg.dataset, "test", progress=False).images[: args.n]
    real_features = evaluator.run(real)[0]
    print(
        f"{args.checkpoint}: {cfg.model.arch} width {cfg.model.width}, "
        f"{'conditional' if num_classes else 'unconditional'}, step {ckpt['step']}, lr {cfg.lr}, EMA {cfg.ema_decay}, "
        f"loss {cfg.loss}; n {args.n}"
    )
    print(
        "\n| G | FID | precision | recall | grey pixels | isolated bright pixels |\n| --- | ---: | ---: | ---: | ---: | ---: |"
    )
    print(f"| real test images | - | - | - | {grey_share(real):.3f} | {salt_share(real):.4f} |")
    for i, (name, u8) in enumerate(arms.items()):
        features = evaluator.run(u8)[0]
        precision, recall = precision_recall(real_features, features)
        print(
            f"| {name} | {fid_from_features(real_features, features):.1f} | {precision:.3f} | {recall:.3f} | "
            f"{grey_share(u8):.3f} | {salt_share(u8):.4f} |"
        )
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            save_grid(u8[:100], Path(args.out) / f"arm{i}.png", nrow=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
