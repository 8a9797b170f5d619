"""Commands for the torch-free half of `edgegan` (sample; bench and eval are added beside it).

Each command only parses options and calls library functions; numpy, onnxruntime and Pillow are imported inside
the command so `edgegan --help` and `edgegan sample --help` stay instant. Errors are EdgeganError subclasses,
which the `edgegan` group prints as "Error: ..." with exit status 1.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import click

PROVIDER_CHOICES = ("cpu", "cuda", "tensorrt", "auto")


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


@click.command("eval")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--dataset", required=True, help="The data the generator learned: mnist, fashion-mnist, npz, folder.")
@click.option("--data-dir", type=click.Path(), default=None, help="IDX folder, .npz file or image tree.")
@click.option("-n", "--num", "n", type=int, default=10000, show_default=True, help="Generated images to score.")
@click.option("--evaluator", "evaluator_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Evaluator .onnx [default: ~/.cache/edgegan/evaluators/DATASET.onnx].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the contract's latent rule.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every figure to this JSON file.")
@click.option("--provider", type=click.Choice(PROVIDER_CHOICES), default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores).")
@click.option("--batch-size", type=int, default=256, show_default=True, help="Images per session run.")
@click.option("--no-floor", is_flag=True, help="Skip the real-vs-real floor.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write cached reference statistics.")
def evaluate(model: Path, dataset: str, data_dir: str | None, n: int, evaluator_path: Path | None, seed: int,
             json_path: Path | None, provider: str, threads: int | None, batch_size: int, no_floor: bool,
             no_cache: bool) -> None:
    """Score MODEL's images: FID and KID on the evaluator's features against the real test split, class
    coverage, confidence, precision and recall, beside the real-vs-real floor; then per class (asked-for label,
    or predicted class for unconditional models) label accuracy, recall and diversity, with a mode-collapse
    warning on stderr (and in --json) when a class falls far below real data. numpy + onnxruntime only."""
    from edgegan.runtime.evaluation.per_class import format_warning
    from edgegan.runtime.evaluation.quality import evaluate as run_evaluation
    from edgegan.runtime.evaluation.quality import format_report, write_json

    if json_path is not None:
        from edgegan.runtime.files import check_writable

        check_writable(json_path, "--json")  # before the work, not after it
    report = run_evaluation(model, dataset, data_dir=data_dir, n=n, evaluator=evaluator_path, seed=seed,
                            provider=provider, threads=threads, batch_size=batch_size, floor=not no_floor,
                            cache=not no_cache)
    click.echo(format_report(report))
    for warning in report.warnings:  # mode collapse: never silent, and on stderr so a piped report still shows it
        click.echo(format_warning(warning), err=True)
    if json_path is not None:
        click.echo(f"wrote {write_json(report, json_path)}")


@click.command("bench")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--batch", "batches", default="1,8,64", show_default=True, help="Batch sizes, comma-separated.")
@click.option("--threads", default="1", show_default=True, help="Thread counts, comma-separated (e.g. 1,2).")
@click.option("--provider", "providers", default="cpu", show_default=True,
              help="Providers, comma-separated: cpu, cuda, tensorrt, auto.")
@click.option("--ort", "setups", multiple=True, metavar="KEY=VALUE,...",
              help="onnxruntime session set-up to compare, repeatable: 'default' or opt=disable|basic|extended|all, "
                   "spin=on|off, mode=sequential|parallel, split=N, preopt=on|off.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed calls after the first one.")
@click.option("--iters", type=int, default=None, help="Timed calls per configuration.")
@click.option("--duration", type=float, default=None, help="Seconds of timed calls per configuration [default: 2].")
@click.option("--rounds", type=int, default=10, show_default=True, help="Interleaved rounds the calls are spread over.")
@click.option("--torch", "torch_source", default=None, metavar="RUN|CKPT",
              help="Also time this checkpoint's generator in PyTorch (needs edgegan[train]).")
@click.option("--torch-compile/--no-torch-compile", default=True, show_default=True,
              help="With --torch, also time torch.compile.")
@click.option("--pin-core", type=int, default=None, metavar="K", help="Run everything on CPU core K.")
@click.option("--no-peak", is_flag=True, help="Skip the machine-peak matrix product.")
@click.option("--peak-size", type=int, default=2048, show_default=True, help="n of the n^3 peak matrix product.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every row, ratio, peak and the machine as JSON.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write a markdown table.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG of latency and images/s against batch (needs matplotlib).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
def bench(models: tuple[Path, ...], batches: str, threads: str, providers: str, setups: tuple[str, ...], warmup: int,
          iters: int | None, duration: float | None, rounds: int, torch_source: str | None, torch_compile: bool,
          pin_core: int | None, no_peak: bool, peak_size: int, json_path: Path | None, markdown: Path | None,
          plot: Path | None, quiet: bool) -> None:
    """Latency of MODELS (generator.onnx and variants) per provider x threads x batch, interleaved, with the
    machine's measured peak and, with --torch, PyTorch eager/compile beside every row. numpy + onnxruntime only."""
    from edgegan.runtime.bench.harness import BenchError, parse_int_list, parse_providers, parse_setup, run_bench
    from edgegan.runtime.bench.report import format_table, require_matplotlib, write_json, write_markdown, write_plot

    # Parse everything before any timing, so a typo fails in a second, not after the run.
    batch_list, thread_list = parse_int_list(batches, "batch"), parse_int_list(threads, "threads")
    provider_list = parse_providers(providers)
    setup_list = [parse_setup(s) for s in setups] or [parse_setup("default")]
    if peak_size <= 0:
        raise BenchError(f"--peak-size must be positive, got {peak_size}")
    if plot is not None:
        require_matplotlib()
    from edgegan.runtime.files import check_writable

    for path, option in ((json_path, "--json"), (markdown, "--markdown"), (plot, "--plot")):
        if path is not None:
            check_writable(path, option)
    log = None if quiet else (lambda message: click.echo(f"[bench] {message}", err=True))
    result = run_bench(list(models), batches=batch_list, threads=thread_list, providers=provider_list,
                       setups=setup_list, warmup=warmup, iters=iters, duration=duration, rounds=rounds,
                       torch=torch_source, torch_compile=torch_compile, pin_core=pin_core, peak=not no_peak,
                       peak_size=peak_size, log=log)
    click.echo(format_table(result))
    for path, write in ((json_path, write_json), (markdown, write_markdown), (plot, write_plot)):
        if path is not None:
            click.echo(f"wrote {write(result, path)}")
