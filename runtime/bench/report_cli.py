"""`edgegan bench-report`: `edgegan bench --json` runs from several machines in one table and one plot, with
ratios to a baseline run (a thin layer over merge.merge_runs; the merge and report modules load when it runs)."""

from __future__ import annotations

from pathlib import Path

import click

from edgegan.runtime.cli_options import EdgeganCommand

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("bench-report", cls=EdgeganCommand)
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--baseline",
    default=None,
    metavar="FILE|LABEL",
    help="The run the ratios are relative to: one of the files, or a machine label [default: the first].",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    metavar="FILE",
    help="Write the merged runs and rows as JSON to FILE ('-': stdout, and nothing else there).",
)
@click.option("--markdown", type=_FILE, default=None, help="Write the merged table as markdown.")
@click.option(
    "--plot",
    type=_FILE,
    default=None,
    help="Write a PNG of latency and images/s per configuration, one bar per device (needs matplotlib).",
)
@click.option("-q", "--quiet", is_flag=True, help="No notes on stderr (the table still prints).")
def bench_report(
    runs: tuple[Path, ...],
    baseline: str | None,
    json_path: str | None,
    markdown: Path | None,
    plot: Path | None,
    quiet: bool,
) -> None:
    """Merge RUNS (`edgegan bench --json` files, one per machine: laptop, Raspberry Pi, Jetson) into one table of
    latency and images/s by device, model, batch and threads, with p50 / the baseline run's p50 beside each row."""
    import json

    from edgegan.runtime.bench.merge import merge_runs
    from edgegan.runtime.bench.report import (
        format_merged_table,
        require_matplotlib,
        write_json,
        write_merged_markdown,
        write_merged_plot,
    )
    from edgegan.runtime.files import check_writable

    to_stdout = json_path == "-"  # the JSON is then the only thing on stdout
    if plot is not None:
        require_matplotlib()
    for path, option in ((None if to_stdout else json_path, "--json"), (markdown, "--markdown"), (plot, "--plot")):
        if path is not None:
            check_writable(path, option)
    merged = merge_runs(list(runs), baseline=baseline)
    if to_stdout:
        click.echo(json.dumps(merged, indent=2, default=str))
    else:
        click.echo(format_merged_table(merged))
    for path, write in (
        (None if to_stdout else json_path, write_json),
        (markdown, write_merged_markdown),
        (plot, write_merged_plot),
    ):
        if path is not None:
            written = write(merged, path)
            if not quiet:
                click.echo(f"wrote {written}", err=True)
