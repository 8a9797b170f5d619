"""Result rows of `run_bench`: latency, throughput, GFLOP/s and share of peak per timed (runner, batch), and ratios.

`TimedConfig` holds what the harness measured for one configuration; `config_rows`, `peak_rows` and `add_ratios`
turn those into the rows of the result (and of report.py's tables): figures are medians of every timed call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgegan.runtime.bench.peaks import apply_peaks
from edgegan.runtime.bench.runners import OrtRunner

__all__ = [
    "TimedConfig",
    "latency_stats",
    "round_spread",
    "peak_rows",
    "config_rows",
    "add_ratios",
    "RATIO_BASES",
    "is_baseline",
]


@dataclass
class TimedConfig:
    """One (runner, batch) being timed."""

    runner: Any
    batch: int
    first_run_s: float | None = None
    mem_first_run_mib: float | None = None
    iters: int = 0
    times: list[float] = field(default_factory=list)  # seconds, every timed call
    cpu_times: list[float] = field(default_factory=list)  # CPU seconds of the whole process, per call
    rounds: list[list[float]] = field(default_factory=list)  # the same calls, per round
    rss_peak_kib: int = 0
    error: str | None = None


def latency_stats(times: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean/min in milliseconds of call times in seconds."""
    ms = np.asarray(times) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
    }


def round_spread(rounds: Sequence[Sequence[float]]) -> float | None:
    """Relative spread of the per-round medians: (p75 - p25) / median; the run's noise for one row."""
    medians = [float(np.median(r)) for r in rounds if r]
    if len(medians) < 2:
        return None
    q25, q50, q75 = np.percentile(medians, [25, 50, 75])
    return float((q75 - q25) / q50) if q50 > 0 else None


def peak_rows(configs: Sequence[TimedConfig]) -> list[dict[str, Any]]:
    """One row per machine-peak configuration (MatmulRunner): p50, GFLOP/s, GFLOP per CPU-second, spread."""
    out = []
    for c in configs:
        row: dict[str, Any] = {
            "model": c.runner.model,
            "precision": c.runner.precision,
            "provider": c.runner.provider,
            "provider_asked": c.runner.provider_asked,
            "threads": c.runner.threads,
            "size": c.runner.size,
            "iters": len(c.times),
        }
        if c.error or not c.times:
            row["error"] = c.error or "no timed calls"
        else:
            stats = latency_stats(c.times)
            cpu_s = float(np.median(c.cpu_times))
            row.update(
                p50_ms=stats["p50_ms"],
                cpu_ms=cpu_s * 1e3,
                gflops=2 * c.runner.macs / (stats["p50_ms"] / 1e3) / 1e9,
                gflops_per_cpu_s=2 * c.runner.macs / cpu_s / 1e9 if cpu_s > 0 else None,
                spread=round_spread(c.rounds),
            )
        out.append(row)
    return out


def config_rows(
    configs: Sequence[TimedConfig], cold: dict[int, dict], peaks: Sequence[dict], count_macs: Callable
) -> list[dict]:
    """One row per (runner, batch): what ran, cold start and memory, latency, images/s, multiply-adds, GFLOP/s and
    share of the peak of its precision at the same provider and threads (edgegan.runtime.bench.peaks: the kernel
    peak or the best row measured, whichever is higher; `cold`: id(runner) -> load figures)."""
    macs_cache: dict[tuple[str, int], Any] = {}
    rows = []
    for c in configs:
        r = c.runner
        info = cold[id(r)]
        row: dict[str, Any] = {
            "model": r.model,
            "engine": r.name,
            "setup": r.setup.label if isinstance(r, OrtRunner) else getattr(r, "setup", None),
            "provider": r.provider,
            "provider_asked": getattr(r, "provider_asked", None),
            "threads": r.threads,
            "batch": c.batch,
            "precision": r.precision,
            "output": r.output,
            "iters": len(c.times),
            "rounds": len(c.rounds),
            "cold_create_s": info.get("create_s"),
            "cold_first_run_s": c.first_run_s,
            "mem_load_mib": info.get("mem_load_mib"),
            "mem_first_run_mib": c.mem_first_run_mib,
            "rss_peak_mib": c.rss_peak_kib / 1024 if c.rss_peak_kib else None,
            "error": c.error,
        }
        if not c.error and c.times:
            row.update(latency_stats(c.times))
            row["cpu_ms"] = float(np.median(c.cpu_times)) * 1e3
            row["images_per_s"] = c.batch / (row["p50_ms"] / 1e3)
            row["spread"] = round_spread(c.rounds)
        if getattr(r, "cpu_in_child", False):  # this process saw none of its CPU time or memory
            row.update(cpu_ms=None, mem_load_mib=None, mem_first_run_mib=None, rss_peak_mib=None)
        row["macs"] = row["macs_uncounted"] = None
        if isinstance(r, OrtRunner):
            key = (str(r.path), c.batch)
            if key not in macs_cache:
                macs_cache[key] = count_macs(r.path, c.batch)
            if macs_cache[key] is not None:
                row["macs"], row["macs_uncounted"] = macs_cache[key].total, macs_cache[key].uncounted
        elif callable(getattr(r, "macs", None)) and not c.error:  # a baseline may count its own work
            row["macs"] = r.macs(c.batch)
        row["gflops"] = row["gflops_per_cpu_s"] = None
        if row["macs"] and row.get("p50_ms"):
            row["gflops"] = 2 * row["macs"] / (row["p50_ms"] / 1e3) / 1e9
            # Per CPU-second instead of per wall second: time spent preempted by other processes counts in
            # neither, so on a busy machine this still compares the work itself (idle threads count neither).
            if row.get("cpu_ms"):
                row["gflops_per_cpu_s"] = 2 * row["macs"] / (row["cpu_ms"] / 1e3) / 1e9
        rows.append(row)
    apply_peaks(rows, peaks)
    return rows


# The ratio columns' bases: the torch rows run in the bench process with the environment's OpenMP policy (as users
# run torch). Labelled extra rows such as "torch eager (OMP passive)" (another policy, another process) are shown
# beside them but are never a base.
RATIO_BASES = (("torch eager", "ratio"), ("torch compile", "ratio_compile"))


def is_baseline(row: dict) -> bool:
    """A row of the PyTorch baseline (any label): it gets no ratio itself."""
    return row["engine"].startswith("torch")


def _device(row: dict) -> str:
    """ "cuda" for a row that ran on a GPU (onnxruntime's CUDA or TensorRT provider, torch on cuda), else "cpu"."""
    return (
        "cuda" if row.get("provider") in ("CUDAExecutionProvider", "TensorrtExecutionProvider", "torch cuda") else "cpu"
    )


def add_ratios(rows: list[dict], configs: Sequence[TimedConfig]) -> None:
    """ratio = p50 / torch eager p50 (and / torch compile p50) at the same threads and batch, plus the range of
    the same ratio computed inside each round (neighbours in time). The bases are exactly the engines in
    RATIO_BASES, so a labelled policy row ("torch eager (OMP passive)") never replaces the default one."""
    by_engine = {(row["engine"], row["threads"], row["batch"], _device(row)): (row, c) for row, c in zip(rows, configs)}
    for row, c in zip(rows, configs):
        for engine, key in RATIO_BASES:
            base = by_engine.get((engine, row["threads"], row["batch"], _device(row)))  # a GPU row: torch on the GPU
            row[key] = None
            if is_baseline(row) or base is None or not base[0].get("p50_ms") or not row.get("p50_ms"):
                continue
            row[key] = row["p50_ms"] / base[0]["p50_ms"]
            if engine == "torch eager":
                # The same useful work for every engine: the baseline's own multiply-adds (a sub-pixel graph
                # counts its padding work too, which `gflops` includes and this does not).
                if base[0].get("macs"):
                    row["useful_gflops"] = 2 * base[0]["macs"] / (row["p50_ms"] / 1e3) / 1e9
                    if row.get("peak_gflops"):
                        row["useful_peak_share"] = row["useful_gflops"] / row["peak_gflops"]
                per_round = [
                    float(np.median(a)) / float(np.median(b)) for a, b in zip(c.rounds, base[1].rounds) if a and b
                ]
                row["ratio_rounds"] = [min(per_round), max(per_round)] if per_round else None
