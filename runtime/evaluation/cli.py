"""`edgegan eval`: the command that scores a generator's images (a thin layer over quality.evaluate).

Like every edgegan command it only parses options; numpy, onnxruntime and the evaluation modules are imported
inside it, so `edgegan --help` imports none of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from edgegan.runtime.cli_options import (
    EdgeganCommand,
    Say,
    batch_size_option,
    check_json_path,
    json_option,
    provider_option,
    quiet_option,
    threads_option,
)


@click.command("eval", cls=EdgeganCommand)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--dataset", required=True, help="The data the generator learned: mnist, fashion-mnist, npz, folder.")
@click.option("--data-dir", type=click.Path(), default=None, help="IDX folder, .npz file or image tree.")
@click.option("-n", "--num", "n", type=int, default=10000, show_default=True, help="Generated images to score.")
@click.option(
    "--evaluator",
    "evaluator_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Evaluator .onnx [default: ~/.cache/edgegan/evaluators/DATASET.onnx].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the contract's latent rule.")
@json_option("every figure")
@provider_option()
@threads_option()
@batch_size_option(256)
@click.option("--no-floor", is_flag=True, help="Skip the real-vs-real floor.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write cached reference statistics.")
@quiet_option()
def evaluate(
    model: Path,
    dataset: str,
    data_dir: str | None,
    n: int,
    evaluator_path: Path | None,
    seed: int,
    json_path: str | None,
    provider: str,
    threads: int | None,
    batch_size: int,
    no_floor: bool,
    no_cache: bool,
    quiet: bool,
) -> None:
    """Score MODEL's images: FID and KID on the evaluator's features against the real test split, class
    coverage, confidence, precision and recall, beside the real-vs-real floor; then per class (asked-for label,
    or predicted class for unconditional models) label accuracy, recall and diversity, with a mode-collapse
    warning on stderr (and in --json) when a class falls far below real data. numpy + onnxruntime only."""
    from edgegan.runtime.evaluation.datasets import DATASETS
    from edgegan.runtime.evaluation.evaluator import how_to_make_evaluator
    from edgegan.runtime.evaluation.per_class import format_warning
    from edgegan.runtime.evaluation.quality import evaluate as run_evaluation
    from edgegan.runtime.evaluation.quality import format_report

    if dataset not in DATASETS:  # the one fix that works, not `evaluator train --dataset <unknown>`
        raise click.BadParameter(how_to_make_evaluator(dataset), param_hint="--dataset")
    check_json_path(json_path)  # before the work, not after it
    from edgegan.runtime.evaluation.datasets import check_data_dir

    check_data_dir(data_dir)
    say = Say(quiet, json_path)
    try:
        report = run_evaluation(
            model,
            dataset,
            data_dir=data_dir,
            n=n,
            evaluator=evaluator_path,
            seed=seed,
            provider=provider,
            threads=threads,
            batch_size=batch_size,
            floor=not no_floor,
            cache=not no_cache,
            progress=not quiet,
        )
    except OSError as exc:
        from edgegan.runtime.errors import EdgeganError
        from edgegan.runtime.files import cache_root

        where = os.path.abspath(exc.filename) if isinstance(exc.filename, str) else ""
        if not no_cache and where.startswith(str(cache_root()) + os.sep):  # the cache, not the user's files
            raise EdgeganError(
                f"cannot write the cache {exc.filename}: {exc.strerror or exc}; pass --no-cache to "
                "evaluate without it, or point XDG_CACHE_HOME at a writable folder"
            ) from exc
        raise
    say.result(format_report(report))
    for warning in report.warnings:  # mode collapse: never silent, and on stderr so a piped report still shows it
        click.echo(format_warning(warning), err=True)
    say.json(report.to_dict(), json_path)
