"""`edgegan export`: a thin click command over edgegan.export.pipeline.export_checkpoint (torch is imported only when
the command runs, not when `edgegan --help` lists it).

The variants' flags (--fp16 ... --web) and their parameters (--trt-batch, --web-runtime) are not written here: the
command reads them from the variant table (edgegan.export.variants.VARIANTS) each time its parameters are asked
for, so a new row is a new flag, and the values reach export_checkpoint as its variant keywords.
"""

from __future__ import annotations

import functools
from typing import Any

import click

from edgegan.runtime.cli_options import EdgeganCommand, Say, check_json_path, json_option, quiet_option

VARIANTS_AFTER = "opset"  # the variant flags are listed after this option in --help


@functools.cache
def variant_flags(variants: tuple) -> tuple[click.Option, ...]:
    """The click options of a variant table: per row its flag, then its parameters (one set per table)."""
    options: list[click.Option] = []
    for variant in variants:
        options.append(click.Option([variant.flag, variant.option], is_flag=True, help=variant.help))
        for param in variant.params:
            shown = param.cli_default is not None
            options.append(
                click.Option(
                    [param.flag, param.name],
                    default=param.cli_default if shown else param.default,
                    show_default=shown,
                    metavar=param.metavar,
                    help=param.help,
                )
            )
    return tuple(options)


class VariantTableCommand(EdgeganCommand):
    """A command whose parameters are its own plus the variant table's flags, read from the table when asked for.

    The list is rebuilt only when the table changes and is otherwise the same object: click appends its --help
    option to `params` and pops it back off.
    """

    _table: tuple | None = None

    @property
    def params(self) -> list[click.Parameter]:
        from edgegan.export import variants

        if self._table is not variants.VARIANTS:
            own = self._own_params
            at = next(i for i, p in enumerate(own) if p.name == VARIANTS_AFTER) + 1
            self._table, self._all = variants.VARIANTS, [*own[:at], *variant_flags(variants.VARIANTS), *own[at:]]
        return self._all

    @params.setter
    def params(self, value: list[click.Parameter]) -> None:
        self._own_params, self._table = list(value), None


def variant_values(given: dict[str, Any]) -> dict[str, Any]:
    """The variant flags' values checked as the table says (a usage error, exit 2), as export_checkpoint keywords."""
    from edgegan.export import variants
    from edgegan.export.variants.variant import resolve
    from edgegan.runtime.errors import EdgeganError

    values = dict(given)
    for variant in variants.VARIANTS:
        for param in variant.params:
            value = values[param.name]
            if param.needs_flag and value != param.default and not values[variant.option]:
                raise click.UsageError(f"{param.flag} needs {variant.flag}")
            try:
                if param.parse is not None and value is not None:
                    value = resolve(param.parse)(value)
                values[param.name] = param.checked(value)
            except (EdgeganError, ValueError) as exc:
                raise click.BadParameter(str(exc), param_hint=param.flag) from None
    return values


@click.command("export", cls=VariantTableCommand)
@click.argument("source", metavar="RUN|CKPT", type=click.Path(exists=True, path_type=str))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Export folder (generator.onnx, variants, export_report.json).",
)
@click.option("--opset", default=18, show_default=True, type=click.IntRange(13, None), help="ONNX opset.")
@click.option(
    "--pixels",
    type=click.Choice(["float", "uint8"]),
    default="float",
    show_default=True,
    help="Output float32 NCHW in [-1, 1], or uint8 NHWC with the scaling folded into the graph.",
)
@click.option(
    "--optimize/--no-optimize",
    default=True,
    show_default=True,
    help="Ship generator.onnx in the exact phase-convolution form (faster on CPU) or as torch exported it.",
)
@click.option("--no-ema", is_flag=True, help="Export the raw generator instead of its EMA weights.")
@click.option(
    "--force",
    is_flag=True,
    help="Replace OUT as a whole (every file in it, not only an earlier export), swapped in once the new "
    "export is complete. Without it OUT may hold other files, but none the export writes.",
)
@json_option("the report (as OUT/export_report.json)", bare_flag=True)
@quiet_option()
@click.option(
    "--atol",
    multiple=True,
    metavar="F|VARIANT=F",
    help="Max absolute error every numeric check allows (vs PyTorch, vs generator.onnx, batch invariance, "
    "onnx.reference), instead of the precision's own; repeatable per variant, e.g. --atol int8=0.08. "
    "Recorded in the report.",
)
@click.option(
    "--rtol",
    multiple=True,
    metavar="F|VARIANT=F",
    help="Relative part: a value passes when |out - ref| <= atol + rtol * |ref| [default: 0].",
)
@click.option(
    "--no-quality-gate",
    is_flag=True,
    help="Skip the quality gate even when an evaluator is cached (the report says so).",
)
@click.option(
    "--evaluator",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Evaluator .onnx for the quality gate [default: ~/.cache/edgegan/evaluators/DATASET.onnx].",
)
@click.option(
    "--max-fid-delta",
    type=float,
    default=None,
    metavar="F",
    help="Fail when a variant's FID against the fp32 model's images exceeds F.",
)
@click.option(
    "--gate-n",
    type=click.IntRange(4, None),
    default=2000,
    show_default=True,
    help="Images per variant the quality gate scores.",
)
@click.option(
    "--min-recall",
    type=click.FloatRange(0, 1),
    default=None,
    metavar="R",
    help="Fail when the model's recall against the real test images (conditional: any class's) is below "
    "R; a collapsed generator scores ~0.",
)
@click.option(
    "--data-dir", type=click.Path(), default=None, help="Real data for --min-recall [default: the run's --data-dir]."
)
def export(
    source: str,
    out_dir: str,
    opset: int,
    pixels: str,
    no_ema: bool,
    force: bool,
    json_path: str | None,
    quiet: bool,
    atol: tuple[str, ...],
    rtol: tuple[str, ...],
    no_quality_gate: bool,
    evaluator: str | None,
    max_fid_delta: float | None,
    gate_n: int,
    optimize: bool,
    min_recall: float | None,
    data_dir: str | None,
    **table_flags: Any,
) -> None:
    """Export a run's (or checkpoint's) generator to a verified generator.onnx plus the variants asked for.

    Every file is verified before it is moved into OUT; the checks, errors, sizes and operator counts go to
    OUT/export_report.json and are printed as a table. If anything fails, OUT is left as it was; symlinks inside
    OUT are refused, so nothing outside it is written or removed.
    """
    from edgegan.export.check_records import ToleranceOptionError, parse_tolerances

    options = variant_values(table_flags)

    for values, flag in ((atol, "--atol"), (rtol, "--rtol")):
        try:
            parse_tolerances(values, flag)  # the numbers now; the variant names once the variants are known
        except ToleranceOptionError as exc:
            raise click.BadParameter(str(exc), param_hint=flag) from None
    check_json_path(json_path)

    from edgegan.export.pipeline import export_checkpoint
    from edgegan.export.quality_gate import format_gate
    from edgegan.export.report import format_table

    report = export_checkpoint(
        source,
        out_dir,
        opset=opset,
        pixels=pixels,
        use_ema=not no_ema,
        force=force,
        progress=not quiet,
        evaluator=evaluator,
        max_fid_delta=max_fid_delta,
        gate_n=gate_n,
        optimize=optimize,
        min_recall=min_recall,
        data_dir=data_dir,
        atol=list(atol) or None,
        rtol=list(rtol) or None,
        quality_gate=not no_quality_gate,
        **options,
    )
    say = Say(quiet, json_path)
    say.result(format_table(report))
    say.result(format_gate(report.get("quality_gate")))
    say.result(f"report: {out_dir}/export_report.json")
    say.json(report, json_path)
