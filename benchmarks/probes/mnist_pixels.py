"""Pixel figures of MNIST generators beside the real digits: is there salt noise or a grey haze? (issue 21)

"No salt noise visible" (issue "Defaults that win", the MLP GAN's grid) as numbers, on n samples of each exported
generator (`Generator.sample(n, seed)`, uint8, what `edgegan sample` draws) and n real test images:

- grey pixels: share in (25, 230), neither background nor stroke (probes/mnist_noise.py's figure; real: ~8.5%);
- isolated bright pixels: share of pixels > 127 with no bright 8-neighbour (salt; real: ~0%);
- background haze: pixels farther than 2 px (Chebyshev) from every pixel > 128 are background in a real digit
  (exactly 0 there); their mean level and the share of them above 10 levels, what the eye reads as a grey haze
  around the digit;
- soft ink: the share of ink pixels (> 25) below 200, the anti-aliased stroke edges (real: ~0.43);
- salt dots: a lit pixel (> 96) whose 8 neighbours are all dark (< 32), a dot on black, what the eye reads as salt
  in a grid (most isolated bright pixels are instead the lit end of a faint stroke fragment); the share of images
  with at least one (real: 0.2% of the 10,000 test images).

    python -m benchmarks.probes.mnist_pixels [-n 2000] [--seed 1] NAME=G.onnx ...

Figures: benchmarks/results/recipes/cpu_2026-12-05d/README.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.probes.mnist_noise import grey_share, salt_share
from edgegan.runtime.evaluation.datasets import load_images
from edgegan.runtime.generator import Generator

HAZE_LEVEL = 10  # a background pixel brighter than this reads as haze on a black ground
DOT_LEVEL, DARK_LEVEL = 96, 32  # a salt dot: a pixel above DOT_LEVEL, its 8 neighbours below DARK_LEVEL
STROKE_LEVEL = 128
NEAR_PX = 2


def background_haze(images: np.ndarray) -> tuple[float, float]:
    """uint8 [N, H, W, 1] -> (mean level, share above HAZE_LEVEL) of the pixels farther than NEAR_PX from any
    stroke pixel (> STROKE_LEVEL)."""
    v = images[..., 0]
    stroke = np.pad(v > STROKE_LEVEL, ((0, 0), (NEAR_PX, NEAR_PX), (NEAR_PX, NEAR_PX)))
    h, w = v.shape[1:]
    near = np.zeros(v.shape, bool)
    for dy in range(2 * NEAR_PX + 1):
        for dx in range(2 * NEAR_PX + 1):
            near |= stroke[:, dy : dy + h, dx : dx + w]
    background = v[~near]
    return float(background.mean()), float((background > HAZE_LEVEL).mean())


def salt_dot_images(images: np.ndarray) -> float:
    """uint8 [N, H, W, 1] -> share of images with a salt dot (a pixel > DOT_LEVEL, every 8-neighbour < DARK_LEVEL)."""
    v = images[..., 0].astype(np.int16)
    h, w = v.shape[1:]
    padded = np.pad(v, ((0, 0), (1, 1), (1, 1)))  # outside the image counts as dark
    brightest_neighbour = np.zeros_like(v)
    for dy in range(3):
        for dx in range(3):
            if (dy, dx) != (1, 1):
                np.maximum(brightest_neighbour, padded[:, dy : dy + h, dx : dx + w], out=brightest_neighbour)
    dots = (v > DOT_LEVEL) & (brightest_neighbour < DARK_LEVEL)
    return float(dots.any(axis=(1, 2)).mean())


def soft_ink_share(images: np.ndarray) -> float:
    """uint8 [N, H, W, 1] -> share of ink pixels (> 25) that are below 200: the strokes' soft edges."""
    ink = images > 25
    return float((ink & (images < 200)).sum() / max(int(ink.sum()), 1))


def figures(images: np.ndarray) -> str:
    """One markdown row's figure cells for uint8 [N, H, W, 1] images."""
    mean, share = background_haze(images)
    return (
        f"{grey_share(images):.3f} | {salt_share(images):.4f} | {mean:.2f} | {share:.4f} | {soft_ink_share(images):.3f} "
        f"| {salt_dot_images(images):.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", metavar="NAME=G.onnx")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    missing = [spec for spec in args.models if not Path(spec.partition("=")[2]).is_file()]
    if missing:
        parser.error(
            f"no model file at {', '.join(missing)} (NAME=path/generator.onnx; the shell expands no glob after =)"
        )
    real = load_images("mnist", "test", progress=False).images[: args.n]  # uint8 [n, 28, 28, 1]
    print(
        f"n = {args.n} per row, generators sampled with seed {args.seed}\n\n"
        "| images | grey pixels | isolated bright pixels | background haze: mean level | background > 10 levels "
        "| soft ink | images with a salt dot |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    print(f"| real test images | {figures(real)} |")
    for spec in args.models:
        name, _, path = spec.partition("=")
        images = Generator(path).sample(args.n, seed=args.seed)  # uint8 [n, 28, 28, 1]
        print(f"| {name} | {figures(images)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
