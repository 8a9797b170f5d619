"""`run_bench`: latency of edgegan generators on onnxruntime, the machine's peak and a PyTorch baseline beside it.

numpy + onnxruntime only; never torch. Everything that runs is a *runner* (the `Runner` protocol below): the
onnxruntime generator (`OrtRunner`), the machine-peak matrix product (`MatmulRunner`) and any baseline a plugin
provides through the entry point group `edgegan.bench_baselines` (edgegan's own: `torch =
edgegan.trainer.torch_bench:make_runners`, installed with `edgegan[train]`), so the PyTorch figures are timed in the same
process without this module importing torch.

How a run goes, and why:
1. Cold start: every runner is loaded once (session creation, or model build), timed apart; then each
   (runner, batch) makes its first call, timed apart too (onnxruntime allocates per shape; torch.compile
   compiles there). onnxruntime is already imported by then: process start-up is benchmarks/cold_start.py's job.
2. Warm-up calls, untimed.
3. Timed calls in rounds: each round visits every configuration once, in a seeded shuffled order, and runs a
   slice of its iterations. Drift in machine load (other processes on a shared box) then hits every
   configuration alike, and a ratio computed inside one round compares neighbours in time. Figures are medians
   over all timed calls; the spread of the per-round medians says how noisy the run was.
4. The machine's peaks are a 2048^3 float32 MatMul through the same provider and thread count and, on the CPU
   provider, a u8 x s8 MatMulInteger of the same size, timed in the same rounds; effective GFLOP/s = 2 *
   multiply-adds counted in the graph (runtime/bench/macs.py) / p50. A row's `% peak` divides by the peak of its
   precision, raised to the best row of that precision measured (runtime/bench/peaks.py): never above 100%.

Memory: Linux's VmHWM (the process's resident high-water mark), reset through /proc/self/clear_refs before each
timed slice. `rss_peak_mib` is the whole process's high-water while the configuration ran (all loaded models
included); `mem_load_mib` and `mem_first_run_mib` are what loading, and the first call at that batch, added on
top of the resident size just before.

Example:
    >>> result = run_bench(["models/fashion/generator.onnx"], batches=(1, 64), threads=(1, 2))  # doctest: +SKIP
    >>> [(r["batch"], r["threads"], round(r["p50_ms"], 2)) for r in result["rows"]]  # doctest: +SKIP

Neighbours: runtime/bench/runners.py (the runners), runtime/bench/machine.py (machine, memory, pinning),
runtime/bench/rows.py (result rows and ratios), runtime/bench/report.py (table, markdown, JSON, plot),
runtime/bench/macs.py (multiply-adds in a graph).
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgegan.runtime.bench.machine import MEMORY_METHOD, _Memory, machine_info, machine_slug, pinned
from edgegan.runtime.bench.macs import count_macs
from edgegan.runtime.bench.peaks import peak_runners
from edgegan.runtime.bench.rows import TimedConfig, add_ratios, config_rows, peak_rows
from edgegan.runtime.bench.runners import (
    PEAK_SIZE,
    BenchError,
    MatmulRunner,
    OrtRunner,
    Runner,
    SessionSetup,
    matmul_model,
    parse_setup,
)
from edgegan.runtime.errors import exception_summary, install_hint
from edgegan.runtime.external_data import check_model_file
from edgegan.runtime.generator import resolve_model_path
from edgegan.runtime.providers import DEVICE_PROVIDERS, PROVIDERS, ProviderError, resolve_provider

__all__ = [
    "run_bench",
    "Runner",
    "OrtRunner",
    "MatmulRunner",
    "SessionSetup",
    "BenchError",
    "parse_setup",
    "parse_int_list",
    "parse_providers",
    "register_baseline",
    "load_baseline",
    "machine_info",
    "machine_slug",
    "matmul_model",
    "pinned",
    "BASELINE_GROUP",
    "PEAK_SIZE",
]

BENCH_FORMAT = 1
BENCH_KIND = "edgegan bench"  # what a result (and its --json) is, for `edgegan bench-report` to recognise it
BASELINE_GROUP = "edgegan.bench_baselines"


def parse_int_list(text: str | Sequence[int], what: str) -> tuple[int, ...]:
    """ "1,8,64" -> (1, 8, 64); every value a positive integer, no repeats."""
    if isinstance(text, str):
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items or not all(re.fullmatch(r"\d+", t) for t in items):
            raise BenchError(f"--{what} takes positive integers separated by commas (e.g. 1,8,64), got {text!r}")
        values = tuple(int(t) for t in items)
    else:
        values = tuple(int(v) for v in text)
    if not values or any(v <= 0 for v in values):
        raise BenchError(f"--{what} values must be positive integers, got {text!r}")
    return tuple(dict.fromkeys(values))


def parse_providers(text: str | Sequence[str]) -> tuple[str, ...]:
    """ "cpu,cuda" -> ("cpu", "cuda"), each one of edgegan.runtime.providers.PROVIDERS."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else [str(t) for t in text]
    items = [t for t in items if t]
    unknown = [t for t in items if t not in PROVIDERS]
    if not items or unknown:
        raise ProviderError(f"unknown provider {', '.join(unknown) or repr(text)}; choose from {', '.join(PROVIDERS)}")
    return tuple(dict.fromkeys(items))


# ------------------------------------------------------------------------------------------- baselines
_REGISTRY: dict[str, Callable[..., list[Runner]]] = {}


def register_baseline(name: str, factory: Callable[..., list[Runner]]) -> None:
    """Register a baseline in this process (the explicit twin of the entry point group).

    Args:
        name: the baseline's name ("torch" for `--torch`).
        factory: `factory(source, threads, compile=True) -> list[Runner]`.
    """
    _REGISTRY[name] = factory


def load_baseline(name: str) -> Callable[..., list[Runner]]:
    """The factory of a baseline: registered in this process, else from the `edgegan.bench_baselines` entry points.

    Raises:
        BenchError: no such baseline, or its package (torch for "torch") is not installed.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    # Every installed distribution, not importlib.metadata.entry_points(): that keeps one distribution per name,
    # and a stale edgegan.egg-info in the working folder would hide the installed metadata's entry points.
    points = [
        p
        for dist in importlib.metadata.distributions()
        for p in dist.entry_points
        if p.group == BASELINE_GROUP and p.name == name
    ]
    hint = install_hint("train") if name == "torch" else f"install the package that provides {name!r}"
    if not points:
        raise BenchError(
            f"--{name} needs the {name!r} benchmark baseline, which is not installed: {hint} "
            f"(it registers entry point group {BASELINE_GROUP!r}; reinstall edgegan if it is missing)"
        )
    try:
        return points[0].load()
    except ImportError as exc:
        raise BenchError(f"--{name} needs {exc.name or 'a package'!r}, which is not installed: {hint}") from exc


# ------------------------------------------------------------------------------------------- the harness
def _say(log: Callable[[str], None] | None, message: str) -> None:
    if log is not None:
        log(message)


def _fail(runner: Any, exc: Exception) -> str:
    if not getattr(runner, "optional", False):
        raise exc
    return exception_summary(exc)


def _plan_iterations(iters: int | None, duration: float | None, warm: Sequence[float]) -> int:
    if iters is not None:
        return iters
    estimate = float(np.median(warm)) if warm else 0.01
    return int(min(100_000, max(10, math.ceil((duration or 2.0) / max(estimate, 1e-6)))))


def _load_all(runners: Sequence[Any], memory: _Memory, log: Callable[[str], None] | None) -> dict[int, dict]:
    """Cold start, part 1: load every runner once, timed; id(runner) -> {create_s, mem_load_mib} or {error}."""
    cold: dict[int, dict[str, Any]] = {}
    for runner in runners:
        _say(log, f"loading {runner.name} {runner.model} ({runner.threads} threads)")
        rss0 = memory.start()
        start = time.perf_counter()
        try:
            runner.load()
            cold[id(runner)] = {"create_s": time.perf_counter() - start, "mem_load_mib": (memory.peak() - rss0) / 1024}
        except Exception as exc:  # noqa: BLE001 - optional runners record it; others re-raise
            cold[id(runner)] = {"error": _fail(runner, exc)}
    return cold


def _first_calls(
    configs: Sequence[TimedConfig],
    cold: dict[int, dict],
    memory: _Memory,
    warmup: int,
    iters: int | None,
    duration: float | None,
    log: Callable[[str], None] | None,
) -> None:
    """Cold start, part 2: each configuration's first call (timed), its warm-up, and its number of timed calls."""
    for config in configs:
        config.error = cold[id(config.runner)].get("error")
        if config.error:
            continue
        runner = config.runner
        _say(log, f"first call: {runner.name} {runner.model} batch {config.batch}, {runner.threads} threads")
        try:
            runner.activate()
            runner.prepare(config.batch)
            rss0 = memory.start()
            start = time.perf_counter()
            runner.run()
            config.first_run_s = time.perf_counter() - start
            warm = []
            for _ in range(warmup):
                start = time.perf_counter()
                runner.run()
                warm.append(time.perf_counter() - start)
            config.mem_first_run_mib = (memory.peak() - rss0) / 1024
        except Exception as exc:  # noqa: BLE001
            config.error = _fail(runner, exc)
            continue
        if not isinstance(runner, MatmulRunner):
            config.iters = _plan_iterations(iters, duration, warm or [config.first_run_s])


def _timed_rounds(
    configs: Sequence[TimedConfig], memory: _Memory, rounds: int, seed: int, log: Callable[[str], None] | None
) -> int:
    """The timed calls: every live configuration once per round, in a seeded shuffled order; returns the rounds."""
    live = [c for c in configs if not c.error]
    n_rounds = max(1, min(rounds, min((c.iters for c in live if c.iters), default=1)))
    for config in live:
        if isinstance(config.runner, MatmulRunner):
            config.iters = 2 * n_rounds  # two products a round: enough for a median, cheap next to the rest
    order = random.Random(seed)
    _say(log, f"timing {len(live)} configurations in {n_rounds} interleaved rounds")
    for r in range(n_rounds):
        visit = [c for c in live if not c.error]
        order.shuffle(visit)
        for config in visit:
            share = config.iters // n_rounds + (1 if r < config.iters % n_rounds else 0)
            runner = config.runner
            times: list[float] = []
            try:
                runner.activate()
                runner.prepare(config.batch)
                memory.start()
                for _ in range(share):
                    cpu, start = time.process_time(), time.perf_counter()
                    runner.run()
                    times.append(time.perf_counter() - start)
                    config.cpu_times.append(time.process_time() - cpu)
            except Exception as exc:  # noqa: BLE001
                config.error = _fail(runner, exc)
                continue
            config.rss_peak_kib = max(config.rss_peak_kib, memory.peak())
            config.times += times
            config.rounds.append(times)
    return n_rounds


def run_bench(
    models: Sequence[str | os.PathLike],
    *,
    batches: Sequence[int] = (1, 8, 64),
    threads: Sequence[int] = (1,),
    providers: Sequence[str] = ("cpu",),
    setups: Sequence[SessionSetup | str] = ("default",),
    warmup: int = 3,
    iters: int | None = None,
    duration: float | None = None,
    rounds: int = 10,
    torch: str | os.PathLike | None = None,
    torch_compile: bool = True,
    torch_passive: bool = False,
    pin_core: int | None = None,
    peak: bool = True,
    peak_size: int = PEAK_SIZE,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Benchmark every model x provider x session set-up x threads x batch, interleaved.

    Args:
        models: generator files (.onnx, .ort, .plan) or folders holding generator.onnx.
        batches: batch sizes.
        threads: intra-op thread counts (torch: torch.set_num_threads).
        providers: runtime provider names ("cpu", "cuda", "tensorrt", "auto").
        setups: onnxruntime session set-ups (`SessionSetup` or its "KEY=VALUE,..." text).
        warmup: untimed calls per configuration after the first call.
        iters: timed calls per configuration (default: enough for `duration`).
        duration: seconds of timed calls per configuration, estimated from the warm-up (default 2).
        rounds: timed calls are spread over this many interleaved rounds.
        torch: a run folder or checkpoint: also time the same generator in PyTorch (the "torch" baseline).
        torch_compile: with `torch`, also time torch.compile (rows record an error where it does not work).
        torch_passive: with `torch`, also time eager torch with OMP_WAIT_POLICY=PASSIVE (a labelled extra row, from
            a child process; the ratio column keeps torch's default policy, as users run it).
        pin_core: run everything on this one CPU core.
        peak: measure the machine's peak (matmul) per provider and thread count.
        peak_size: n of the n x n x n peak matrix product.
        seed: seed of the shuffled round order.
        log: called with one-line progress messages.

    Returns:
        {"kind", "format", "machine" (machine_info: CPU, board, GPUs, label), "settings", "memory_method",
        "peak": [...], "rows": [...]}: one row per configuration with latency percentiles, images/s, cold start,
        memory, provider, precision, output form, multiply-adds, GFLOP/s, share of peak and (with `torch`) ratios
        to the torch rows.

    Raises:
        BenchError, ProviderError, ModelFileError, ContractError (EdgeganError): bad options or models.
    """
    batches, threads = parse_int_list(batches, "batch"), parse_int_list(threads, "threads")
    providers = parse_providers(providers)
    session_setups = [s if isinstance(s, SessionSetup) else parse_setup(s) for s in setups] or [SessionSetup()]
    for name, value, low in (("warmup", warmup, 0), ("rounds", rounds, 1)):
        if not isinstance(value, int) or value < low:
            raise BenchError(f"--{name} must be an integer >= {low}, got {value!r}")
    if iters is not None and (not isinstance(iters, int) or iters <= 0):
        raise BenchError(f"--iters must be a positive integer, got {iters!r}")
    if duration is not None and not duration > 0:
        raise BenchError(f"--duration must be a positive number of seconds, got {duration!r}")
    if iters is not None and duration is not None:
        raise BenchError("give --iters or --duration, not both")
    if not models:
        raise BenchError("give at least one model file (generator.onnx or a variant)")
    paths = [resolve_model_path(m) for m in models]
    factory = load_baseline("torch") if torch is not None else None
    # Every file is read before anything is timed: a model that reads outside its folder, or a corrupt
    # generator.onnx beside an .ort, is one line now rather than a traceback after minutes of timing.
    for path in paths:
        if path.suffix.lower() != ".plan":  # an engine's generator.onnx is scanned when the engine loads
            check_model_file(path)
    macs = {(str(p), b): count_macs(p, b) for p in paths for b in batches}

    with pinned(pin_core):
        machine = machine_info()
        # A split set-up needs a thread per part: it is left out at thread counts below its split.
        runners: list[Any] = [
            OrtRunner(p, prov, t, s, max(batches))
            for p in paths
            for prov in providers
            for s in session_setups
            for t in threads
            if s.split <= t
        ]
        if factory is not None:
            gpu = any(resolve_provider(p) in DEVICE_PROVIDERS for p in providers)
            for t in threads:
                # Other plugins' factories need not know `policies`: it is passed only when asked for.
                extra = {"policies": ("default", "passive")} if torch_passive else {}
                if gpu:  # torch on the GPU beside onnxruntime's device rows
                    extra["devices"] = ("cpu", "cuda")
                runners += factory(str(torch), t, compile=torch_compile, **extra)
        peaks = peak_runners(providers, threads, peak_size) if peak else []
        memory = _Memory()
        try:
            cold = _load_all(runners + peaks, memory, log)
            configs = [TimedConfig(r, b) for r in runners for b in batches] + [TimedConfig(p, 1) for p in peaks]
            _first_calls(configs, cold, memory, warmup, iters, duration, log)
            n_rounds = _timed_rounds(configs, memory, rounds, seed, log)
        finally:
            for runner in runners:
                if hasattr(runner, "close"):
                    runner.close()

    peak_table = peak_rows([c for c in configs if isinstance(c.runner, MatmulRunner)])
    timed = [c for c in configs if not isinstance(c.runner, MatmulRunner)]
    rows = config_rows(timed, cold, peak_table, lambda p, b: macs.get((str(p), b)))
    add_ratios(rows, timed)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    settings = {
        "batches": list(batches),
        "threads": list(threads),
        "providers": list(providers),
        "setups": [s.label for s in session_setups],
        "warmup": warmup,
        "iters": iters,
        "duration_s": (duration or 2.0) if iters is None else None,
        "rounds": n_rounds,
        "pin_core": pin_core,
        "torch": str(torch) if torch is not None else None,
        "torch_compile": bool(torch and torch_compile),
        "peak_size": peak_size if peak else None,
        "seed": seed,
    }
    method = MEMORY_METHOD if memory.resettable else "process lifetime peak RSS (ru_maxrss); no per-row reset"
    return {
        "kind": BENCH_KIND,
        "format": BENCH_FORMAT,
        "machine": machine,
        "settings": settings,
        "memory_method": method,
        "peak": peak_table,
        "rows": rows,
    }
