"""The one option vocabulary every `edgegan` command speaks (click only; nothing heavy is imported here).

Same name, same idea, in every command:
    --batch-size N      images per run of the model (one size); bench sweeps --batch-sizes 1,8,64
    --threads N         intra-op threads (onnxruntime; torch in `evaluator train`); bench sweeps --threads 1,2
    --provider P        one of edgegan.runtime.providers.PROVIDERS; bench sweeps --provider cpu,cuda
    --out DIR           a folder (train's run, export's model folder)
    -o, --output FILE   one file (sample's grid, evaluator train's .onnx)
    -q, --quiet         no progress lines or notes on stderr (results and warnings still print)
    --json FILE         the command's result as JSON; `-` prints it on stdout, and then nothing else goes there

A sweep in bench takes a comma list under the singular idea's name (`--threads 2` means 2 threads in bench and in
sample alike); only the batch size changes name (`--batch-sizes`), because `--batch-size` names one size.

Old spellings keep working for one release as hidden aliases (`deprecated_alias`), with a note on stderr; they need
the command to be an `EdgeganCommand`, which applies them before the command runs.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from edgegan.runtime.providers import PROVIDERS

STDOUT = "-"  # --json - : the JSON on stdout
_ALIASES = "edgegan.aliases"  # ctx.meta key: target parameter -> (old spelling, value)


class CommaList(click.ParamType):
    """ "1,8,64" -> (1, 8, 64): positive integers (or, given `choices`, names from it), no repeats, checked when
    the options are parsed, so a typo is a usage error before any work."""

    name = "list"

    def __init__(self, choices: Sequence[str] | None = None, noun: str = "value"):
        self.choices = tuple(choices) if choices is not None else None
        self.noun = noun  # what one choice is called in the message: "unknown provider gpu"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "A,B,..." if self.choices is not None else "N,N,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple:
        if isinstance(value, tuple):
            return value
        items = [t.strip() for t in str(value).split(",") if t.strip()]
        flag = param.opts[0] if param is not None and param.opts else "the option"
        if self.choices is not None:
            unknown = [t for t in items if t not in self.choices]
            if not items or unknown:
                self.fail(
                    f"unknown {self.noun} {', '.join(unknown) or repr(value)}; choose from "
                    f"{', '.join(self.choices)} (comma-separated)",
                    param,
                    ctx,
                )
            return tuple(dict.fromkeys(items))
        if not items or not all(re.fullmatch(r"\d+", t) and int(t) > 0 for t in items):
            self.fail(f"{flag} takes positive integers separated by commas (e.g. 1,8,64), got {value!r}", param, ctx)
        return tuple(dict.fromkeys(int(t) for t in items))


def quiet_option(help: str = "No progress lines or notes on stderr (results and warnings still print).") -> Callable:
    return click.option("-q", "--quiet", is_flag=True, help=help)


_BARE_JSON = "<bare --json>"  # what a bare `--json` (export's old flag) parses to


def _bare_json_is_stdout(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value == _BARE_JSON:
        click.echo("Note: a bare --json is deprecated and goes in the next release; use --json - (stdout)", err=True)
        return STDOUT
    return value


def json_option(what: str, bare_flag: bool = False) -> Callable:
    """--json FILE; `what` says what goes in it. bare_flag: also accept `--json` without a value (export's old
    flag, printing to stdout) for one release."""
    old_form: dict[str, Any] = (
        {"is_flag": False, "flag_value": _BARE_JSON, "callback": _bare_json_is_stdout} if bare_flag else {}
    )
    return click.option(
        "--json",
        "json_path",
        type=click.Path(dir_okay=False, allow_dash=True),
        default=None,
        metavar="FILE",
        help=f"Write {what} as JSON to FILE ('-': stdout, and nothing else there).",
        **old_form,
    )


def provider_option(**kwargs: Any) -> Callable:
    return click.option(
        "--provider",
        type=click.Choice(PROVIDERS),
        default="cpu",
        show_default=True,
        help="Execution provider (auto: the best one available).",
        **kwargs,
    )


def threads_option(engine: str = "onnxruntime") -> Callable:
    return click.option(
        "--threads",
        type=click.IntRange(1, None),
        default=None,
        metavar="N",
        help=f"{engine} intra-op threads [default: one per core].",
    )


def batch_size_option(default: int | None, help: str = "Images per run of the model.") -> Callable:
    return click.option("--batch-size", type=click.IntRange(1, None), default=default, show_default=True, help=help)


def output_option(help: str, **kwargs: Any) -> Callable:
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        metavar="FILE",
        help=help,
        **kwargs,
    )


def deprecated_alias(old: str, target: str, new: str, **kwargs: Any) -> Callable:
    """A hidden option `old` that sets parameter `target` (spelled `new` now) and says so on stderr.

    kwargs: click.option arguments (type, is_flag, flag_value, multiple) matching the target's.
    """

    def remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value not in (None, False, ()):  # the hidden option's default: not given
            ctx.meta.setdefault(_ALIASES, {})[target] = (old, new, value)

    name = "alias_" + old.lstrip("-").replace("-", "_") + "_for_" + target
    return click.option(old, name, hidden=True, expose_value=False, callback=remember, **kwargs)


class EdgeganCommand(click.Command):
    """A click command that applies `deprecated_alias` options before it runs (in every click >= 8.1, whatever
    order the options were parsed in) and refuses an old and a new spelling given together."""

    def invoke(self, ctx: click.Context) -> Any:
        for target, (old, new, value) in ctx.meta.get(_ALIASES, {}).items():
            if ctx.get_parameter_source(target) == click.core.ParameterSource.COMMANDLINE:
                raise click.UsageError(f"{old} is the old spelling of {new}; give only {new}", ctx)
            click.echo(f"Note: {old} is deprecated and goes in the next release; use {new}", err=True)
            ctx.params[target] = value
        with warnings.catch_warnings():
            warnings.showwarning = show_warning  # our warnings as one line each, not Python's file:line: source
            return super().invoke(ctx)


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A warning raised while a command runs, as one "Warning: ..." line on stderr (even with -q: warnings are
    what -q keeps), instead of Python's "file:line: Category: message" and the source line."""
    text = " ".join(str(message).split())
    click.echo(f"Warning: {text}", err=True)


def check_json_path(path: str | os.PathLike | None) -> None:
    """Refuse, before any work, a --json FILE that cannot be written (`-` is stdout and always fine)."""
    if path is not None and str(path) != STDOUT:
        from edgegan.runtime.files import check_writable

        check_writable(path, "--json")


def write_json(data: Any, path: str | os.PathLike) -> str:
    """`data` as indented JSON to `path` (atomically) or, for `-`, to stdout. Returns what to call it."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    if str(path) == STDOUT:
        click.echo(text, nl=False)
        return "stdout"
    from edgegan.runtime.files import atomic_write

    return str(atomic_write(path, lambda f: f.write(text), binary=False))


class Say:
    """Where a command's lines go: results to stdout (to stderr when `--json -` owns stdout), notes to stderr
    unless --quiet."""

    def __init__(self, quiet: bool = False, json_path: str | os.PathLike | None = None):
        self.quiet = quiet
        self.json_on_stdout = json_path is not None and str(json_path) == STDOUT

    def result(self, text: str) -> None:
        if not self.json_on_stdout:
            click.echo(text)
        elif not self.quiet:
            click.echo(text, err=True)

    def note(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def json(self, data: Any, path: str | os.PathLike | None) -> None:
        """Write --json's document (if asked for) and say where, as the other "wrote" lines."""
        if path is not None:
            where = write_json(data, path)
            if where != "stdout":
                self.result(f"wrote {where}")
