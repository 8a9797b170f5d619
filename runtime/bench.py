"""`run_bench`: latency of edgegan generators on onnxruntime, the machine's peak and a PyTorch baseline beside it.

numpy + onnxruntime only; never torch. Everything that runs is a *runner* (the `Runner` protocol below): the
onnxruntime generator (`OrtRunner`), the machine-peak matrix product (`MatmulRunner`) and any baseline a plugin
provides through the entry point group `edgegan.bench_baselines` (edgegan's own: `torch =
trainer.torch_bench:make_runners`, installed with `edgegan[train]`), so the PyTorch figures are timed in the same
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
4. The machine's peak is a 2048^3 float32 matrix product through the same provider and thread count, timed in
   the same rounds; effective GFLOP/s = 2 * multiply-adds counted in the graph (runtime/macs.py) / p50.

Memory: Linux's VmHWM (the process's resident high-water mark), reset through /proc/self/clear_refs before each
timed slice. `rss_peak_mib` is the whole process's high-water while the configuration ran (all loaded models
included); `mem_load_mib` and `mem_first_run_mib` are what loading, and the first call at that batch, added on
top of the resident size just before.

Example:
    >>> result = run_bench(["models/fashion/generator.onnx"], batches=(1, 64), threads=(1, 2))  # doctest: +SKIP
    >>> [(r["batch"], r["threads"], round(r["p50_ms"], 2)) for r in result["rows"]]  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import math
import os
import platform
import random
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from runtime.contract import OUTPUT_UINT8_NHWC, default_labels, draw_latents
from runtime.errors import EdgeganError
from runtime.providers import PROVIDERS, ProviderError

BENCH_FORMAT = 1
BASELINE_GROUP = "edgegan.bench_baselines"
PEAK_SIZE = 2048
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
             "amx_tile", "amx_bf16", "amx_int8")
MEMORY_METHOD = ("VmHWM from /proc/self/status (resident high-water), reset through /proc/self/clear_refs before "
                 "each timed slice; whole process, so every loaded model counts")


class BenchError(EdgeganError, ValueError):
    """A bad benchmark request: an option value, a missing baseline, a core that cannot be pinned."""


# --------------------------------------------------------------------------------------------- the protocol
@runtime_checkable
class Runner(Protocol):
    """One way to run a generator, bound to a thread count. The harness times `load` (cold start), the first
    `run` after each `prepare` (first call at that batch), then warm-up and timed `run` calls.

    Attributes:
        name: the engine, e.g. "onnxruntime", "torch eager", "torch compile".
        model: what runs (a file or checkpoint path; shown in every row).
        threads: the thread count it runs with.
        provider: what really ran (e.g. "CPUExecutionProvider", "torch cpu"); valid after `load`.
        precision, output: "fp32"/"fp16"/"int8" and "float_nchw"/"uint8_nhwc".
        optional: True when a failure should be recorded in the row and the run go on (torch.compile).
    """

    name: str
    model: str
    threads: int
    provider: str
    precision: str
    output: str
    optional: bool

    def load(self) -> None:
        """Build the session or model (timed as cold start)."""

    def activate(self) -> None:
        """Called before each slice of calls: set process-wide state, e.g. torch's thread count."""

    def prepare(self, batch: int) -> None:
        """Make the inputs for `batch` (the contract latents for seed 0; untimed)."""

    def run(self) -> None:
        """One call on the prepared batch; returns when the output is on the host."""


# ------------------------------------------------------------------------------------- session set-ups
@dataclass(frozen=True)
class SessionSetup:
    """onnxruntime session levers (`--ort KEY=VALUE,...`); "default" is the runtime's own set-up (Generator's
    default session options, whatever they are in this version).

    Attributes:
        opt: graph optimization level: disable, basic, extended, all.
        spin: intra-op threads spin while idle (the runtime's default is off; onnxruntime's own is on).
        mode: execution mode: sequential or parallel.
        split: run the batch as `split` parts on `split` sessions at once, each with threads // split threads.
        preopt: load a copy of the model that onnxruntime optimized once offline (saved beside the model) with
            optimizations off, so session creation skips them.
    """

    opt: str = "all"
    spin: bool = False
    mode: str = "sequential"
    split: int = 1
    preopt: bool = False

    @property
    def label(self) -> str:
        default = SessionSetup()
        parts = []
        for key in ("opt", "spin", "mode", "split", "preopt"):
            value = getattr(self, key)
            if value != getattr(default, key):
                parts.append(f"{key}={_on_off(value) if isinstance(value, bool) else value}")
        return ",".join(parts) or "default"


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def parse_setup(text: str) -> SessionSetup:
    """Parse "default" or "KEY=VALUE,..." (keys opt, spin, mode, split, preopt) into a SessionSetup."""
    setup = SessionSetup()
    text = text.strip()
    if text in ("", "default"):
        return setup
    bools = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False}
    for item in text.split(","):
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip().lower()
        if key == "opt" and value in ("disable", "basic", "extended", "all"):
            setup = replace(setup, opt=value)
        elif key in ("spin", "preopt") and value in bools:
            setup = replace(setup, **{key: bools[value]})
        elif key == "mode" and value in ("sequential", "parallel"):
            setup = replace(setup, mode=value)
        elif key == "split" and value.isdigit() and int(value) >= 1:
            setup = replace(setup, split=int(value))
        else:
            raise BenchError(
                f"bad --ort item {item!r}: use opt=disable|basic|extended|all, spin=on|off, "
                "mode=sequential|parallel, split=N (N >= 1), preopt=on|off, joined by commas, or 'default'"
            )
    return setup


def parse_int_list(text: str | Sequence[int], what: str) -> tuple[int, ...]:
    """"1,8,64" -> (1, 8, 64); every value a positive integer, no repeats."""
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
    """"cpu,cuda" -> ("cpu", "cuda"), each one of runtime.providers.PROVIDERS."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else [str(t) for t in text]
    items = [t for t in items if t]
    unknown = [t for t in items if t not in PROVIDERS]
    if not items or unknown:
        raise ProviderError(f"unknown provider {', '.join(unknown) or repr(text)}; choose from {', '.join(PROVIDERS)}")
    return tuple(dict.fromkeys(items))


# ------------------------------------------------------------------------------------------- the runners
def _session_options(setup: SessionSetup, threads: int, opt: str | None = None) -> Any:
    import onnxruntime as ort

    from runtime.providers import session_options

    options = session_options(threads, graph_optimization=opt or setup.opt, spinning=setup.spin)
    if setup.mode == "parallel":
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    return options


class OrtRunner:
    """An edgegan generator on onnxruntime through `runtime.Generator`, timing `generate_float` (or `generate`
    for a uint8-pixel model): the call a user makes, without the float -> uint8 conversion for float models."""

    optional = False

    def __init__(self, path: str | os.PathLike, provider: str, threads: int, setup: SessionSetup = SessionSetup(),
                 max_batch: int = 1 << 20):
        self.name = "onnxruntime"
        self.path = Path(path)
        self.model = str(path)
        self.provider_asked = provider
        self.threads = threads
        self.setup = setup
        self.max_batch = max_batch
        self.provider = "?"
        self.precision = self.output = "?"
        self._generators: list[Any] = []
        self._pool: Any = None
        self._calls: list[Callable[[], Any]] = []

    def load(self) -> None:
        from runtime.generator import Generator

        path, opt = self.path, None
        if self.setup.preopt and self.provider_asked != "cpu":
            raise BenchError("--ort preopt=on is for the cpu provider (the saved graph holds CPU kernels)")
        if self.setup.preopt and path.suffix.lower() == ".onnx":
            from runtime.providers import optimized_model

            path, opt = optimized_model(path, threads=self.threads), "disable"
        parts = self.setup.split
        per_part = max(1, self.threads // parts)
        plain = replace(self.setup, split=1) == SessionSetup()
        for _ in range(parts):
            options = None if plain else _session_options(self.setup, per_part, opt)  # None: Generator's default
            self._generators.append(Generator(path, provider=self.provider_asked, threads=per_part,
                                              batch_size=self.max_batch, session_options=options))
        first = self._generators[0]
        self.provider = first.providers[0]
        self.precision, self.output = first.precision, first.output
        if parts > 1:
            from concurrent.futures import ThreadPoolExecutor

            # session.run releases the GIL, so the parts really run at once; the caller runs the first part.
            self._pool = ThreadPoolExecutor(parts - 1, thread_name_prefix="edgegan-split")

    def _call(self, generator: Any, z: np.ndarray, labels: np.ndarray | None) -> Callable[[], Any]:
        run = generator.generate if generator.output == OUTPUT_UINT8_NHWC else generator.generate_float
        return lambda: run(z, labels)

    def activate(self) -> None:
        pass

    def prepare(self, batch: int) -> None:
        first = self._generators[0]
        z = draw_latents(batch, first.nz, 0)  # [batch, nz]
        labels = default_labels(batch, first.num_classes) if first.conditional else None
        parts = min(len(self._generators), batch)
        bounds = np.linspace(0, batch, parts + 1).astype(int)
        self._calls = [self._call(g, z[a:b], None if labels is None else labels[a:b])
                       for g, a, b in zip(self._generators, bounds[:-1], bounds[1:])]

    def run(self) -> None:
        if len(self._calls) == 1:
            self._calls[0]()
            return
        pending = [self._pool.submit(call) for call in self._calls[1:]]
        self._calls[0]()
        for future in pending:
            future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | int | str) -> bytes:
    """One protobuf field: varint (wire type 0) for ints, length-delimited (2) for bytes/str."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def matmul_model(n: int) -> bytes:
    """A float32 ONNX model C = MatMul(A [n, n], B [n, n]), serialized by hand (onnx is not a runtime
    dependency): ModelProto{ir_version 8, opset 17, graph{node, inputs A B, output C}}."""

    def value_info(name: str) -> bytes:
        dims = b"".join(_field(1, _field(1, n)) for _ in range(2))  # TensorShapeProto.dim{dim_value}
        tensor = _field(1, 1) + _field(2, dims)  # TypeProto.Tensor{elem_type FLOAT=1, shape}
        return _field(1, name) + _field(2, _field(1, tensor))  # ValueInfoProto{name, type{tensor_type}}

    node = _field(1, "A") + _field(1, "B") + _field(2, "C") + _field(4, "MatMul")
    graph = (_field(1, node) + _field(2, "peak") + _field(11, value_info("A")) + _field(11, value_info("B"))
             + _field(12, value_info("C")))
    return _field(1, 8) + _field(7, graph) + _field(8, _field(1, "") + _field(2, 17))


class MatmulRunner:
    """The machine's practical peak: a float32 n x n x n matrix product through one provider and thread count."""

    name = "matmul"
    precision = "fp32"
    output = "-"
    optional = False

    def __init__(self, provider: str, threads: int, size: int = PEAK_SIZE):
        self.provider_asked = provider
        self.threads = threads
        self.size = size
        self.model = f"matmul {size}^3 fp32"
        self.provider = "?"
        self.macs = size**3
        self._run: Callable[[], Any] | None = None

    def load(self) -> None:
        import onnxruntime as ort

        from runtime.providers import check_provider, output_device, provider_chain, resolve_provider, session_options

        asked = resolve_provider(self.provider_asked)
        session = ort.InferenceSession(matmul_model(self.size), session_options(self.threads, spinning=False),
                                       providers=provider_chain(asked))
        check_provider(session, asked, allow_fallback=self.provider_asked == "auto")
        self.provider = session.get_providers()[0]
        rng = np.random.default_rng(0)
        a, b = (rng.standard_normal((self.size, self.size), dtype=np.float32) for _ in range(2))
        device = output_device(session)
        if device == "cpu":
            self._run = lambda: session.run(["C"], {"A": a, "B": b})
            return
        # On a GPU the inputs stay on the device: copying 32 MB per call would time the bus, not the math.
        binding = session.io_binding()
        for name, array in (("A", a), ("B", b)):
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, device, 0))
        binding.bind_output("C", device)
        self._run = lambda: session.run_with_iobinding(binding)

    def activate(self) -> None:
        pass

    def prepare(self, batch: int) -> None:
        pass

    def run(self) -> None:
        assert self._run is not None
        self._run()


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
    points = [p for dist in importlib.metadata.distributions() for p in dist.entry_points
              if p.group == BASELINE_GROUP and p.name == name]
    hint = "pip install 'edgegan[train]'" if name == "torch" else f"install the package that provides {name!r}"
    if not points:
        raise BenchError(f"--{name} needs the {name!r} benchmark baseline, which is not installed: {hint} "
                         f"(it registers entry point group {BASELINE_GROUP!r}; reinstall edgegan if it is missing)")
    try:
        return points[0].load()
    except ImportError as exc:
        raise BenchError(f"--{name} needs {exc.name or 'a package'!r}, which is not installed: {hint}") from exc


# ------------------------------------------------------------------------------------------- the machine
def _cpuinfo() -> dict[str, Any]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine(), "flags": [], "physical_cores": None}
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    cores = set(re.findall(r"^physical id\s*:\s*(\d+)$.*?^core id\s*:\s*(\d+)$", text, re.M | re.S))
    present = set(flags.group(1).split()) if flags else set()
    return {"model": model.group(1).strip() if model else platform.processor(),
            "flags": [f for f in CPU_FLAGS if f in present], "physical_cores": len(cores) or None}


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)  # reads the metadata; does not import the package
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """The machine and library versions that head every benchmark's output.

    Returns:
        cpu (model, logical and usable CPUs, physical cores, SIMD flags), memory, OS, load average, and
        versions of python, numpy, onnxruntime, onnx, torch (torch only read from package metadata).
    """
    import onnxruntime as ort

    cpu = _cpuinfo()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = None
    with contextlib.suppress(OSError, AttributeError):
        memory = round(int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 2**20, 1)
    return {
        "cpu": cpu["model"], "logical_cpus": os.cpu_count(), "usable_cpus": usable,
        "physical_cores": cpu["physical_cores"], "flags": cpu["flags"], "memory_gib": memory,
        "os": platform.platform(), "loadavg": [round(x, 2) for x in os.getloadavg()],
        "providers": list(ort.get_available_providers()),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "onnxruntime": ort.__version__,
                     "onnx": _version("onnx"), "torch": _version("torch"), "edgegan": _version("edgegan")},
    }


def machine_slug(info: dict[str, Any]) -> str:
    """A file-name-safe machine name, e.g. "amd-epyc-2cpu"."""
    name = re.sub(r"\((r|tm)\)|cpu @.*|processor", "", str(info.get("cpu", "cpu")).lower())
    name = re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "cpu"
    return f"{name}-{info.get('usable_cpus') or info.get('logical_cpus')}cpu"


# ------------------------------------------------------------------------------------------- memory
def _status_kib(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+)\s+kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _Memory:
    """Resident high-water around a block of calls, in MiB."""

    def __init__(self) -> None:
        self.resettable = _reset_hwm()

    def start(self) -> int:
        if self.resettable:
            _reset_hwm()
        return _status_kib("VmRSS") or 0

    @staticmethod
    def peak() -> int:
        hwm = _status_kib("VmHWM")
        if hwm is None:  # not Linux: the process lifetime peak (KiB on Linux, bytes on macOS)
            import resource

            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
        return hwm


@contextlib.contextmanager
def pinned(core: int | None) -> Iterator[None]:
    """Run the block on one CPU core (os.sched_setaffinity), restoring the previous set after.

    Threads created inside the block (onnxruntime's and torch's pools) inherit the affinity.
    """
    if core is None:
        yield
        return
    if not hasattr(os, "sched_setaffinity"):
        raise BenchError("--pin-core needs os.sched_setaffinity (Linux)")
    before = os.sched_getaffinity(0)
    if core not in before:
        raise BenchError(f"--pin-core {core}: this process may use CPUs {sorted(before)}; pick one of them")
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# ------------------------------------------------------------------------------------------- the harness
@dataclass
class _Config:
    """One (runner, batch) being timed."""

    runner: Any
    batch: int
    key: tuple
    first_run_s: float | None = None
    mem_first_run_mib: float | None = None
    iters: int = 0
    times: list[float] = field(default_factory=list)  # seconds, every timed call
    rounds: list[list[float]] = field(default_factory=list)  # the same calls, per round
    rss_peak_kib: int = 0
    error: str | None = None


def _stats(times: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": float(ms.mean()),
            "min_ms": float(ms.min())}


def _spread(rounds: Sequence[Sequence[float]]) -> float | None:
    """Relative spread of the per-round medians: (p75 - p25) / median; the run's noise for one row."""
    medians = [float(np.median(r)) for r in rounds if r]
    if len(medians) < 2:
        return None
    q25, q50, q75 = np.percentile(medians, [25, 50, 75])
    return float((q75 - q25) / q50) if q50 > 0 else None


def _say(log: Callable[[str], None] | None, message: str) -> None:
    if log is not None:
        log(message)


def _fail(runner: Any, exc: Exception) -> str:
    if not getattr(runner, "optional", False):
        raise exc
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]


def _plan_iterations(iters: int | None, duration: float | None, warm: Sequence[float]) -> int:
    if iters is not None:
        return iters
    estimate = float(np.median(warm)) if warm else 0.01
    return int(min(100_000, max(10, math.ceil((duration or 2.0) / max(estimate, 1e-6)))))


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
        pin_core: run everything on this one CPU core.
        peak: measure the machine's peak (matmul) per provider and thread count.
        peak_size: n of the n x n x n peak matrix product.
        seed: seed of the shuffled round order.
        log: called with one-line progress messages.

    Returns:
        {"format", "machine", "settings", "memory_method", "peak": [...], "rows": [...]}: one row per
        configuration with latency percentiles, images/s, cold start, memory, provider, precision, output form,
        multiply-adds, GFLOP/s, share of peak and (with `torch`) ratios to the torch rows.

    Raises:
        BenchError, ProviderError, ModelFileError, ContractError (EdgeganError): bad options or models.
    """
    from runtime.generator import resolve_model_path
    from runtime.macs import count_macs

    batches, threads = parse_int_list(batches, "batch"), parse_int_list(threads, "threads")
    providers = parse_providers(providers)
    setups = [s if isinstance(s, SessionSetup) else parse_setup(s) for s in setups] or [SessionSetup()]
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

    with pinned(pin_core):
        machine = machine_info()
        runners: list[Any] = [OrtRunner(p, prov, t, s, max(batches)) for p in paths for prov in providers
                              for s in setups for t in threads]
        if factory is not None:
            for t in threads:
                runners += factory(str(torch), t, compile=torch_compile)
        peaks = [MatmulRunner(prov, t, peak_size) for prov in providers for t in threads] if peak else []
        memory = _Memory()
        cold: dict[int, dict[str, Any]] = {}
        for runner in runners + peaks:
            _say(log, f"loading {runner.name} {runner.model} ({runner.threads} threads)")
            rss0 = memory.start()
            start = time.perf_counter()
            try:
                runner.load()
                cold[id(runner)] = {"create_s": time.perf_counter() - start,
                                    "mem_load_mib": (memory.peak() - rss0) / 1024}
            except Exception as exc:  # noqa: BLE001 - optional runners record it; others re-raise
                cold[id(runner)] = {"error": _fail(runner, exc)}

        configs = [_Config(r, b, (id(r), b)) for r in runners for b in batches]
        configs += [_Config(p, 1, (id(p), 1)) for p in peaks]
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

        live = [c for c in configs if not c.error]
        n_rounds = max(1, min(rounds, min((c.iters for c in live if c.iters), default=1)))
        for config in live:
            if isinstance(config.runner, MatmulRunner):
                config.iters = 2 * n_rounds  # two products a round: enough for a median, cheap next to the rest
        order = random.Random(seed)
        _say(log, f"timing {len(live)} configurations in {n_rounds} interleaved rounds")
        for r in range(n_rounds):
            visit = list(live)
            order.shuffle(visit)
            for config in visit:
                share = config.iters // n_rounds + (1 if r < config.iters % n_rounds else 0)
                runner = config.runner
                runner.activate()
                runner.prepare(config.batch)
                times: list[float] = []
                memory.start()
                for _ in range(share):
                    start = time.perf_counter()
                    runner.run()
                    times.append(time.perf_counter() - start)
                config.rss_peak_kib = max(config.rss_peak_kib, memory.peak())
                config.times += times
                config.rounds.append(times)
        for runner in runners:
            if hasattr(runner, "close"):
                runner.close()

    peak_rows = _peak_rows([c for c in configs if isinstance(c.runner, MatmulRunner)], cold)
    rows = _rows([c for c in configs if not isinstance(c.runner, MatmulRunner)], cold, peak_rows, count_macs)
    _add_ratios(rows, [c for c in configs if not isinstance(c.runner, MatmulRunner)])
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    settings = {"batches": list(batches), "threads": list(threads), "providers": list(providers),
                "setups": [s.label for s in setups], "warmup": warmup, "iters": iters,
                "duration_s": duration if iters is None else None, "rounds": n_rounds, "pin_core": pin_core,
                "torch": str(torch) if torch is not None else None, "torch_compile": bool(torch and torch_compile),
                "peak_size": peak_size if peak else None, "seed": seed}
    method = MEMORY_METHOD if memory.resettable else "process lifetime peak RSS (ru_maxrss); no per-row reset"
    return {"format": BENCH_FORMAT, "machine": machine, "settings": settings, "memory_method": method,
            "peak": peak_rows, "rows": rows}


def _peak_rows(configs: Sequence[_Config], cold: dict[int, dict]) -> list[dict[str, Any]]:
    out = []
    for c in configs:
        row: dict[str, Any] = {"provider": c.runner.provider, "provider_asked": c.runner.provider_asked,
                               "threads": c.runner.threads, "size": c.runner.size, "iters": len(c.times)}
        if c.error or not c.times:
            row["error"] = c.error or "no timed calls"
        else:
            stats = _stats(c.times)
            row.update(p50_ms=stats["p50_ms"], gflops=2 * c.runner.macs / (stats["p50_ms"] / 1e3) / 1e9,
                       spread=_spread(c.rounds))
        out.append(row)
    return out


def _rows(configs: Sequence[_Config], cold: dict[int, dict], peaks: Sequence[dict], count_macs: Callable) -> list[dict]:
    macs_cache: dict[tuple[str, int], Any] = {}
    rows = []
    for c in configs:
        r = c.runner
        info = cold[id(r)]
        row: dict[str, Any] = {
            "model": r.model, "engine": r.name, "setup": r.setup.label if isinstance(r, OrtRunner) else getattr(r, "setup", None),
            "provider": r.provider, "provider_asked": getattr(r, "provider_asked", None), "threads": r.threads,
            "batch": c.batch, "precision": r.precision, "output": r.output, "iters": len(c.times),
            "rounds": len(c.rounds), "cold_create_s": info.get("create_s"), "cold_first_run_s": c.first_run_s,
            "mem_load_mib": info.get("mem_load_mib"), "mem_first_run_mib": c.mem_first_run_mib,
            "rss_peak_mib": c.rss_peak_kib / 1024 if c.rss_peak_kib else None, "error": c.error,
        }
        if not c.error and c.times:
            row.update(_stats(c.times))
            row["images_per_s"] = c.batch / (row["p50_ms"] / 1e3)
            row["spread"] = _spread(c.rounds)
        row["macs"] = row["macs_uncounted"] = None
        if isinstance(r, OrtRunner):
            key = (str(r.path), c.batch)
            if key not in macs_cache:
                macs_cache[key] = count_macs(r.path, c.batch)
            if macs_cache[key] is not None:
                row["macs"], row["macs_uncounted"] = macs_cache[key].total, macs_cache[key].uncounted
        elif callable(getattr(r, "macs", None)) and not c.error:  # a baseline may count its own work
            row["macs"] = r.macs(c.batch)
        peak = next((p for p in peaks if p["threads"] == r.threads and "gflops" in p
                     and p["provider_asked"] == getattr(r, "provider_asked", "cpu")), None)
        row["peak_gflops"] = peak["gflops"] if peak else None
        if row["macs"] and row.get("p50_ms"):
            row["gflops"] = 2 * row["macs"] / (row["p50_ms"] / 1e3) / 1e9
            row["peak_share"] = row["gflops"] / peak["gflops"] if peak else None
        else:
            row["gflops"] = row["peak_share"] = None
        rows.append(row)
    return rows


def _add_ratios(rows: list[dict], configs: Sequence[_Config]) -> None:
    """ratio = p50 / torch eager p50 (and / torch compile p50) at the same threads and batch, plus the range of
    the same ratio computed inside each round (neighbours in time)."""
    by_engine = {(row["engine"], row["threads"], row["batch"]): (row, c) for row, c in zip(rows, configs)}
    for row, c in zip(rows, configs):
        for engine, key in (("torch eager", "ratio"), ("torch compile", "ratio_compile")):
            base = by_engine.get((engine, row["threads"], row["batch"]))
            row[key] = None
            if row["engine"].startswith("torch") or base is None or not base[0].get("p50_ms") or not row.get("p50_ms"):
                continue
            row[key] = row["p50_ms"] / base[0]["p50_ms"]
            if engine == "torch eager":
                # The same useful work for every engine: the baseline's own multiply-adds (a sub-pixel graph
                # counts its padding work too, which `gflops` includes and this does not).
                if base[0].get("macs"):
                    row["useful_gflops"] = 2 * base[0]["macs"] / (row["p50_ms"] / 1e3) / 1e9
                    if row.get("peak_gflops"):
                        row["useful_peak_share"] = row["useful_gflops"] / row["peak_gflops"]
                per_round = [float(np.median(a)) / float(np.median(b)) for a, b in zip(c.rounds, base[1].rounds)
                             if a and b]
                row["ratio_rounds"] = [min(per_round), max(per_round)] if per_round else None
