"""Every GPU figure of issue 23's Targets in one run (under 4 minutes on an H200): one JSON and one markdown table.

What it does, in order:
  1. Checks CUDA: torch must see a GPU, and onnxruntime must offer and really start CUDAExecutionProvider (after
     `onnxruntime.preload_dlls()`, which loads the CUDA/cuDNN libraries of torch's nvidia packages). Anything
     missing FAILS LOUDLY: one line on stderr, exit status 1. This script never skips: it is the H200 run.
  2. The model: --run RUN|CKPT (a trained edgegan run or checkpoint), or by default trains a DCGAN 28x28 (width 64,
     nz 100, batch 64: the docs/reference_figures.md model) for --train-steps steps on CUDA, on the real Fashion-MNIST where it
     is found ($EDGEGAN_DATA, /usr/share/datasets) or else on random images (timings do not depend on the weights).
  3. Exports it with --cuda --fp16 (generator.onnx: phase form; generator.cuda.onnx: plain ConvTranspose;
     generator.fp16.onnx), and writes the fp16 conversion of the cuda form beside them (not a shipped file).
  4. Times, interleaved round by round, median of synchronised calls (numpy in -> numpy out unless noted), at
     --batches (default 1, 64, 1024): torch eager fp32 (the base), torch autocast fp16, and `Generator` in each form
     and option (default options, CUDA graph on, fp16, device output through DLPack).
  5. Times training steps at batch 64 on tensors already on the GPU: a plain pytorch/examples-style loop (eager,
     fp32, the same models' layout, no .item() per step), edgegan's eager step, its one-graph step
     (trainer/cuda_step.py, amp auto and amp off), and the graph step under --deterministic (its cost).
  6. Judges the Targets (ratios to torch eager fp32 at the same batch) and writes OUT/gpu_check.json and
     OUT/gpu_check.md.

Targets (issue 23): `Generator` numpy in/out vs torch eager fp32 <= 1.0x at batch 1, <= 0.8x at 64, <= 0.5x at
1024; device output at 1024 <= 0.3x; fp16 faster than fp32 at batch >= 64; CUDA training at batch 64 >= 3x the
plain loop. `Generator` here is `Generator(export_folder, provider="cuda").generate(z)` with default options
(uint8 pixels to the host, what a caller gets); the other rows show which options should become the defaults.

On the GPU machine (no internet; docs/gpu_machine.md), from the project root:
  here:    bash scripts/gpu/make_carry.sh   (onnxruntime-gpu for CUDA 13 / Python 3.12 in pieces of one
           transfer each, .carry0 .. .carryK, plus .carry-data with Fashion-MNIST and on_device.sh; it prints the
           order to send them in)
  there:   for each earlier piece: mkdir -p /tmp/ortgpu; cp .carryI/* /tmp/ortgpu/
           with the last piece and .carry-data: source .carry-data/on_device.sh   (joins and checks the pieces,
           installs onnxruntime-gpu into /tmp/site on PYTHONPATH and edgegan editable, sets EDGEGAN_DATA)
           python -m benchmarks.gpu_check --out $OUT
The script calls onnxruntime.preload_dlls() itself before its first CUDA session.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from edgegan.runtime.errors import exception_summary

REPO = Path(__file__).resolve().parents[1]

TARGETS = {1: 1.0, 64: 0.8, 1024: 0.5}  # Generator / torch eager fp32, numpy in/out
DEVICE_OUTPUT_TARGET = (1024, 0.3)
TRAIN_TARGET = 3.0  # edgegan's CUDA step / the plain loop, images/s at batch 64
TRAIN_BATCH = 64


class CheckFailed(RuntimeError):
    """What the run needs is missing: the one line the script prints before exiting 1."""


# ------------------------------------------------------------------------------------------------- CUDA check
def check_cuda() -> dict:
    """torch's GPU and onnxruntime's CUDA provider, or CheckFailed naming what is missing."""
    try:
        import torch
    except ImportError as exc:
        raise CheckFailed(f"torch is not installed ({exc}); this check needs torch with CUDA") from exc
    if not torch.cuda.is_available():
        raise CheckFailed(f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)")
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise CheckFailed(f"onnxruntime is not installed ({exc})") from exc
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        preload()  # CUDA/cuDNN from torch's nvidia packages, before the first CUDA session
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise CheckFailed(
            f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (available: "
            f"{', '.join(available)}): install onnxruntime-gpu (see --help for the carry)"
        )
    from edgegan.runtime.onnx_bytes import matmul_model
    from edgegan.runtime.providers import provider_chain

    try:  # the provider is listed even where its libraries fail to load: start one session to be sure
        session = ort.InferenceSession(matmul_model(8), providers=provider_chain("CUDAExecutionProvider"))
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types
        raise CheckFailed(f"onnxruntime's CUDA provider does not start: {str(exc).splitlines()[0]}") from exc
    if session.get_providers()[0] != "CUDAExecutionProvider":
        raise CheckFailed(f"onnxruntime fell back to {session.get_providers()[0]}: its CUDA libraries did not load")
    return {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor(),
    }


# ---------------------------------------------------------------------------------------------------- model
def _training_data(root: Path) -> tuple[str, str]:
    """(dataset, data_dir): the real Fashion-MNIST where found, else an .npz of random 28x28 images."""
    for base in (os.environ.get("EDGEGAN_DATA"), "/usr/share/datasets"):
        if base and (Path(base) / "fashion-mnist" / "train-images-idx3-ubyte.gz").is_file():
            return "fashion-mnist", str(Path(base) / "fashion-mnist")
    import numpy as np

    rng = np.random.default_rng(0)
    path = root / "random.npz"
    np.savez(path, images=rng.integers(0, 256, (4096, 28, 28, 1), dtype=np.uint8), labels=np.arange(4096) % 10)
    return "npz", str(path)


def train_briefly(root: Path, steps: int, notes: list[str]) -> Path:
    """A DCGAN 28x28 trained `steps` steps on CUDA; its run folder. Should the CUDA-graph step fail, the eager step
    trains it instead (the failure goes to `notes`, and the training figures below say it again)."""
    from edgegan.trainer.config import ModelConfig, TrainConfig
    from edgegan.trainer.cuda_step import ENV_SWITCH
    from edgegan.trainer.train import train

    dataset, data_dir = _training_data(root)
    cfg = TrainConfig(
        model=ModelConfig(arch="dcgan", nz=100, image_size=28, width=64),
        dataset=dataset,
        data_dir=data_dir,
        batch_size=TRAIN_BATCH,
        max_steps=steps,
        log_every=50,
        device="cuda",
    )
    try:
        train(cfg, root / "run", progress=False)
        return root / "run"
    except Exception as exc:  # noqa: BLE001 - the inference figures still need a model
        notes.append(f"training with the CUDA-graph step failed ({type(exc).__name__}: {exc}); trained eagerly")
    os.environ[ENV_SWITCH] = "0"
    try:
        train(cfg, root / "run_eager", progress=False)
    finally:
        del os.environ[ENV_SWITCH]
    return root / "run_eager"


def export_forms(source: Path, root: Path) -> dict[str, Path]:
    """Export with --cuda --fp16, plus the fp16 conversion of the cuda form; name -> file."""
    import onnx

    from edgegan.export.onnx import set_contract_metadata
    from edgegan.export.pipeline import export_checkpoint
    from edgegan.export.variants import convert_fp16
    from edgegan.runtime.contract import GeneratorContract

    out = root / "export"
    export_checkpoint(source, out, cuda=True, fp16=True, progress=False, quality_gate=False)
    cuda = onnx.load(str(out / "generator.cuda.onnx"))
    contract = GeneratorContract.from_metadata({p.key: p.value for p in cuda.metadata_props})
    fp16 = convert_fp16(cuda)
    set_contract_metadata(fp16, replace(contract, precision="fp16"))
    extra = root / "generator.cuda.fp16.onnx"  # outside the export: not a shipped, verified file
    onnx.save(fp16, str(extra))
    return {
        "folder": out,
        "phase fp32": out / "generator.onnx",
        "cuda fp32": out / "generator.cuda.onnx",
        "phase fp16": out / "generator.fp16.onnx",
        "cuda fp16": extra,
    }


# --------------------------------------------------------------------------------------------------- timing
def interleaved(calls: dict[str, Callable[[], object]], rounds: int, min_s: float, warmup: int) -> dict[str, dict]:
    """Median ms per call of each callable, timed round by round in turn (each call returns when finished)."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(rounds):
        names = list(calls)
        names = names[r % len(names) :] + names[: r % len(names)]  # who goes first rotates
        for name in names:
            start = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                calls[name]()
                times[name].append((time.perf_counter() - t0) * 1e3)
                if time.perf_counter() - start >= min_s and len(times[name]) >= 3 * (r + 1):
                    break
    return {name: {"p50_ms": statistics.median(t), "calls": len(t), "min_ms": min(t)} for name, t in times.items()}


def inference_rows(forms: dict[str, Path], source: Path, batches: list[int], rounds: int, min_s: float) -> list[dict]:
    import torch

    from edgegan.runtime import Generator
    from edgegan.runtime.contract import default_labels, draw_latents
    from edgegan.runtime.providers import CudaOptions
    from edgegan.trainer.sample import load_generator

    G, cfg, _ = load_generator(source, use_ema=True)
    G = G.to("cuda").eval()
    graph = CudaOptions(cuda_graph=True)
    top = max(batches)
    load_errors: dict[str, str] = {}

    def attempt(name: str, make: Callable[[], object], errors: dict[str, str]) -> object | None:
        """A configuration that fails (to load, or later to run) is recorded in its rows; the others go on."""
        try:
            return make()
        except Exception as exc:  # noqa: BLE001 - one failed option must not cost the whole H200 run
            errors[name] = exception_summary(exc)
            return None

    made = {
        "Generator fp32 (default: cuda form)": lambda: Generator(forms["folder"], provider="cuda", batch_size=top),
        "Generator fp32 cuda form + CUDA graph": lambda: Generator(
            forms["cuda fp32"], provider="cuda", batch_size=top, cuda=graph
        ),
        "Generator fp16 cuda form": lambda: Generator(forms["cuda fp16"], provider="cuda", batch_size=top),
        "Generator fp16 cuda form + CUDA graph": lambda: Generator(
            forms["cuda fp16"], provider="cuda", batch_size=top, cuda=graph
        ),
        "Generator fp32 phase form (generator.onnx)": lambda: Generator(
            forms["phase fp32"], provider="cuda", batch_size=top
        ),
        "Generator fp16 phase form (generator.fp16.onnx)": lambda: Generator(
            forms["phase fp16"], provider="cuda", batch_size=top
        ),
        "Generator fp32 cuda form, device output (DLPack)": lambda: Generator(
            forms["cuda fp32"], provider="cuda", batch_size=top, output="dlpack"
        ),
        "Generator fp16 cuda form, device output (DLPack)": lambda: Generator(
            forms["cuda fp16"], provider="cuda", batch_size=top, output="dlpack"
        ),
    }
    gens = {name: g for name, make in made.items() if (g := attempt(name, make, load_errors)) is not None}
    rows = []
    for batch in batches:
        z = draw_latents(batch, cfg.model.nz, 0)  # [batch, nz] on the host: numpy in
        labels = default_labels(batch, cfg.model.num_classes) if cfg.model.num_classes else None  # [batch]
        y = None if labels is None else torch.from_numpy(labels).to("cuda")

        def torch_call(dtype=None, z=z, y=y):
            cast = torch.autocast("cuda", dtype=dtype) if dtype else torch.autocast("cuda", enabled=False)
            with torch.inference_mode(), cast:
                return G(torch.from_numpy(z).to("cuda"), y).float().cpu().numpy()  # .cpu() waits: synchronised

        calls: dict[str, Callable[[], object]] = {
            "torch eager fp32": torch_call,
            "torch autocast fp16": lambda: torch_call(torch.float16),
        }
        default = gens.get("Generator fp32 (default: cuda form)")
        if default is not None:
            calls["Generator fp32 (default: cuda form), generate_float"] = lambda g=default, z=z, labels=labels: (
                g.generate_float(z, labels)
            )
        # onnxruntime's Run returns when its stream has finished, so a device output is complete on return too
        calls.update({name: (lambda g=g, z=z, labels=labels: g.generate(z, labels)) for name, g in gens.items()})
        errors = dict(load_errors)
        for name in list(calls):  # one first call each: a configuration that fails here is recorded, not timed
            if attempt(name, calls[name], errors) is None and name in errors:
                del calls[name]
        figures = interleaved(calls, rounds, min_s, warmup=3)
        base = figures["torch eager fp32"]["p50_ms"]
        for name, f in figures.items():
            rows.append(
                {
                    "batch": batch,
                    "engine": name,
                    **f,
                    "ratio": f["p50_ms"] / base,
                    "error": None,
                    "output": "device uint8"
                    if "device output" in name
                    else "float32 host"
                    if name.startswith("torch") or name.endswith("generate_float")
                    else "uint8 host",
                }
            )
        rows += [
            {"batch": batch, "engine": name, "p50_ms": None, "ratio": None, "output": None, "error": error}
            for name, error in errors.items()
        ]
    return rows


# ------------------------------------------------------------------------------------------------- training
def training_rows(data_source: tuple[str, str], steps: int, rounds: int) -> list[dict]:
    import torch
    from torch import nn

    from benchmarks.train_throughput import ExamplesDiscriminator, ExamplesGenerator, examples_weights_init
    from edgegan.runtime.evaluation.datasets import load_images
    from edgegan.trainer.config import ModelConfig, TrainConfig
    from edgegan.trainer.cuda_step import GraphedGANStep, deterministic
    from edgegan.trainer.data import BatchSource
    from edgegan.trainer.step import GANStep, StepStats

    device = torch.device("cuda")
    dataset, data_dir = data_source
    data = load_images(dataset, "train", data_dir=data_dir, image_size=28, progress=False)
    base = TrainConfig(
        model=ModelConfig(arch="dcgan", nz=100, image_size=28, width=64, channels=1),
        dataset=dataset,
        batch_size=TRAIN_BATCH,
        seed=0,
        device="cuda",
    )

    class Plain:
        """pytorch/examples' loop body on images already on the GPU (a random batch sliced per step), eager fp32,
        BCE, per-tensor Adam; no .item() per step (its prints would add five host syncs)."""

        def __init__(self):
            torch.manual_seed(0)
            self.G = ExamplesGenerator().to(device).apply(examples_weights_init)
            self.D = ExamplesDiscriminator().to(device).apply(examples_weights_init)
            self.oG = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
            self.oD = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
            self.x = torch.from_numpy(data.images[:8192]).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1
            self.loss = nn.BCELoss()

        def run(self, n: int) -> None:
            ones = torch.ones(TRAIN_BATCH, device=device)
            zeros = torch.zeros(TRAIN_BATCH, device=device)
            for _ in range(n):
                idx = torch.randint(len(self.x), (TRAIN_BATCH,), device=device)
                real = self.x[idx]
                self.D.zero_grad()
                self.loss(self.D(real), ones).backward()
                fake = self.G(torch.randn(TRAIN_BATCH, 100, 1, 1, device=device))
                self.loss(self.D(fake.detach()), zeros).backward()
                self.oD.step()
                self.G.zero_grad()
                self.loss(self.D(fake), ones).backward()
                self.oG.step()

    class Edge:
        """edgegan's step fed by BatchSource (data on the GPU), statistics read every 10 steps as train() does."""

        def __init__(self, engine_cls, cfg):
            self.cfg = cfg
            self.engine = engine_cls(cfg, device)
            self.source = BatchSource(
                data, self.engine.cfg.batch_size, cfg.seed, device, channels_last=cfg.use_channels_last
            )
            self.stats = StepStats(device)
            self.t = 0

        def run(self, n: int) -> None:
            for _ in range(n):
                x, y = self.source.batch(*divmod(self.t, self.source.steps_per_epoch))
                self.stats.add(self.engine.step(x, y, self.t), self.t + 1)
                self.t += 1
                if self.t % 10 == 0:
                    self.stats.mean()

    def fitted(cfg: TrainConfig) -> TrainConfig:
        from edgegan.trainer.step import resolve_amp

        return replace(cfg, amp=resolve_amp(cfg.amp, device))

    loops: dict[str, object] = {
        "plain loop (eager fp32, data on the GPU)": Plain(),
        "edgegan eager step (amp auto)": Edge(GANStep, fitted(base)),
        "edgegan CUDA-graph step (amp auto)": Edge(GraphedGANStep, fitted(base)),
        "edgegan CUDA-graph step (amp off)": Edge(GraphedGANStep, replace(base, amp="off")),
    }

    def measure(selected: dict[str, object]) -> dict[str, float]:
        per: dict[str, list[float]] = {name: [] for name in selected}
        for loop in selected.values():
            loop.run(steps)  # warm-up (and the graph's capture)
        torch.cuda.synchronize()
        for _ in range(rounds):
            for name, loop in selected.items():
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                loop.run(steps)
                torch.cuda.synchronize()
                per[name].append(steps * TRAIN_BATCH / (time.perf_counter() - t0))
        return {name: statistics.median(v) for name, v in per.items()}

    figures = measure(loops)
    deterministic()  # process-wide, so last: its cost against the same graph step measured above
    figures["edgegan CUDA-graph step (amp auto), --deterministic"] = measure(
        {"det": Edge(GraphedGANStep, fitted(base))}
    )["det"]
    plain = figures["plain loop (eager fp32, data on the GPU)"]
    return [
        {
            "engine": name,
            "images_per_s": v,
            "vs_plain": v / plain,
            "amp": "bf16/off per device" if "auto" in name else "off",
        }
        for name, v in figures.items()
    ]


# ---------------------------------------------------------------------------------------------------- report
def _target(name: str, limit: str, value: float | None, met: Callable[[float], bool]) -> dict:
    return {"target": name, "limit": limit, "value": value, "met": value is not None and met(value)}


def judge(rows: list[dict], train: list[dict], batches: list[int]) -> list[dict]:
    """The issue's Targets against the figures; a figure whose configuration failed is a target not met."""
    at = {(r["engine"], r["batch"]): r for r in rows}

    def ratio(engine: str, batch: int) -> float | None:
        return at.get((engine, batch), {}).get("ratio")

    out = []
    for batch, limit in TARGETS.items():
        if batch in batches:
            out.append(
                _target(
                    f"Generator numpy in/out / torch eager fp32, batch {batch}",
                    f"<= {limit}",
                    ratio("Generator fp32 (default: cuda form)", batch),
                    lambda v, lim=limit: v <= lim,
                )
            )
    batch, limit = DEVICE_OUTPUT_TARGET
    if batch in batches:
        out.append(
            _target(
                f"device output / torch eager fp32, batch {batch}",
                f"<= {limit}",
                ratio("Generator fp32 cuda form, device output (DLPack)", batch),
                lambda v: v <= limit,
            )
        )
    for batch in [b for b in batches if b >= 64]:
        fp16, fp32 = ratio("Generator fp16 cuda form", batch), ratio("Generator fp32 (default: cuda form)", batch)
        value = fp16 / fp32 if fp16 is not None and fp32 is not None else None
        out.append(_target(f"fp16 / fp32 latency (cuda form), batch {batch}", "< 1", value, lambda v: v < 1))
    step = next((r for r in train if r["engine"] == "edgegan CUDA-graph step (amp auto)"), {})
    out.append(
        _target(
            f"CUDA training / plain loop, batch {TRAIN_BATCH}",
            f">= {TRAIN_TARGET}",
            step.get("vs_plain"),
            lambda v: v >= TRAIN_TARGET,
        )
    )
    return out


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"# GPU check ({m['gpu']}, torch {m['torch']} CUDA {m['cuda']}, onnxruntime {m['onnxruntime']})",
        "",
        f"{result['created']}; model: {result['model']}; medians of synchronised calls, interleaved.",
        *[f"Note: {n}" for n in result.get("notes", [])],
        "",
        "| target | limit | measured | met |",
        "| --- | --- | ---: | --- |",
    ]
    lines += [
        f"| {t['target']} | {t['limit']} | {_num(t['value'], 2)} | {'yes' if t['met'] else 'NO'} |"
        for t in result["targets"]
    ]
    lines += ["", "| batch | engine | output | p50 ms | / torch eager fp32 |", "| ---: | --- | --- | ---: | ---: |"]
    for r in result["inference"]:
        ratio = _num(r["ratio"], 2) if r["error"] is None else "failed: " + r["error"]
        lines.append(f"| {r['batch']} | {r['engine']} | {r['output'] or '-'} | {_num(r['p50_ms'], 3)} | {ratio} |")
    lines += [
        "",
        f"Training, batch {TRAIN_BATCH}:",
        "",
        "| engine | images/s | / plain loop |",
        "| --- | ---: | ---: |",
    ]
    for r in result["training"]:
        ratio = _num(r["vs_plain"], 2) if not r.get("error") else "failed: " + r["error"]
        lines.append(f"| {r['engine']} | {_num(r['images_per_s'], 0)} | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--run", type=Path, default=None, help="a trained run folder or checkpoint (default: train one briefly here)"
    )
    parser.add_argument("--train-steps", type=int, default=300, help="steps of the brief training (default 300)")
    parser.add_argument("--batches", default="1,64,1024", help="batch sizes timed (default 1,64,1024)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--min-seconds", type=float, default=0.1, help="least time per engine per round")
    parser.add_argument("--train-timing-steps", type=int, default=50, help="training steps per round (default 50)")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "benchmarks" / "results" / "gpu_check",
        help="folder for gpu_check.json and gpu_check.md",
    )
    args = parser.parse_args(argv)
    try:
        batches = [int(b) for b in args.batches.split(",")]
        if not batches or min(batches) < 1:
            raise ValueError
    except ValueError:
        print(f"gpu_check: --batches {args.batches!r}: give positive integers joined by commas", file=sys.stderr)
        return 2
    if args.run is not None and not args.run.exists():
        print(f"gpu_check: --run {args.run}: no such run folder or checkpoint", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        machine = check_cuda()
        with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
            root = Path(tmp)
            notes: list[str] = []
            source = args.run or train_briefly(root, args.train_steps, notes)
            forms = export_forms(source, root)
            inference = inference_rows(forms, source, batches, args.rounds, args.min_seconds)
            try:
                training = training_rows(_training_data(root), args.train_timing_steps, args.rounds)
            except Exception as exc:  # noqa: BLE001 - keep the inference figures of this run; say why
                training = [
                    {
                        "engine": "training",
                        "images_per_s": None,
                        "vs_plain": None,
                        "error": exception_summary(exc),
                    }
                ]
    except CheckFailed as exc:
        print(f"gpu_check: FAILED: {exc}", file=sys.stderr)
        return 1
    result = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": machine,
        "model": str(args.run) if args.run else f"DCGAN 28x28 width 64 trained {args.train_steps} steps here",
        "seconds": time.perf_counter() - started,
        "notes": notes,
        "inference": inference,
        "training": training,
    }
    result["targets"] = judge(inference, training, batches)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {args.out / 'gpu_check.json'} and gpu_check.md in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
