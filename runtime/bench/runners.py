"""What `edgegan.runtime.bench.harness` times: the Runner protocol, the onnxruntime generator runner with its session set-ups,
and the machine-peak matrix product. numpy + onnxruntime only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgegan.runtime.contract import OUTPUT_UINT8_NHWC, default_labels, draw_latents
from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.onnx_bytes import matmul_model

PEAK_SIZE = 2048


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
        split: run the batch as `split` parts on `split` sessions at once, each with threads // split threads
            (only at thread counts >= split).
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
        elif key == "spin" and value in bools:
            setup = replace(setup, spin=bools[value])
        elif key == "preopt" and value in bools:
            setup = replace(setup, preopt=bools[value])
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


# ------------------------------------------------------------------------------------------- the runners
def _session_options(setup: SessionSetup, threads: int, opt: str | None = None) -> Any:
    import onnxruntime as ort

    from edgegan.runtime.providers import session_options

    options = session_options(threads, graph_optimization=opt or setup.opt, spinning=setup.spin)
    if setup.mode == "parallel":
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    return options


class OrtRunner:
    """An edgegan generator on onnxruntime through `runtime.Generator`, timing `generate_float` (or `generate`
    for a uint8-pixel model): the call a user makes, without the float -> uint8 conversion for float models."""

    optional = False

    def __init__(
        self,
        path: str | os.PathLike,
        provider: str,
        threads: int,
        setup: SessionSetup = SessionSetup(),
        max_batch: int = 1 << 20,
    ):
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
        self._load_path, self._opt = self.path, None
        if setup.preopt:
            if provider != "cpu" or self.path.suffix.lower() != ".onnx":
                raise BenchError(
                    "--ort preopt=on is for .onnx models on the cpu provider (the saved graph holds CPU kernels)"
                )
            from edgegan.runtime.providers import optimized_model

            # The offline step, done here so the timed load is what a later process pays: it finds the file.
            self._load_path, self._opt = optimized_model(self.path), "disable"

    def load(self) -> None:
        from edgegan.runtime.generator import Generator

        path, opt = self._load_path, self._opt
        parts = self.setup.split
        per_part = max(1, self.threads // parts)
        plain = replace(self.setup, split=1) == SessionSetup()
        for _ in range(parts):
            options = None if plain else _session_options(self.setup, per_part, opt)  # None: Generator's default
            self._generators.append(
                Generator(
                    path,
                    provider=self.provider_asked,
                    threads=per_part,
                    batch_size=self.max_batch,
                    session_options=options,
                )
            )
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
        self._calls = [
            self._call(g, z[a:b], None if labels is None else labels[a:b])
            for g, a, b in zip(self._generators, bounds[:-1], bounds[1:])
        ]

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

        from edgegan.runtime.providers import (
            check_provider,
            output_device,
            provider_chain,
            resolve_provider,
            session_options,
        )

        asked = resolve_provider(self.provider_asked)
        session = ort.InferenceSession(
            matmul_model(self.size), session_options(self.threads, spinning=False), providers=provider_chain(asked)
        )
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

        def run() -> None:
            session.run_with_iobinding(binding)
            binding.synchronize_outputs()  # the product is finished on the device when the call returns

        self._run = run

    def activate(self) -> None:
        pass

    def prepare(self, batch: int) -> None:
        pass

    def run(self) -> None:
        assert self._run is not None
        self._run()
