"""Conditional mode collapse: how each way of giving G its label keeps (or loses) z, per class, on real digits.

Each arm trains a conditional G + projection D (edgegan.trainer.step.GANStep, the loop `edgegan train` runs) on a seeded
10,000-image subset of the real training split, and every `--every` steps reports:
  spread   per-class spread of G's samples / real images' (edgegan.trainer.diversity: standardised pixels, 8 latents a
           class; 1 = as varied as real digits, 0 = one image per class), the mean and the worst class
  z share  for a G whose label is joined to z: the share of z in the first layer's pre-activation variance,
           E|W_z z|^2 / (E|W_z z|^2 + Var_y(W_e e_y)) (0.69 at initialisation; the label's growing share is what
           the BatchNorm after it normalises z away with)
and writes a grid per arm (rows: classes 0-9, columns: 8 fixed latents) at the end: a collapsed G draws rows of
copies, a G that ignores its label draws identical columns.

Arms (TrainConfig / ModelConfig fields, nothing patched):
  dcgan-joined        g_conditioning=concat, mode_seeking=0   the old recipe
  dcgan-joined+ms     g_conditioning=concat, mode_seeking=1   the DCGAN default
  dcgan-cbn           g_conditioning=cbn,    mode_seeking=0
  gan-joined          g_conditioning=concat, mode_seeking=0   the old recipe
  gan-cbn             g_conditioning=cbn,    mode_seeking=0   the GAN default
  gan-cbn+ms          g_conditioning=cbn,    mode_seeking=1
  gan-joined+ms       g_conditioning=concat, mode_seeking=1

Usage: python -m benchmarks.probes.conditional_collapse [--dataset mnist] [--arms dcgan-joined,dcgan-joined+ms,...]
       [--steps 1000] [--every 250] [--width 32] [--threads 1] [--out-dir benchmarks/results/conditional_collapse]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from edgegan.runtime.evaluation.datasets import load_images
from edgegan.runtime.files import atomic_write
from edgegan.runtime.images import save_grid, to_uint8_nhwc
from edgegan.trainer.config import ModelConfig, TrainConfig
from edgegan.trainer.data import BatchSource
from edgegan.trainer.diversity import real_spread, sample_diversity
from edgegan.trainer.step import GANStep

REPO = Path(__file__).resolve().parents[2]

ARMS = {
    "dcgan-joined": ("dcgan", "concat", 0.0),
    "dcgan-joined+ms": ("dcgan", "concat", 1.0),
    "dcgan-cbn": ("dcgan", "cbn", 0.0),
    "gan-joined": ("gan", "concat", 0.0),
    "gan-cbn": ("gan", "cbn", 0.0),
    "gan-cbn+ms": ("gan", "cbn", 1.0),
    "gan-joined+ms": ("gan", "concat", 1.0),
}
SUBSET = 10_000


def z_share(G: torch.nn.Module, nz: int) -> float | None:
    """z's share of the first layer's pre-activation variance, for a G whose label is joined to z."""
    embed = getattr(getattr(G, "join", None), "embed", None)
    if embed is None:
        return None
    first = next(m for m in G.modules() if isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.Linear)))
    w = first.weight.detach()
    if isinstance(first, torch.nn.ConvTranspose2d):  # [in, out, k, k] -> [in, out*k*k]
        w_z, w_e = w[:nz].flatten(1), w[nz:].flatten(1)
    else:  # Linear [out, in] -> [in, out]
        w_z, w_e = w[:, :nz].T, w[:, nz:].T
    var_z = (w_z**2).sum(0).mean().item()  # E|W_z^T z|^2 per output, z ~ N(0, I)
    var_y = (embed.weight.detach() @ w_e).var(0).mean().item()  # variance over classes of the label term
    return var_z / (var_z + var_y)


def run_arm(name: str, data, args) -> list[dict]:
    arch, conditioning, ms = ARMS[name]
    model = ModelConfig(arch=arch, width=args.width, num_classes=10, channels=1, g_conditioning=conditioning)
    cfg = TrainConfig(
        model=model, dataset=args.dataset, conditional=True, amp="off", ema=False, seed=args.seed, mode_seeking=ms
    )
    device = torch.device("cpu")
    engine = GANStep(cfg, device)
    source = BatchSource(data, engine.cfg.batch_size, cfg.seed, device, channels_last=cfg.use_channels_last)
    real = real_spread(data.images, data.labels, 10)
    rows, start = [], time.perf_counter()
    for step in range(args.steps):
        x, y = source.batch(*divmod(step, source.steps_per_epoch))
        stats = engine.step(x, y, step)
        if (step + 1) % args.every == 0 or step + 1 == args.steps:
            div = sample_diversity(engine.G, model.nz, 10, device, real)
            share = z_share(engine.G, model.nz)
            d_x, d_g_z = stats[2].item(), stats[3].item()
            rows.append(
                {
                    "arm": name,
                    "step": step + 1,
                    "spread_mean": div.ratio,
                    "spread_min": min(div.per_class),
                    "z_share": share,
                    "d_x": d_x,
                    "d_g_z": d_g_z,
                    "seconds": time.perf_counter() - start,
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    G = engine.G.eval()
    z = torch.from_numpy(np.random.default_rng(1).standard_normal((8, model.nz), dtype=np.float32))
    with torch.no_grad():
        images = torch.cat([G(z, torch.full((8,), k)) for k in range(10)]).numpy()  # [80, 1, 28, 28]
    save_grid(to_uint8_nhwc(images), Path(args.out_dir) / f"{name}.png", nrow=8)
    return rows


def render(rows: list[dict], args, command: str) -> str:
    lines = [
        "# Conditional mode collapse: per-class spread of G's samples vs real digits",
        "",
        f"{args.dataset}, {SUBSET} training images, width {args.width}, batch 64, seed {args.seed}, CPU "
        f"({torch.get_num_threads()} thread(s), torch {torch.__version__}). spread: generated / real per-class "
        "spread (edgegan.trainer.diversity), mean over classes and worst class; z share: z's share of the first layer's "
        "variance (label joined to z only).",
        "",
        "| arm | step | spread (mean) | spread (worst class) | z share | D(x) | D(G(z)) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        share = "-" if r["z_share"] is None else f"{r['z_share']:.2f}"
        lines.append(
            f"| {r['arm']} | {r['step']} | {r['spread_mean']:.2f} | {r['spread_min']:.2f} | {share} | "
            f"{r['d_x']:.2f} | {r['d_g_z']:.2f} |"
        )
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    lines += ["", "Grids at the last step (rows: classes 0-9; columns: the same 8 latents):", ""]
    lines += [f"{a}: ![{a}]({a}.png)" for a in arms]
    lines += ["", f"Command: `{command}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma separated, of: {', '.join(ARMS)}")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results" / "conditional_collapse"))
    args = parser.parse_args(argv)
    arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    torch.set_num_threads(args.threads)
    data = load_images(args.dataset, "train", data_dir=args.data_dir, progress=False)
    index = np.random.default_rng(0).permutation(len(data.images))[:SUBSET]
    data.images, data.labels = data.images[index], data.labels[index]
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    rows = [row for arm in arms for row in run_arm(arm, data, args)]
    command = "python -m benchmarks.probes.conditional_collapse " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(rows, args, command)
    atomic_write(Path(args.out_dir) / "README.md", lambda f: f.write(text), binary=False)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
