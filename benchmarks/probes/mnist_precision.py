"""What moves precision on `edgegan eval`'s MNIST instrument (issue 21: unconditional DCGAN precision >= 0.75)?

Precision (Kynkaanniemi et al. 2019, k = 3) counts the generated images whose evaluator features fall inside the
union of the real test images' 3-NN balls. The features are the MNIST evaluator's penultimate layer, trained to
classify centred digits, so they respond to more than the digit's identity. This probe scores, with the instrument
`edgegan eval` uses (runtime/evaluation/metrics.py precision_recall against the 10,000 test images):

- real training images, as they are and after changes that keep every digit readable: moved 1 pixel, binarised,
  blurred (Gaussian, sigma 0.5 px or those of --blur), a faint grey haze (+15 levels), re-centred by their centre of mass;
- each generator's samples as they are, re-centred (whole-pixel shift putting the centre of mass where the test
  images' mean is: no interpolation, so no blur), and blurred.

Alongside: the spread (standard deviation) of the images' centre of mass. MNIST was built by centring each digit
on its centre of mass, so real digits' spread is ~0.3 px.

    python -m benchmarks.probes.mnist_precision --evaluator E.onnx [-n 5000] [--blur 0.5,0.4] [--markdown F] NAME=G.onnx ...

Verdict and figures: benchmarks/results/recipes/cpu_2026-12-05b/mnist_precision.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np


def centre_of_mass(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of each uint8 [N, H, W, 1] image's intensity-weighted centre, float64 [N] each."""
    x = images[..., 0].astype(np.float64)  # [N, H, W]
    mass = x.sum(axis=(1, 2)) + 1e-9
    rows = (x.sum(axis=2) * np.arange(x.shape[1])).sum(axis=1) / mass
    cols = (x.sum(axis=1) * np.arange(x.shape[2])).sum(axis=1) / mass
    return rows, cols


def shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """[H, W, C] moved by whole pixels (down dy, right dx), zero-filled."""
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def recentre(images: np.ndarray, target: tuple[float, float]) -> np.ndarray:
    """Each image moved by the whole pixels that bring its centre of mass nearest to `target` (row, column)."""
    rows, cols = centre_of_mass(images)
    dys, dxs = np.rint(target[0] - rows).astype(int), np.rint(target[1] - cols).astype(int)
    return np.stack([shift(img, dy, dx) for img, dy, dx in zip(images, dys, dxs)])


def blur(images: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(images.astype(np.float32), sigma=(0, sigma, sigma, 0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generators", nargs="*", metavar="NAME=G.onnx")
    parser.add_argument("--evaluator", required=True)
    parser.add_argument("-n", type=int, default=5000, help="images per set")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--blur", default="0.5", help="Gaussian blur sigmas (px), comma-separated")
    args = parser.parse_args(argv)
    sigmas = [float(v) for v in args.blur.split(",") if v]

    from edgegan.runtime.evaluation.datasets import load_images
    from edgegan.runtime.evaluation.evaluator import Evaluator
    from edgegan.runtime.evaluation.features import score_images
    from edgegan.runtime.evaluation.metrics import kth_neighbour_radii, precision_recall
    from edgegan.runtime.generator import Generator

    evaluator = Evaluator(args.evaluator, threads=1)
    test = load_images("mnist", "test", progress=False).images  # uint8 [10000, 28, 28, 1]
    test_features, _ = score_images(evaluator, test)
    radii = kth_neighbour_radii(test_features)
    test_rows, test_cols = centre_of_mass(test)
    target = (float(test_rows.mean()), float(test_cols.mean()))

    def to_u8(x: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)

    real_changes: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [
        ("as they are", lambda x: x),
        ("moved 1 px right", lambda x: np.stack([shift(img, 0, 1) for img in x])),
        ("binarised at 128", lambda x: (x > 127).astype(np.uint8) * 255),
        ("grey haze +15 levels", lambda x: x.astype(np.float32) + 15),
        ("re-centred (whole pixels)", lambda x: recentre(x, target)),
    ]
    blurs: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [
        (f"blurred, sigma {sigma:g} px", lambda x, sigma=sigma: blur(x, sigma)) for sigma in sigmas
    ]
    real_changes += blurs
    sample_changes = [real_changes[0], real_changes[4], *blurs]
    sets = [("real training images", load_images("mnist", "train", progress=False).images[: args.n], real_changes)]
    for spec in args.generators:
        name, _, path = spec.partition("=")
        sets.append((name, Generator(path, threads=2).sample(args.n, seed=1), sample_changes))

    lines = [
        "| images | change | precision | recall | centre-of-mass spread, rows / columns (px) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, images, changes in sets:
        for label, change in changes:
            changed = to_u8(change(images))
            features, _ = score_images(evaluator, changed)
            precision, recall = precision_recall(test_features, features, real_radii=radii)
            rows, cols = centre_of_mass(changed)
            lines.append(f"| {name} | {label} | {precision:.3f} | {recall:.3f} | {rows.std():.2f} / {cols.std():.2f} |")
            print(lines[-1], flush=True)
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
