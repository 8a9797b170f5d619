"""`edgegan sample`: the runtime's own command (eval and bench live in evaluation/cli.py and bench/cli.py).

Each command only parses options and calls library functions; numpy, onnxruntime and Pillow are imported inside
the command so `edgegan --help` and `edgegan sample --help` stay instant. Errors are EdgeganError subclasses,
which the `edgegan` group prints as "Error: ..." with exit status 1.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from edgegan.runtime.cli_options import (
    EdgeganCommand,
    Say,
    batch_size_option,
    check_json_path,
    deprecated_alias,
    json_option,
    output_option,
    provider_option,
    quiet_option,
    threads_option,
)
from edgegan.runtime.errors import EdgeganError

# The library's errors name its parameters; at the command line the same advice names the options.
_OPTION_WORDS = (
    ("pass labels=None", "drop --label"),
    ("provider='tensorrt' (or 'auto')", "--provider tensorrt (or auto)"),
    ("pass truncation=None", "sample without --truncation"),
    ("pass allow_fallback=True (--allow-fallback)", "pass --allow-fallback"),
)


def _in_option_words(exc: EdgeganError) -> EdgeganError:
    """The same error, its advice in the command's words (type and cause kept, so exit status and tests agree)."""
    text = str(exc)
    for library, option in _OPTION_WORDS:
        text = text.replace(library, option)
    if text == str(exc):
        return exc
    worded = type(exc).__new__(type(exc))
    worded.args = (text,)
    worded.__cause__ = exc
    return worded


@click.command(cls=EdgeganCommand)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-n", "--num", "n", type=int, default=64, show_default=True, help="Number of images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the contract's latent rule.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="K",
    help="Class index or name (conditional models); once for all images, or once per image.",
)
@click.option(
    "--truncation",
    type=float,
    default=None,
    metavar="T",
    help="Redraw latent entries with |z| > T (truncation trick; T >= 0.01).",
)
@provider_option()
@threads_option()
@batch_size_option(64)
@click.option("--allow-fallback", is_flag=True, help="Run on another provider (with a warning) if PROVIDER fails.")
@output_option(
    "Grid picture to write: .png, .jpg/.jpeg (quality 95) or .webp (lossless) [default: grid.png "
    "when --npy is not given]."
)
@deprecated_alias("--out", "output", "-o/--output", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--npy",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Also write the images as a uint8 [N, H, W, C] .npy file, streamed a batch at a time.",
)
@click.option("--nrow", type=click.IntRange(1, None), default=None, help="Images per grid row (default: square).")
@json_option("what was written (files, images, seed, labels, provider)")
@quiet_option()
def sample(
    model: Path,
    n: int,
    seed: int,
    labels: tuple[str, ...],
    truncation: float | None,
    provider: str,
    threads: int | None,
    batch_size: int,
    allow_fallback: bool,
    output: Path | None,
    npy: Path | None,
    nrow: int | None,
    json_path: str | None,
    quiet: bool,
) -> None:
    """Sample images from MODEL (generator.onnx or a variant) by the contract's latent rule.

    Every output is checked before any image is made: its folder must exist (none is created) and the grid's
    suffix must name a picture format. With --npy the images stream to disk a batch at a time (any -n the disk
    holds), and the grid shows the first 1024 of them."""
    from edgegan.runtime.errors import MemoryLimitError
    from edgegan.runtime.files import OutputPathError, check_writable
    from edgegan.runtime.generator import Generator
    from edgegan.runtime.images import image_format, sample_to_files

    say = Say(quiet, json_path)
    if output is None and npy is None:
        output = Path("grid.png")
    if output is not None and npy is not None and output.resolve() == npy.resolve():
        raise OutputPathError(f"-o and --npy both name {output}; give two files")
    if output is not None:
        image_format(output, "-o")
    for path, option in ((output, "-o"), (npy, "--npy")):
        if path is not None:
            check_writable(path, option)  # before the work: exit 0 only with every output written
    check_json_path(json_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the fallback is reported below, on one line
            generator = Generator(
                model, provider=provider, threads=threads, batch_size=batch_size, allow_fallback=allow_fallback
            )
    except EdgeganError as exc:
        raise _in_option_words(exc) from exc
    if generator.fallback:
        click.echo(f"Warning: provider fallback {generator.fallback} (--allow-fallback)", err=True)
    before = {path: _identity(path) for path in (npy, output) if path is not None}
    try:
        written, shown = sample_to_files(
            generator,
            n,
            seed=seed,
            labels=list(labels) or None,
            truncation=truncation,
            grid=output,
            npy=npy,
            nrow=nrow,
            progress=not quiet,
        )
    except OSError as exc:  # the .npy is written first, then the grid: say which one failed and what is there
        done = [str(path) for path, was in before.items() if _identity(path) != was]
        reason = exc.strerror or str(exc)
        failed = exc.filename if exc.filename is not None else " and ".join(map(str, before))
        kept = f"; {' and '.join(done)} was written completely" if done else "; nothing was written"
        raise OutputPathError(f"cannot write {failed}: {reason}{kept}") from exc
    except MemoryLimitError as exc:  # the library names its parameters; the command names its options
        raise MemoryLimitError(
            f"{_in_option_words(exc)}; with edgegan sample: a smaller -n, or --npy FILE to stream them to disk"
        ) from exc
    except EdgeganError as exc:
        raise _in_option_words(exc) from exc
    h, w, c = generator.image_shape
    note = f" (the grid shows the first {shown})" if output is not None and shown < n else ""
    say.result(
        f"wrote {' and '.join(map(str, written))}: {n} images {h}x{w}x{c}, seed {seed}, "
        f"{generator.precision}, provider {generator.providers[0]}{note}"
    )
    say.json(
        {
            "model": str(model),
            "files": [str(p) for p in written],
            "grid": str(output) if output else None,
            "npy": str(npy) if npy else None,
            "n": n,
            "grid_images": shown if output else 0,
            "seed": seed,
            "labels": list(labels) or None,
            "truncation": truncation,
            "image": {"height": h, "width": w, "channels": c},
            "precision": generator.precision,
            "provider": generator.providers[0],
            "fallback": generator.fallback,
        },
        json_path,
    )


def _identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, mtime) of a file, None when there is none: an atomic write changes the inode."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_mtime_ns
