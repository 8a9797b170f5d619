"""Which variant where: fp32, fp16, int8 and .ort of one export, measured side by side in one run.

For every variant file in an export folder (`edgegan export RUN --out DIR --fp16 --int8 --ort-format`):
  size        the file's bytes (and / fp32)
  cold start  a fresh `python -c` per start: import edgegan.runtime, Generator(file), one image, PNG; the machinery
              of benchmarks/cold_start.py (run_child, child_env), starts interleaved over the variants, median
  latency     `edgegan bench`'s harness (run_bench) on the CPU provider: every variant x batch x threads in the same
              interleaved rounds, p50 and p50 / fp32's p50 at the same batch and threads
  error       max / mean abs error vs PyTorch from the export's own verification (export_report.json)
  FID vs fp32 the export quality gate's FID of the variant's images against fp32's (export_report.json; needs
              `--max-fid-delta` at export)

Usage: python -m benchmarks.variant_table EXPORT_DIR [--batch 1,64] [--threads 1,2] [--starts 5] [--duration 2]
           [--json F] [--markdown F]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from benchmarks.cold_start import RUNTIME, child_env, machine, run_child

VARIANTS = {
    "fp32": "generator.onnx",
    "fp16": "generator.fp16.onnx",
    "int8": "generator.int8.onnx",
    "ort": "generator.ort",
}


def cold_starts(files: dict[str, Path], starts: int) -> dict[str, dict[str, float]]:
    """Median wall seconds and peak MiB of `starts` fresh processes per file, interleaved (a, b, c, a, b, c, ...)."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in files}
    with tempfile.TemporaryDirectory(prefix="edgegan-variants-") as tmp:
        pycache = Path(tmp) / "pycache"
        codes = {
            name: RUNTIME.format(model=str(path), options="", png=str(Path(tmp) / f"{name}.png"))
            for name, path in files.items()
        }
        for name, code in codes.items():  # warm-up: fills the bytecode cache, as an installed package has it
            run_child(code, child_env(name, pycache))
        for _ in range(starts):
            for name, code in codes.items():
                runs[name].append(run_child(code, child_env(name, pycache)))
    return {
        name: {
            "wall_s": statistics.median(r["wall_s"] for r in rs),
            "load_s": statistics.median(r["load"] for r in rs),
            "peak_mib": statistics.median(r["peak_mib"] for r in rs),
        }
        for name, rs in runs.items()
    }


def latencies(files: dict[str, Path], batches: tuple[int, ...], threads: tuple[int, ...], duration: float) -> dict:
    """run_bench over every file at once (interleaved rounds): {"rows": ..., "machine": ...}."""
    from edgegan.runtime.bench.harness import run_bench

    return run_bench(list(files.values()), batches=batches, threads=threads, duration=duration, peak=False)


def from_report(export_dir: Path) -> dict[str, dict]:
    """Per variant: max/mean error vs PyTorch and the quality gate's FID vs fp32 (None where not measured)."""
    report = json.loads((export_dir / "export_report.json").read_text())
    gate = (report.get("quality_gate") or {}).get("variants", {})
    return {
        name: {
            "max_err": v.get("max_err"),
            "mean_err": v.get("mean_err"),
            "error_unit": v.get("error_unit"),
            "fid_vs_fp32": (gate.get(name) or {}).get("fid_vs_fp32", 0.0 if name == "fp32" else None),
            "step": report["contract"]["train"]["step"],
        }
        for name, v in report["variants"].items()
    }


def table(result: dict) -> str:
    """The markdown table: one row per variant, latency as p50 ms (x fp32) per threads x batch."""
    rows = result["variants"]
    keys = [(t, b) for t in result["threads"] for b in result["batches"]]
    head = ["variant", "file", "size (x fp32)", "cold start s (load s)", "peak MiB"]
    head += [f"{t} thr, batch {b}: p50 ms (x fp32)" for t, b in keys] + ["max / mean err vs torch", "FID vs fp32"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, v in rows.items():
        cells = [
            name,
            v["file"],
            f"{v['size_bytes'] / 1e6:.2f} MB ({v['size_x']:.2f})",
            f"{v['cold']['wall_s']:.2f} ({v['cold']['load_s']:.3f})",
            f"{v['cold']['peak_mib']:.0f}",
        ]
        for t, b in keys:
            lat = v["latency"].get(f"{t}x{b}")
            cells.append(f"{lat['p50_ms']:.2f} ({lat['x_fp32']:.2f})" if lat else "-")
        err = f"{v['max_err']:.1e} / {v['mean_err']:.1e}" if v.get("max_err") is not None else "-"
        fid = v.get("fid_vs_fp32")
        cells += [err, "-" if fid is None else f"{fid:.2g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--batch", default="1,64")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--starts", type=int, default=5, help="fresh processes per variant for cold start")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds of timed calls per configuration")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    files = {n: args.export_dir / f for n, f in VARIANTS.items() if (args.export_dir / f).exists()}
    if "fp32" not in files:
        parser.error(f"{args.export_dir} holds no generator.onnx: export it first (edgegan export RUN --out DIR)")
    batches = tuple(int(b) for b in args.batch.split(","))
    threads = tuple(int(t) for t in args.threads.split(","))
    load_start = [round(x, 2) for x in os.getloadavg()]
    cold = cold_starts(files, args.starts)
    bench = latencies(files, batches, threads, args.duration)
    quality = from_report(args.export_dir)
    p50 = {(Path(r["model"]).name, r["threads"], r["batch"]): r["p50_ms"] for r in bench["rows"] if r.get("p50_ms")}
    fp32_size = files["fp32"].stat().st_size
    variants = {}
    for name, path in files.items():
        latency = {}
        for t in threads:
            for b in batches:
                mine, base = p50.get((path.name, t, b)), p50.get((files["fp32"].name, t, b))
                if mine and base:
                    latency[f"{t}x{b}"] = {"p50_ms": mine, "x_fp32": mine / base}
        variants[name] = {
            "file": path.name,
            "size_bytes": path.stat().st_size,
            "size_x": path.stat().st_size / fp32_size,
            "cold": cold[name],
            "latency": latency,
            **quality.get(name, {}),
        }
    result = {
        "machine": machine(),
        "loadavg_start": load_start,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "batches": list(batches),
        "threads": list(threads),
        "starts": args.starts,
        "duration_s": args.duration,
        "export_dir": str(args.export_dir),
        "variants": variants,
        "bench_rows": bench["rows"],
    }
    text = table(result)
    print(text)
    print(f"machine: {result['machine']}; load average {load_start} -> {result['loadavg_end']}")
    from edgegan.runtime.files import atomic_write

    if args.json:
        atomic_write(args.json, lambda f: f.write(json.dumps(result, indent=1) + "\n"), binary=False)
    if args.markdown:
        atomic_write(args.markdown, lambda f: f.write(text + "\n"), binary=False)
    return result


if __name__ == "__main__":
    main()
