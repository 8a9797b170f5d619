"""Commands for the torch-free half of `edgegan` (sample; bench and eval are added beside it).

Each command only parses options and calls library functions; numpy, onnxruntime and Pillow are imported inside
the command so `edgegan --help` and `edgegan sample --help` stay instant. Errors are EdgeganError subclasses,
which the `edgegan` group prints as "Error: ..." with exit status 1.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import click

PROVIDER_CHOICES = ("cpu", "cuda", "tensorrt", "auto")


def save_npy(array, path: str | os.PathLike) -> Path:
    """Write an array as .npy atomically (temp file in the same folder, fsync, rename)."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-n", "--num", "n", type=int, default=64, show_default=True, help="Number of images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the contract's latent rule.")
@click.option("--label", "labels", multiple=True, metavar="K",
              help="Class index or name (conditional models); once for all images, or once per image.")
@click.option("--truncation", type=float, default=None, metavar="T",
              help="Redraw latent entries with |z| > T (truncation trick; T >= 0.01).")
@click.option("--provider", type=click.Choice(PROVIDER_CHOICES), default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Images per session run.")
@click.option("--allow-fallback", is_flag=True, help="Run on another provider (with a warning) if PROVIDER fails.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Grid PNG to write (default grid.png when --npy is not given).")
@click.option("--npy", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the images as a uint8 [N, H, W, C] .npy file.")
@click.option("--nrow", type=int, default=None, help="Images per grid row (default: square).")
def sample(model: Path, n: int, seed: int, labels: tuple[str, ...], truncation: float | None, provider: str,
           threads: int | None, batch_size: int, allow_fallback: bool, out: Path | None, npy: Path | None,
           nrow: int | None) -> None:
    """Sample images from MODEL (generator.onnx or a variant) by the contract's latent rule."""
    from runtime.generator import Generator, GeneratorInputError
    from runtime.images import save_grid

    if nrow is not None and nrow <= 0:
        raise GeneratorInputError(f"--nrow must be positive, got {nrow}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the fallback is reported below, on one line
        generator = Generator(model, provider=provider, threads=threads, batch_size=batch_size,
                              allow_fallback=allow_fallback)
    if generator.fallback:
        click.echo(f"Warning: provider fallback {generator.fallback} (--allow-fallback)", err=True)
    images = generator.sample(n, seed=seed, labels=list(labels) or None, truncation=truncation)  # uint8 [N,H,W,C]
    if out is None and npy is None:
        out = Path("grid.png")
    written = []
    if out is not None:
        written.append(str(save_grid(images, out, nrow=nrow)))
    if npy is not None:
        written.append(str(save_npy(images, npy)))
    h, w, c = generator.image_shape
    click.echo(f"wrote {' and '.join(written)}: {len(images)} images {h}x{w}x{c}, seed {seed}, "
               f"{generator.precision}, provider {generator.providers[0]}")
