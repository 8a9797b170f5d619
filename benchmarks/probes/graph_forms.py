"""Graph forms side by side: naive fp32 export vs the exact rewrites of export/graph_forms.py vs int8, with
PyTorch eager as the reference column, in ONE interleaved run.

For each cell (model x batch x intra-op threads) every engine runs in each round, in a fresh random order:
one warm-up run, then a few timed runs whose median is that round's sample; the table gives the median over
rounds, the spread (interquartile range / median over rounds), the ratio to torch eager and to the naive fp32
export (ratios of medians), effective GFLOP/s on the model's nominal multiply-adds (the ConvTranspose graph's:
27.4 M per 28x28 image, 102 M per 64x64 image) as a share of the machine's peak, measured in the same rounds
with a 2048^3 MatMul through onnxruntime (MLAS), and the max abs error against torch on the same latents.

Engines
  torch         G in eval mode, torch.inference_mode, torch.set_num_threads(threads)
  naive         the plain export (edgegan.export.onnx.export_generator: BN folded, ConvTranspose, opset 18)
  fp32-opt      graph_forms.optimize_fp32(naive)
  int8-ct       quantize_static QDQ of the naive graph (per-channel axis 1): dequantize -> fp32 ConvTranspose
  int8-subpix   edgegan.export.int8_quantize.build_int8 (the sub-pixel form quantized: QLinearConv / QGemm)
  form:*        other exact fp32 arrangements (graph_forms.to_subpixel form/layout/keep-last)
  int8:*        other int8 arrangements (build_int8 form/layout/float layers)
  opt:*         fp32-opt under other onnxruntime session options (optimization level, spinning, execution
                mode, batch split over two 1-thread sessions) - 28x28 only

Models: DCGAN generators of width 64 (docs/reference_figures.md), nz 100, one channel, random DCGAN init with BatchNorm
statistics warmed on random batches and the image layer scaled so pre-Tanh values have unit spread (images use
the [-1, 1] range like a trained G). `--checkpoint RUN|CKPT` uses a trained 28x28 generator instead.

Usage: python -m benchmarks.probes.graph_forms [--rounds 12] [--sizes 28,64] [--batches 1,64] [--threads 1,2]
                                        [--checkpoint RUN] [--out benchmarks/results/graph_forms.md] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import shape_inference

from benchmarks.probes.graph_forms_engines import (
    PEAK_N,
    Engine,
    ort_engine,
    peak_engine,
    split_engine,
    torch_engine,
)
from edgegan.export import graph_forms
from edgegan.export.int8_quantize import build_int8, quantize_model
from edgegan.export.onnx import export_generator
from edgegan.runtime.bench.machine import cpu_summary
from edgegan.runtime.contract import GeneratorContract, draw_latents
from edgegan.runtime.files import atomic_write
from edgegan.trainer.config import ModelConfig
from edgegan.trainer.models import build_generator

REPO = Path(__file__).resolve().parents[2]

NZ, WIDTH = 100, 64
SEED = 0


# ------------------------------------------------------------------------------------------------- models
def make_generator(size: int, seed: int = 0) -> torch.nn.Module:
    """DCGAN G (width 64, one channel) in eval mode, BN stats warmed, image layer scaled to a trained range."""
    torch.manual_seed(seed)
    G = build_generator(ModelConfig(arch="dcgan", nz=NZ, image_size=size, channels=1, width=WIDTH))
    G.train()
    with torch.no_grad():
        for _ in range(8):  # running mean/var from random batches, as after some training
            G(torch.randn(64, NZ))
        G.eval()
        last = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1]
        pre_tanh = G.net[:-1](torch.randn(256, NZ).view(256, NZ, 1, 1))
        last.weight.mul_(1.0 / float(pre_tanh.std()))  # pre-Tanh spread 1: images span [-1, 1] like a trained G
    return G


def load_trained(source: str) -> torch.nn.Module:
    from edgegan.trainer.sample import load_generator

    G, cfg, _ = load_generator(source)
    if cfg.model.arch != "dcgan" or cfg.model.image_size != 28:
        raise SystemExit(f"--checkpoint must be a DCGAN 28x28 run, got {cfg.model.arch} {cfg.model.image_size}")
    return G


def contract_for(G: torch.nn.Module) -> GeneratorContract:
    c = G.cfg
    return GeneratorContract(
        arch=c.arch,
        nz=c.nz,
        num_classes=c.num_classes,
        channels=c.channels,
        height=c.image_size,
        width=c.image_size,
        dataset="benchmark",
    )


def nominal_macs(model: onnx.ModelProto) -> int:
    """Multiply-adds per image of the Conv/ConvTranspose/Gemm/MatMul nodes (batch 1 shapes)."""
    inferred = shape_inference.infer_shapes(model)
    shapes = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        shapes[info.name] = [d.dim_value or 1 for d in info.type.tensor_type.shape.dim]
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose") and node.input[1] in inits:
            w = inits[node.input[1]]
            spatial = shapes[node.output[0] if node.op_type == "Conv" else node.input[0]][2:]
            total += int(np.prod(w)) * int(np.prod(spatial))
        elif node.op_type in ("Gemm", "MatMul") and node.input[1] in inits:
            total += int(np.prod(inits[node.input[1]]))
    return total


def named(model: onnx.ModelProto) -> onnx.ModelProto:
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"node_{i}_{node.op_type}"
    return model


def build_engines(size: int, G: torch.nn.Module, work: Path, full: bool) -> tuple[list[Engine], dict]:
    """Every engine for one model size, plus facts about the model (MACs, int8 info)."""
    contract = contract_for(G)
    naive, _ = export_generator(G, contract)
    naive = named(naive)
    naive_path = work / f"naive{size}.onnx"
    onnx.save(naive, naive_path)
    opt = graph_forms.optimize_fp32(naive)
    engines = [
        torch_engine(G),
        ort_engine("naive", "main", naive.SerializeToString(), "plain export: ConvTranspose, BN folded"),
        ort_engine("fp32-opt", "main", opt.SerializeToString(), "graph_forms.optimize_fp32"),
    ]
    ct8_path = work / f"int8ct{size}.onnx"
    quantize_model(naive, contract, ct8_path)
    engines.append(ort_engine("int8-ct", "main", ct8_path.read_bytes(), "QDQ on the ConvTranspose graph"))
    sub8_path = work / f"int8sub{size}.onnx"
    int8_info = build_int8(naive_path, sub8_path, contract)
    engines.append(ort_engine("int8-subpix", "main", sub8_path.read_bytes(), "edgegan.export.int8_quantize.build_int8"))
    if full:
        for form in ("crop", "phases"):
            for layout in ("nchw", "nhwc"):
                for keep in (1, 8):
                    name = f"form:{form}/{layout}/{'keep-last' if keep > 1 else 'all'}"
                    model = graph_forms.to_subpixel(naive, form, layout, keep)
                    engines.append(ort_engine(name, "form", model.SerializeToString()))
        engines.append(
            ort_engine(
                "form:3x3/all",
                "form",
                graph_forms.to_subpixel(naive, "3x3").SerializeToString(),
                "docs/reference_figures.md's 3x3 Conv + DepthToSpace",
            )
        )
        engines.append(
            ort_engine(
                "form:gemm-first-only",
                "form",
                graph_forms.hoist_activations(graph_forms.first_layer_to_gemm(naive)).SerializeToString(),
                "only the first layer rewritten (Gemm)",
            )
        )
        int8_forms = [
            ("phases", "nhwc", ("last",), "z and Gemm quantized too"),
            ("phases", "nhwc", (), "every layer quantized, image layer as sub-pixel Conv"),
            ("crop", "nhwc", ("first", "last"), ""),
            ("crop", "nchw", (), "every layer quantized"),
            (
                "3x3",
                "nchw",
                (),
                "docs/reference_figures.md's int8 form (3x3 Conv + DepthToSpace), every layer quantized",
            ),
        ]
        for form, layout, floats, note in int8_forms:
            path = work / f"int8_{form}_{layout}_{'-'.join(floats) or 'none'}_{size}.onnx"
            build_int8(naive_path, path, contract, form=form, layout=layout, float_layers=floats)
            engines.append(
                ort_engine(f"int8:{form}/{layout}/float={'+'.join(floats) or 'none'}", "int8", path.read_bytes(), note)
            )
    if full and size == 28:  # the session-option study on the model the targets are about
        opt_bytes = opt.SerializeToString()
        engines += [
            ort_engine("opt:extended", "options", opt_bytes, "ORT_ENABLE_EXTENDED (no NCHWc layout)", level="extended"),
            ort_engine("opt:basic", "options", opt_bytes, "ORT_ENABLE_BASIC", level="basic"),
            ort_engine("opt:no-spin", "options", opt_bytes, "allow_spinning 0", spinning=False),
            ort_engine(
                "opt:parallel", "options", opt_bytes, "ORT_PARALLEL, inter_op = threads, intra_op 1", parallel=True
            ),
            split_engine("opt:split", opt_bytes, "batch split over `threads` 1-thread sessions"),
            ort_engine(
                "naive:no-spin", "options", naive.SerializeToString(), "naive, allow_spinning 0", spinning=False
            ),
            split_engine("naive:split", naive.SerializeToString(), "naive, batch split"),
        ]
    facts = {"macs": nominal_macs(naive), "int8": int8_info}
    return engines, facts


# ------------------------------------------------------------------------------------------------- timing
def time_once(fn: Callable, arg: np.ndarray, reps: int) -> float:
    fn(arg)  # warm-up: caches, thread pools, another engine's spinning threads settle
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(arg)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def reps_for(batch: int, size: int) -> int:
    if batch == 1:
        return 15 if size <= 32 else 7
    return 3 if size <= 32 else 1


def spread(values: list[float]) -> float:
    if len(values) < 4:
        return float("nan")
    q = np.percentile(values, [25, 75])
    return float((q[1] - q[0]) / np.median(values))


# ------------------------------------------------------------------------------------------------- report
def fmt(x: float, digits: int = 3) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}f}"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(text), binary=False)


def targets_section(
    med: dict, facts: dict, peak_gflops: dict, sizes: list[int], batches: list[int], threads_list: list[int]
) -> list[str]:
    """Issue 5's targets for DCGAN 28x28, checked on this run's medians, for the fp32 and int8 engines."""
    if 28 not in sizes:
        return []
    lines = [
        "## Issue 5 targets (DCGAN 28x28, this run)",
        "",
        "| target | engine | threads | measured | met |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for eng in ("naive", "fp32-opt", "opt:no-spin", "opt:split", "int8-subpix"):
        for threads in threads_list:
            for batch, limit in ((1, 0.25), (64, 0.8)):
                key, ref = (28, batch, threads, eng), (28, batch, threads, "torch")
                if batch in batches and key in med and ref in med:
                    ratio = med[key] / med[ref]
                    lines.append(
                        f"| latency / torch eager at batch {batch} <= {limit} | {eng} | {threads} | "
                        f"{ratio:.2f} | {'yes' if ratio <= limit else 'no'} |"
                    )
            key = (28, 64, threads, eng)
            if threads == 2 and key in med:
                share = 2 * facts[28]["macs"] * 64 / med[key] / 1e9 / peak_gflops[threads]
                lines.append(
                    f"| share of the MLAS peak at batch 64 >= 80% | {eng} | {threads} | {100 * share:.0f}% | "
                    f"{'yes' if share >= 0.8 else 'no'} |"
                )
    return lines + [
        "",
        "int8 rows count nominal fp32 multiply-adds, so their 'share of peak' compares int8 work with the fp32 peak.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--sizes", default="28,64")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--checkpoint", default=None, help="trained DCGAN 28x28 run or checkpoint for the 28x28 model")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "graph_forms.md"))
    ap.add_argument("--quick", action="store_true", help="main engines only (no form/option studies)")
    ap.add_argument("--note", default="", help="a line for the report header (e.g. how --checkpoint was trained)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    threads_list = [int(t) for t in args.threads.split(",")]
    load_start = os.getloadavg()
    started = time.time()

    work = Path(tempfile.mkdtemp(prefix="edgegan-graph-forms-"))
    engines: dict[int, list[Engine]] = {}
    facts: dict[int, dict] = {}
    generators: dict[int, torch.nn.Module] = {}
    for size in sizes:
        G = load_trained(args.checkpoint) if (args.checkpoint and size == 28) else make_generator(size)
        generators[size] = G
        engines[size], facts[size] = build_engines(size, G, work, full=not args.quick)
        print(
            f"built {len(engines[size])} engines for {size}x{size} ({facts[size]['macs'] / 1e6:.1f} M MACs/image)",
            file=sys.stderr,
        )
    peak, peak_input = peak_engine()

    latents = {b: draw_latents(b, NZ, SEED) for b in batches}
    cells = [(s, b, t) for s in sizes for b in batches for t in threads_list]
    times: dict[tuple, list[float]] = {}
    peaks: dict[int, list[float]] = {t: [] for t in threads_list}
    for r in range(args.rounds):
        rng = np.random.default_rng(1000 + r)
        for t in threads_list:
            peaks[t].append(time_once(peak.runner(t), peak_input, 2))
        for ci in rng.permutation(len(cells)):
            size, batch, threads = cells[ci]
            order = rng.permutation(len(engines[size]))
            for ei in order:
                eng = engines[size][ei]
                sec = time_once(eng.runner(threads), latents[batch], reps_for(batch, size))
                times.setdefault((size, batch, threads, eng.name), []).append(sec)
        print(
            f"round {r + 1}/{args.rounds} done ({time.time() - started:.0f} s, load {os.getloadavg()[0]:.1f})",
            file=sys.stderr,
        )

    # Errors vs torch on the same latents, at the largest batch, 1 thread.
    errors: dict[tuple, tuple[float, float]] = {}
    b_err = max(batches)
    for size in sizes:
        ref = engines[size][0].runner(1)(latents[b_err])
        for eng in engines[size][1:]:
            out = eng.runner(1)(latents[b_err])
            errors[size, eng.name] = (float(np.abs(out - ref).max()), float(np.abs(out - ref).mean()))

    peak_gflops = {t: 2 * PEAK_N**3 / statistics.median(v) / 1e9 for t, v in peaks.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    lines = [
        "# Graph forms: naive export vs exact rewrites vs int8, PyTorch eager beside "
        "(benchmarks/probes/graph_forms.py)",
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; machine: {cpu_summary()}",
        f"- onnxruntime {ort.__version__}, torch {torch.__version__}, onnx {onnx.__version__}, "
        f"numpy {np.__version__}, python {platform.python_version()}",
        f"- command: `python -m benchmarks.probes.graph_forms {' '.join(sys.argv[1:] if argv is None else argv)}`",
        f"- {args.rounds} rounds, every engine of a cell in random order each round (1 warm-up + median of "
        f"{reps_for(1, 28)} runs at batch 1, {reps_for(64, 28)} at batch 64 for 28x28, {reps_for(64, 64)} for "
        f"64x64); tables give the median over rounds",
        "- models: DCGAN width 64, nz 100, 1 channel: "
        + ", ".join(f"{s}x{s} {facts[s]['macs'] / 1e6:.1f} M MACs/image" for s in sizes)
        + (
            f"; 28x28 weights from {args.checkpoint}"
            if args.checkpoint
            else "; random DCGAN init, BN stats warmed on random batches, image layer scaled to unit pre-Tanh spread"
        ),
        "- MLAS peak (2048^3 MatMul through onnxruntime, same rounds): "
        + ", ".join(f"{peak_gflops[t]:.0f} GFLOP/s at {t} thread{'s' if t > 1 else ''}" for t in threads_list),
        *([f"- note: {args.note}"] if args.note else []),
        f"- load average (1 min) at start {load_start[0]:.1f}, at end {os.getloadavg()[0]:.1f}; wall time "
        f"{time.time() - started:.0f} s; spread = interquartile range / median over rounds",
        "",
    ]
    groups = [
        ("main", "Main table"),
        ("form", "Other exact fp32 forms"),
        ("int8", "Other int8 forms"),
        ("options", "Session options and batch splitting"),
    ]
    for group, title in groups:
        if not any(e.group == group for size in sizes for e in engines[size]):
            continue
        rows = []
        for size in sizes:
            for batch in batches:
                for threads in threads_list:
                    base_torch = med.get((size, batch, threads, "torch"))
                    base_naive = med.get((size, batch, threads, "naive"))
                    for eng in engines[size]:
                        if eng.group != group and not (group != "main" and eng.name in ("torch", "naive", "fp32-opt")):
                            continue
                        key = (size, batch, threads, eng.name)
                        if key not in med:
                            continue
                        ms = med[key] * 1e3
                        gflops = 2 * facts[size]["macs"] * batch / med[key] / 1e9
                        err = errors.get((size, eng.name))
                        rows.append(
                            f"| {size}x{size} | {batch} | {threads} | {eng.name} | {fmt(ms)} | "
                            f"{fmt(100 * spread(times[key]), 0)}% | {fmt(med[key] / base_torch, 2)} | "
                            f"{fmt(med[key] / base_naive, 2)} | {fmt(gflops, 0)} | "
                            f"{fmt(100 * gflops / peak_gflops[threads], 0)}% | "
                            f"{'-' if err is None else f'{err[0]:.1e} / {err[1]:.1e}'} |"
                        )
        if not rows:
            continue
        lines += [
            f"## {title}",
            "",
            "| model | batch | threads | engine | median ms | spread | vs torch | vs naive | GFLOP/s | % peak "
            f"| max / mean abs err vs torch (batch {b_err}) |",
            "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
            *rows,
            "",
        ]
    lines += targets_section(med, facts, peak_gflops, sizes, batches, threads_list)
    lines += ["## Engines", ""]
    seen = set()
    for size in sizes:
        for eng in engines[size]:
            if eng.name not in seen and eng.note:
                seen.add(eng.name)
                lines.append(f"- `{eng.name}`: {eng.note}")
    lines += ["", "## int8 build info", ""]
    for size in sizes:
        lines.append(f"- {size}x{size}: {facts[size]['int8']}")
    text = "\n".join(lines) + "\n"
    print(text)
    write_atomic(Path(args.out), text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
