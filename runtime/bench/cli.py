"""`edgegan bench`: the command that times generator files (a thin layer over harness.run_bench).

It parses and checks every option before anything is timed; the harness and report modules are imported inside
the command, so `edgegan --help` imports none of them.
"""

from __future__ import annotations

from pathlib import Path

import click

from edgegan.runtime.cli_options import (
    CommaList,
    EdgeganCommand,
    Say,
    check_json_path,
    deprecated_alias,
    json_option,
    quiet_option,
)
from edgegan.runtime.providers import PROVIDERS


@click.command("bench", cls=EdgeganCommand)
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--batch-sizes",
    "batches",
    type=CommaList(),
    default="1,8,64",
    show_default=True,
    help="Batch sizes to time, comma-separated (each as sample's --batch-size).",
)
@deprecated_alias("--batch", "batches", "--batch-sizes", type=CommaList())
@click.option(
    "--threads",
    type=CommaList(),
    default="1",
    show_default=True,
    help="onnxruntime intra-op threads, comma-separated to compare (e.g. 1,2).",
)
@click.option(
    "--provider",
    "providers",
    type=CommaList(PROVIDERS, "provider"),
    default="cpu",
    show_default=True,
    help=f"Providers, comma-separated to compare: {', '.join(PROVIDERS)}.",
)
@click.option(
    "--ort",
    "setups",
    multiple=True,
    metavar="KEY=VALUE,...",
    help="onnxruntime session set-up to compare, repeatable: 'default' or opt=disable|basic|extended|all, "
    "spin=on|off, mode=sequential|parallel, split=N, preopt=on|off.",
)
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed calls after the first one.")
@click.option("--iters", type=int, default=None, help="Timed calls per configuration.")
@click.option("--duration", type=float, default=None, help="Seconds of timed calls per configuration [default: 2].")
@click.option("--rounds", type=int, default=10, show_default=True, help="Interleaved rounds the calls are spread over.")
@click.option(
    "--torch",
    "torch_source",
    default=None,
    metavar="RUN|CKPT",
    help="Also time this checkpoint's generator in PyTorch (needs edgegan[train]).",
)
@click.option(
    "--torch-compile/--no-torch-compile", default=True, show_default=True, help="With --torch, also time torch.compile."
)
@click.option(
    "--torch-passive",
    is_flag=True,
    help="With --torch, add a row of eager torch with OMP_WAIT_POLICY=PASSIVE (friendlier to shared "
    "machines); ratios stay against torch's default policy.",
)
@click.option("--pin-core", type=int, default=None, metavar="K", help="Run everything on CPU core K.")
@click.option("--no-peak", is_flag=True, help="Skip the machine-peak matrix product.")
@click.option("--peak-size", type=int, default=2048, show_default=True, help="n of the n^3 peak matrix product.")
@json_option("every row, ratio, peak and the machine")
@click.option(
    "--markdown", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write a markdown table."
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a PNG of latency and images/s against batch (needs matplotlib).",
)
@quiet_option()
def bench(
    models: tuple[Path, ...],
    batches: tuple[int, ...],
    threads: tuple[int, ...],
    providers: tuple[str, ...],
    setups: tuple[str, ...],
    warmup: int,
    iters: int | None,
    duration: float | None,
    rounds: int,
    torch_source: str | None,
    torch_compile: bool,
    torch_passive: bool,
    pin_core: int | None,
    no_peak: bool,
    peak_size: int,
    json_path: str | None,
    markdown: Path | None,
    plot: Path | None,
    quiet: bool,
) -> None:
    """Latency of MODELS (generator.onnx and variants) per provider x threads x batch, interleaved, with the
    machine's measured peak and, with --torch, PyTorch eager/compile beside every row. numpy + onnxruntime only."""
    from edgegan.runtime.bench.harness import BenchError, parse_setup, run_bench
    from edgegan.runtime.bench.report import format_table, require_matplotlib, write_markdown, write_plot

    # Parse everything before any timing, so a typo fails in a second, not after the run (the lists are
    # checked by CommaList as the options are parsed).
    setup_list = [parse_setup(s) for s in setups] or [parse_setup("default")]
    if peak_size <= 0:
        raise BenchError(f"--peak-size must be positive, got {peak_size}")
    if plot is not None:
        require_matplotlib()
    from edgegan.runtime.files import check_writable

    check_json_path(json_path)
    for path, option in ((markdown, "--markdown"), (plot, "--plot")):
        if path is not None:
            check_writable(path, option)
    if torch_source is not None:
        _warn_if_unrelated(models, torch_source)
    say = Say(quiet, json_path)
    log = None if quiet else (lambda message: click.echo(f"[bench] {message}", err=True))
    result = run_bench(
        list(models),
        batches=list(batches),
        threads=list(threads),
        providers=list(providers),
        setups=setup_list,
        warmup=warmup,
        iters=iters,
        duration=duration,
        rounds=rounds,
        torch=torch_source,
        torch_compile=torch_compile,
        torch_passive=torch_passive,
        pin_core=pin_core,
        peak=not no_peak,
        peak_size=peak_size,
        log=log,
    )
    say.result(format_table(result))
    say.json(result, json_path)
    for path, write in ((markdown, write_markdown), (plot, write_plot)):
        if path is not None:
            say.result(f"wrote {write(result, path)}")


def _warn_if_unrelated(models: tuple[Path, ...], torch_source: str) -> None:
    """Warn, before any timing, when the --torch checkpoint is not the generator a MODEL holds (another arch, nz,
    class count or image shape): its rows would time another model and the ratios compare different generators.
    The checkpoint is read through the torch baseline's own runner (runtime never imports the trainer)."""
    import warnings

    from edgegan.runtime.bench.harness import load_baseline
    from edgegan.runtime.session import load_session, read_contract, resolve_model_path

    probe = load_baseline("torch")(str(torch_source), 1, compile=False)[0]
    probe.load()
    cfg = getattr(probe, "cfg", None)  # the checkpoint's ModelConfig (trainer/torch_bench.py TorchRunner)
    if cfg is None:
        return
    for model in models:
        path = resolve_model_path(model)
        if path.suffix.lower() == ".plan":
            continue  # an engine's contract is its generator.onnx's, read when it loads
        contract = read_contract(load_session(path)[0])
        pairs = (
            ("arch", cfg.arch, contract.arch),
            ("nz", cfg.nz, contract.nz),
            ("classes", cfg.num_classes, contract.num_classes),
            (
                "image",
                f"{cfg.channels}x{cfg.image_size}x{cfg.image_size}",
                f"{contract.channels}x{contract.height}x{contract.width}",
            ),
        )
        diffs = [f"{name} {theirs} vs {ours}" for name, theirs, ours in pairs if theirs != ours]
        if diffs:
            warnings.warn(
                f"--torch {torch_source} is not the generator {model} holds ({', '.join(diffs)}): its "
                "rows time another model, so the torch ratios compare different generators",
                UserWarning,
                stacklevel=2,
            )
