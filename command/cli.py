"""`edgegan` click group. Each subcommand lives in its package's cli.py and is imported only when invoked,
so `edgegan sample|bench|eval` work in an install without torch (click's "lazily loading subcommands")."""

from __future__ import annotations

import importlib
import sys

import click

from edgegan import __version__
from edgegan.runtime.errors import EdgeganError, install_hint

# name -> "module:attribute"; the module is imported only when the command runs or its help is asked for.
COMMANDS = {
    "train": ("edgegan.trainer.cli:train", "Train a GAN or DCGAN generator (PyTorch)."),
    "export": ("edgegan.export.cli:export", "Export a checkpoint to a verified generator.onnx and variants."),
    "sample": ("edgegan.runtime.cli:sample", "Sample images from generator.onnx (numpy + onnxruntime only)."),
    "bench": ("edgegan.runtime.bench.cli:bench", "Latency table for generator.onnx files, torch baseline beside it."),
    "bench-report": (
        "edgegan.runtime.bench.report_cli:bench_report",
        "Merge `edgegan bench --json` runs from several machines: one table and plot, ratios to a baseline.",
    ),
    "eval": (
        "edgegan.runtime.evaluation.cli:evaluate",
        "FID, KID, coverage, precision/recall of a generator (torch-free).",
    ),
    "serve": (
        "edgegan.runtime.serve_cli:serve",
        "Serve an exported web page (OUT/web) on 127.0.0.1 with the headers WASM threads need.",
    ),
    "evaluator": ("edgegan.trainer.cli:evaluator", "Train the domain classifier that `edgegan eval` scores with."),
}


# Packages that only the extras install -> the extra that brings them.
OPTIONAL_DEPENDENCIES = {
    "torch": "train",
    "onnx": "export",
    "onnxscript": "export",
    "matplotlib": "plot",
    "tritonclient": "triton",
}


def _missing_extra(command: str, exc: ModuleNotFoundError) -> click.ClickException:
    extra = OPTIONAL_DEPENDENCIES.get((exc.name or "").split(".")[0], "all")
    return click.ClickException(
        f"`edgegan {command}` needs {exc.name!r}, which is not installed: {install_hint(extra)}"
    )


def _os_error(exc: OSError) -> click.ClickException:
    """ "No space left on device: /path/the/user/named" (atomic writes re-raise naming the target, not a temp file)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        return click.ClickException(reason)
    both = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
    return click.ClickException(f"{reason}: {both}")


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise _missing_extra(name, exc) from exc
        command = getattr(module, attr, None)
        if command is None:
            raise click.ClickException(f"`edgegan {name}` is not available in this version of edgegan")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing commands imports none of them (no torch for `edgegan --help`).
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        """The one error boundary: our typed errors, OSError (ENOSPC, EROFS, EACCES, ENOENT, ...) and MemoryError
        become one line and exit status 1; anything else is a bug and keeps its traceback."""
        try:
            return super().invoke(ctx)
        except EdgeganError as exc:
            raise click.ClickException(str(exc)) from exc
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in OPTIONAL_DEPENDENCIES:
                raise
            raise _missing_extra(ctx.invoked_subcommand or "", exc) from exc
        except OSError as exc:
            raise _os_error(exc) from exc
        except MemoryError as exc:
            raise click.ClickException(
                "out of memory" + (f" ({exc})" if str(exc) else "") + ": ask for less at once (a smaller -n or "
                "--batch-size); `edgegan sample --npy` streams images to disk"
            ) from exc
        except KeyboardInterrupt:
            click.echo("interrupted; files already written are complete (writes are atomic)", err=True)
            sys.exit(130)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgegan")
def main() -> None:
    """Train GAN/DCGAN generators, export them to verified ONNX, and sample or benchmark them anywhere."""
