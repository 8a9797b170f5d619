"""The standard latency suite: DCGAN 28x28 and 64x64 and the MLP GAN, every export variant, PyTorch beside each.

1. Build (in a child process, so this one loads torch only through the benchmark's baseline): each generator
   at width 64 with random weights and BatchNorm statistics warmed by train-mode forwards (timing does not
   depend on training), saved as a run, exported with `edgegan.export.pipeline.export_checkpoint` as fp32 + fp16 +
   int8 and again with --pixels uint8, plus "fp32-opt": `edgegan.export.graph_forms.optimize_fp32` of the fp32 file.
   A variant whose export fails is left out and named in the results.
2. Time each model family with `edgegan.runtime.bench.harness.run_bench` (batch 1, 8, 64; 1 and 2 threads; the torch
   baseline interleaved), then the edge profile: one thread on one pinned core.
3. Write benchmarks/results/<machine>.md (tables + notes), .json (every row) and .png (latency and images/s
   against batch per model).

Usage: python -m benchmarks.run_suite [--duration S | --iters N] [--no-compile] [--only dcgan28,...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# name -> (arch, image size); width 64 everywhere (docs/reference_figures.md's reference models), nz 100, one channel.
FAMILIES = {"dcgan28": ("dcgan", 28), "dcgan64": ("dcgan", 64), "gan28": ("gan", 28)}
VARIANTS = (("fp32", "generator.onnx"), ("fp16", "generator.fp16.onnx"), ("int8", "generator.int8.onnx"))


def build_family(name: str, work: Path) -> dict:
    """Warmed random generator -> run folder -> exports (fp32, fp16, int8; uint8 pixels). Runs in the child."""
    import torch

    from edgegan.export.pipeline import export_checkpoint
    from edgegan.trainer.checkpoint import save_weights_checkpoint
    from edgegan.trainer.config import ModelConfig, TrainConfig
    from edgegan.trainer.models import build_discriminator, build_generator

    arch, size = FAMILIES[name]
    torch.manual_seed(0)
    cfg = TrainConfig(
        model=ModelConfig(arch=arch, nz=100, image_size=size, channels=1, width=64), dataset="fashion-mnist"
    )
    G, D = build_generator(cfg.model), build_discriminator(cfg.model)
    G.train()
    with torch.no_grad():
        for _ in range(3):
            G(torch.randn(64, cfg.model.nz))  # BatchNorm running stats away from 0/1
    run = work / "runs" / name
    save_weights_checkpoint(cfg, G.state_dict(), run / "checkpoints" / "last.pt", D=D.state_dict())
    models, failed = {}, {}
    out = work / "models" / name
    try:
        export_checkpoint(run, out, fp16=True, int8=True, force=True, progress=False)
    except Exception as exc:  # noqa: BLE001 - record it, export what still works
        failed["int8"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        export_checkpoint(run, out, fp16=True, force=True, progress=False)
    for variant, file in VARIANTS:
        if (out / file).is_file():
            models[variant] = str(out / file)
    try:  # the exact fp32 rewrites of export/graph_forms.py, beside the plain export (not applied by export yet)
        import onnx

        from edgegan.export.graph_forms import optimize_fp32
    except ImportError as exc:
        failed["fp32-opt"] = f"edgegan.export.graph_forms.optimize_fp32 unavailable: {exc}"
    else:
        onnx.save(optimize_fp32(onnx.load(str(out / "generator.onnx"))), str(out / "generator.opt.onnx"))
        models["fp32-opt"] = str(out / "generator.opt.onnx")
    try:
        export_checkpoint(run, work / "models" / f"{name}-uint8", pixels="uint8", force=True, progress=False)
        models["uint8"] = str(work / "models" / f"{name}-uint8" / "generator.onnx")
    except Exception as exc:  # noqa: BLE001
        failed["uint8"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return {"run": str(run), "models": models, "failed": failed}


def build_all(names: list[str], work: Path) -> dict:
    """build_family for each name in a child process (this process stays torch-free until the baseline loads)."""
    code = (
        "import json, sys; "
        "from benchmarks.run_suite import build_family; "  # `python -c` in REPO: the root is on sys.path
        "from pathlib import Path; "
        "print(json.dumps({n: build_family(n, Path(sys.argv[1])) for n in sys.argv[2].split(',')}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(work), ",".join(names)], cwd=REPO, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"building the models failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plot_suite(results: dict, path: Path) -> Path:
    """One row of two panels per model family: p50 latency and images/s against batch, standard profile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (matplotlib.ticker.ScalarFormatter below)

    from edgegan.runtime.files import atomic_write

    names = list(results)
    fig, axes = plt.subplots(len(names), 2, figsize=(13, 4.2 * len(names)), squeeze=False)
    for (ax_lat, ax_thr), name in zip(axes, names):
        lines: dict[str, list[dict]] = {}
        for row in results[name]["standard"]["rows"]:
            if row.get("p50_ms") is None:
                continue
            variant = (
                row["engine"] if row["engine"].startswith("torch") else results[name]["variant_of"].get(row["model"])
            )
            lines.setdefault(f"{variant} {row['threads']}t", []).append(row)
        colors = matplotlib.colormaps["tab20"].colors
        for i, (label, rows) in enumerate(sorted(lines.items())):
            rows.sort(key=lambda r: r["batch"])
            style = "--" if rows[0]["engine"].startswith("torch") else "-"
            batches = [r["batch"] for r in rows]
            ax_lat.plot(batches, [r["p50_ms"] for r in rows], style, marker="o", label=label, color=colors[i % 20])
            ax_thr.plot(
                batches, [r["images_per_s"] for r in rows], style, marker="o", label=label, color=colors[i % 20]
            )
        for ax, ylabel in ((ax_lat, "p50 latency (ms)"), (ax_thr, "images / s")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(sorted({r["batch"] for r in results[name]["standard"]["rows"]}))
            ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.set_xlabel("batch")
            ax.set_ylabel(ylabel)
            ax.set_title(name)
            ax.grid(True, which="both", alpha=0.3)
        ax_thr.legend(fontsize=7, ncol=2, loc="best")
    machine = next(iter(results.values()))["standard"]["machine"]
    fig.suptitle(
        f"edgegan bench suite: {machine['cpu']}, {machine['usable_cpus']} CPUs (solid: onnxruntime, dashed: PyTorch)"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100), binary=True)
    finally:
        plt.close(fig)


def _ratio_summary(result: dict, variant_of: dict) -> list[str]:
    lines = []
    for row in result["rows"]:
        if row["engine"] != "onnxruntime" or row.get("ratio") is None:
            continue
        share = f", {100 * row['peak_share']:.0f}% of peak" if row.get("peak_share") else ""
        useful = (
            f" ({100 * row['useful_peak_share']:.0f}% on the ConvTranspose work)"
            if row.get("useful_peak_share") and abs(row["useful_peak_share"] - (row.get("peak_share") or 0)) > 0.005
            else ""
        )
        lo, hi = row.get("ratio_rounds") or (None, None)
        spread = f" [rounds {lo:.2f}-{hi:.2f}]" if lo is not None else ""
        lines.append(
            f"{variant_of.get(row['model'], row['model'])}, {row['threads']} thr, batch {row['batch']}: "
            f"{row['ratio']:.2f} of torch eager{spread}{share}{useful}"
        )
    return lines


def write_results(results: dict, out: Path, started: float, minutes: float | None) -> None:
    """benchmarks/results/<machine>.md (tables, ratios), .json (every row) and .png."""
    from edgegan.runtime.bench.harness import machine_slug
    from edgegan.runtime.bench.report import to_markdown
    from edgegan.runtime.files import atomic_write

    machine = next(iter(results.values()))["standard"]["machine"]
    slug = machine_slug(machine)
    out.mkdir(parents=True, exist_ok=True)
    when = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(started))
    parts = [
        f"# edgegan bench suite: {machine['cpu']}, {machine['usable_cpus']} CPUs",
        "",
        f"`python -m benchmarks.run_suite`, {when}" + (f", {minutes:.0f} min" if minutes else "") + ". "
        "Width-64 generators with random weights and warmed BatchNorm statistics (latency does not depend on "
        "training), exported by `export_checkpoint` (fp32, fp16, int8; uint8: `--pixels uint8`; fp32-opt: "
        "`edgegan.export.graph_forms.optimize_fp32` of the fp32 file). Each table is one `run_bench` call: onnxruntime "
        "and PyTorch rows timed interleaved in the same process.",
        "",
        f"![latency and images/s against batch]({slug}.png)",
        "",
    ]
    for name, res in results.items():
        if res["failed"]:
            parts += [
                f"**{name}: variants left out** (their export failed): "
                + "; ".join(f"{k}: `{v}`" for k, v in res["failed"].items()),
                "",
            ]
        parts += [
            to_markdown(res["standard"], f"{name}: standard profile (1 and 2 threads)"),
            "Ratios, onnxruntime / torch eager p50:",
            "",
        ]
        parts += [f"- {line}" for line in _ratio_summary(res["standard"], res["variant_of"])] + [""]
        if "edge" in res:
            parts += [to_markdown(res["edge"], f"{name}: edge profile (1 thread pinned to one core)"), ""]
    md = atomic_write(out / f"{slug}.md", lambda f: f.write("\n".join(parts)), binary=False)
    js = atomic_write(
        out / f"{slug}.json", lambda f: f.write(json.dumps(results, indent=2, default=str) + "\n"), binary=False
    )
    png = plot_suite(results, out / f"{slug}.png")
    print(f"[suite] wrote {md}, {js}, {png}", file=sys.stderr)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(FAMILIES), help="families, comma-separated")
    parser.add_argument("--duration", type=float, default=None, help="seconds of timed calls per row [2]")
    parser.add_argument("--iters", type=int, default=None, help="timed calls per row (instead of --duration)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile rows")
    parser.add_argument("--no-edge", action="store_true", help="skip the pinned one-core profile")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--keep", type=Path, help="build the models here and keep them")
    parser.add_argument("--render", type=Path, metavar="JSON", help="only rewrite .md and .png from a suite .json")
    args = parser.parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text())
        write_results(results, args.out, started=args.render.stat().st_mtime, minutes=None)
        return results
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")

    from edgegan.runtime.bench.harness import run_bench

    log = lambda message: print(f"[suite] {message}", file=sys.stderr, flush=True)  # noqa: E731
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        log(f"building and exporting {', '.join(names)} in {work}")
        built = build_all(names, work)
        results: dict[str, dict] = {}
        timing = dict(iters=args.iters, duration=args.duration, rounds=args.rounds, torch_compile=not args.no_compile)
        for name in names:
            models = built[name]["models"]
            variant_of = {path: variant for variant, path in models.items()}
            variant_of[built[name]["run"]] = "torch"
            log(f"{name}: standard profile ({', '.join(models)})")
            standard = run_bench(
                list(models.values()), batches=(1, 8, 64), threads=(1, 2), torch=built[name]["run"], log=log, **timing
            )
            results[name] = {"standard": standard, "variant_of": variant_of, "failed": built[name]["failed"]}
            if not args.no_edge:
                log(f"{name}: edge profile (1 thread pinned to core {min(os.sched_getaffinity(0))})")
                results[name]["edge"] = run_bench(
                    list(models.values()),
                    batches=(1, 8, 64),
                    threads=(1,),
                    pin_core=min(os.sched_getaffinity(0)),
                    torch=built[name]["run"],
                    log=log,
                    **timing,
                )

    write_results(results, args.out, started=started, minutes=(time.time() - started) / 60)
    return results


if __name__ == "__main__":
    main()
