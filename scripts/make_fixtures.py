"""Train the real fixtures of tests/fixtures/ with edgegan's own trainer, deterministically, on the CPU.

Why: the export suite used to see only random-init or 300-500-step models, whose weights and activations have
not yet grown a trained model's ranges; int8 refused real Fashion-MNIST models that it passed on those (issue 20).
These are small real models: each is trained with `edgegan.trainer.train.train` (the code behind `edgegan
train`), fp32 (no autocast: bf16 would depend on the CPU's ISA), a fixed seed and a fixed torch thread count, so
a rerun on the same torch and CPU gives the same weights.

Each fixture keeps only what export reads: the config, the EMA generator's state (fp32; fp16 storage would move
the int8 ranges the tests depend on), step and epoch, as a valid edgegan checkpoint (digest included). Its `G`
entry is the same EMA tensors (torch.save stores a shared storage once), so the file is one generator's size and
`--no-ema` exports the same weights; D, optimizers and RNG states are dropped.

Usage:
    python scripts/make_fixtures.py [--only NAME ...] [--work DIR] [--threads 2]
writes tests/fixtures/NAME.pt and tests/fixtures/fixtures.json (recipe, steps, CPU and wall seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
DATA = Path("/usr/share/datasets")


@dataclass(frozen=True)
class Fixture:
    name: str
    dataset: str
    arch: str
    steps: int
    width: int
    conditional: bool = False
    train: dict[str, Any] = field(default_factory=dict)
    why: str = ""


# The recipes: issue 20's Fashion-MNIST reproduction used lr 5e-4 / lr-d 1e-3 / EMA 0.99 at 8,160 steps; at lr
# 1e-3 the weights reach a trained model's ranges sooner (docs/reference_figures.md: FID 27 at 4,080 steps, better than the
# defaults at 8,160), which keeps the CPU time affordable. Widths 32 for the MNIST fixtures keep the files small.
RECIPES = (
    Fixture(
        "fm_dcgan",
        "fashion-mnist",
        "dcgan",
        2811,
        64,
        train={"lr": 1e-3, "ema_decay": 0.99},
        why="DCGAN at the default width trained 3 epochs: the old int8 max-error check (0.05) refused it",
    ),
    Fixture(
        "mnist_cdcgan",
        "mnist",
        "dcgan",
        2000,
        32,
        conditional=True,
        train={"lr": 5e-4, "ema_decay": 0.99},
        why="class-conditional DCGAN (label embedding joined to z)",
    ),
    Fixture(
        "mnist_gan",
        "mnist",
        "gan",
        2000,
        32,
        train={"lr": 5e-4, "ema_decay": 0.99},
        why="MLP GAN (Linear + BatchNorm generator)",
    ),
)


def train_one(fx: Fixture, work: Path, threads: int) -> dict[str, Any]:
    """Train `fx` into work/NAME (a normal run folder) and write tests/fixtures/NAME.pt; returns its record."""
    import torch

    from edgegan.trainer.config import ModelConfig, TrainConfig
    from edgegan.trainer.train import train

    torch.set_num_threads(threads)
    cfg = TrainConfig(
        model=ModelConfig(arch=fx.arch, nz=100, image_size=28, width=fx.width),
        dataset=fx.dataset,
        data_dir=str(DATA / fx.dataset),
        conditional=fx.conditional,
        max_steps=fx.steps,
        seed=0,
        device="cpu",
        amp="off",
        log_every=50,
        **_pinned(fx),
    )
    run = work / fx.name
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = train(cfg, run, resume=(run / "checkpoints" / "last.pt").exists(), progress=True)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    ckpt = write_fixture(run / "checkpoints" / "last.pt", fx.name)
    return {
        "file": f"{fx.name}.pt",
        "why": fx.why,
        "arch": fx.arch,
        "dataset": fx.dataset,
        "conditional": fx.conditional,
        "width": fx.width,
        "steps": int(ckpt["step"]),
        "batch_size": 64,
        "seed": 0,
        "amp": "off",
        "torch_threads": threads,
        **fx.train,
        "command": _command(fx),
        "cpu_seconds": round(cpu),
        "wall_seconds": round(wall),
        "images_per_second": round(result.images_per_second),
        "torch": torch.__version__,
        "bytes": (FIXTURES / f"{fx.name}.pt").stat().st_size,
    }


def write_fixture(source: Path, name: str) -> dict[str, Any]:
    """tests/fixtures/NAME.pt from a training checkpoint: config, EMA generator (also as G), step, epoch."""
    from edgegan.trainer.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(source)
    ema = {k: v.contiguous() for k, v in ckpt["G_ema"].items()}  # one storage, saved once under both keys
    FIXTURES.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        {
            "config": ckpt["config"],
            "class_names": ckpt.get("class_names", []),
            "G": ema,
            "G_ema": ema,
            "step": ckpt["step"],
            "epoch": ckpt["epoch"],
        },
        FIXTURES / f"{name}.pt",
    )
    return ckpt


def _pinned(fx: Fixture) -> dict[str, Any]:
    """fx.train over BASE for every recipe key: the committed fixtures were trained before trainer/recipes.py's rows
    existed, so a rerun must not take a row's values (a deeper D, R1, another loss) for what fx.train leaves unset."""
    from edgegan.trainer.recipes import BASE

    return {**BASE, **fx.train}


def _command(fx: Fixture) -> str:
    """The equivalent `edgegan train` line (the script runs the same function with threads pinned)."""
    extra = " ".join(
        f"--{k.replace('_', '-')} {format(v, 'g') if isinstance(v, float) else v}" for k, v in _pinned(fx).items()
    )
    return (
        f"edgegan train --arch {fx.arch} --dataset {fx.dataset} --data-dir {DATA / fx.dataset}"
        f"{' --conditional' if fx.conditional else ''} --width {fx.width} --max-steps {fx.steps} {extra} "
        "--seed 0 --device cpu --amp off --out RUN"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="fixture names (default: all)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgegan-fixture-runs"), help="run folders")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the weights depend on it)")
    args = parser.parse_args(argv)
    names = {fx.name for fx in RECIPES}
    unknown = set(args.only or []) - names
    if unknown:
        print(f"unknown fixture(s) {sorted(unknown)}; known: {sorted(names)}", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    record_path = FIXTURES / "fixtures.json"
    for fx in RECIPES:
        if args.only and fx.name not in args.only:
            continue
        record = train_one(fx, args.work, args.threads)
        # read just before writing: fixtures trained by parallel runs of this script each add their own entry
        records = json.loads(record_path.read_text()) if record_path.exists() else {}
        records[fx.name] = record
        record_path.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
        print(f"{fx.name}: {record}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
