"""`edgegan sample`: the runtime's own command (eval and bench live in evaluation/cli.py and bench/cli.py).

Each command only parses options and calls library functions; numpy, onnxruntime and Pillow are imported inside
the command so `edgegan --help` and `edgegan sample --help` stay instant. Errors are EdgeganError subclasses,
which the `edgegan` group prints as "Error: ..." with exit status 1.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import click

from edgegan.runtime.providers import PROVIDERS


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-n", "--num", "n", type=int, default=64, show_default=True, help="Number of images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the contract's latent rule.")
@click.option("--label", "labels", multiple=True, metavar="K",
              help="Class index or name (conditional models); once for all images, or once per image.")
@click.option("--truncation", type=float, default=None, metavar="T",
              help="Redraw latent entries with |z| > T (truncation trick; T >= 0.01).")
@click.option("--provider", type=click.Choice(PROVIDERS), default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Images per session run.")
@click.option("--allow-fallback", is_flag=True, help="Run on another provider (with a warning) if PROVIDER fails.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Grid PNG to write (default grid.png when --npy is not given).")
@click.option("--npy", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the images as a uint8 [N, H, W, C] .npy file, streamed a batch at a time.")
@click.option("--nrow", type=int, default=None, help="Images per grid row (default: square).")
def sample(model: Path, n: int, seed: int, labels: tuple[str, ...], truncation: float | None, provider: str,
           threads: int | None, batch_size: int, allow_fallback: bool, out: Path | None, npy: Path | None,
           nrow: int | None) -> None:
    """Sample images from MODEL (generator.onnx or a variant) by the contract's latent rule.

    Every output is checked writable before any image is made. With --npy the images stream to disk a batch at
    a time (any -n the disk holds), and the grid shows the first 1024 of them."""
    from edgegan.runtime.files import OutputPathError, check_writable
    from edgegan.runtime.generator import Generator, GeneratorInputError
    from edgegan.runtime.images import sample_to_files

    if nrow is not None and nrow <= 0:
        raise GeneratorInputError(f"--nrow must be positive, got {nrow}")
    if out is None and npy is None:
        out = Path("grid.png")
    if out is not None and npy is not None and out.resolve() == npy.resolve():
        raise OutputPathError(f"-o and --npy both name {out}; give two files")
    for path, option in ((out, "-o"), (npy, "--npy")):
        if path is not None:
            check_writable(path, option)  # before the work: exit 0 only with every output written
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the fallback is reported below, on one line
        generator = Generator(model, provider=provider, threads=threads, batch_size=batch_size,
                              allow_fallback=allow_fallback)
    if generator.fallback:
        click.echo(f"Warning: provider fallback {generator.fallback} (--allow-fallback)", err=True)
    written, shown = sample_to_files(generator, n, seed=seed, labels=list(labels) or None, truncation=truncation,
                                     grid=out, npy=npy, nrow=nrow)
    h, w, c = generator.image_shape
    note = f" (the grid shows the first {shown})" if out is not None and shown < n else ""
    click.echo(f"wrote {' and '.join(map(str, written))}: {n} images {h}x{w}x{c}, seed {seed}, "
               f"{generator.precision}, provider {generator.providers[0]}{note}")
