"""Time to quality: edgegan's default DCGAN vs a plain pytorch/examples-style loop, per minute or per step.

Both arms train the same DCGAN 28x28 (edgegan.trainer.models, width 64, nz 100) on the real Fashion-MNIST (or MNIST)
training split, one after the other on this machine. Two modes:
  wall clock  each arm runs `--minutes` counted from the start of its setup (data in memory, models built);
              snapshots at the marks of `--at` (minutes). Machine-dependent: speed and quality per step together.
  steps       `--steps 4000,8000`: each arm runs to the last mark and is snapshotted at each step count (batch 64).
              Machine-independent: quality per step alone, comparable between a laptop and a GPU.
              An arm whose lr schedule reads the run's planned steps (lr_schedule other than "constant",
              trainer/step.py lr_factor) is not snapshotted on the way: its weights at step 4,000 of an 8,000-step
              plan are not what `edgegan train --max-steps 4000` gives (that run has already decayed to 0). Such an
              arm runs once per mark instead, each run its own job with max_steps = the mark, and is scored at its
              end; the report lists it as one arm. Wall-clock mode has no planned total: it refuses an explicit
              schedule ablation and runs a recipe row's schedule (Fashion-MNIST DCGAN) with a constant lr, saying so.
`--seeds K` repeats every arm with seeds seed..seed+K-1; the summary gives each figure's mean and spread
(half the range over seeds). At each mark the generator is snapshotted; after training,
every snapshot is exported with `export_checkpoint` and scored with `edgegan.runtime.evaluation.quality.evaluate` (the same
evaluator, the same n, the same seed), so the figures are `edgegan eval`'s.

  edgegan   `edgegan.trainer.train.train(TrainConfig(...defaults...))`, the loop `edgegan train` runs, untouched: its
            GANStep is wrapped only to read the clock after each step and copy G / EMA-G at the marks. Its
            epoch-end checkpoints and sample grids count against its time. Scored twice per mark: the EMA
            generator it exports by default, and the raw G (EMA's contribution at no extra training).
  plain     pytorch/examples' dcgan/main.py loop: torch DataLoader (shuffle, batch 64, `--plain-workers`
            worker processes, examples' default 2) over a dataset that makes a PIL image per sample and applies
            ToTensor + Normalize((0.5,), (0.5,)) (torchvision's transforms inlined: torchvision is not
            installed here); D ends in a sigmoid with nn.BCELoss; errD_real.backward() then
            errD_fake.backward(); D is not frozen in the G step; PyTorch's default Adam; five `.item()` per
            step (its progress print's D(x), D(G(z)) x2 and both losses); no EMA.
  ablations `--ablate KEY=VALUE` (repeatable) adds an edgegan arm with TrainConfig fields changed, e.g.
            ema=false, loss=hinge, lr=5e-4, ema_decay=0.99, ema_start=1000, batch_size=128: what each choice
            contributes. Only trainer/recipes.py's ABLATABLE keys are taken (tests/trainer/test_recipes.py checks that each one changes
            the training); others are refused.

Arms run one after another, or `--jobs N` at a time as separate processes (each its own torch threads and, with
`--device cuda`, its own CUDA context: 10 arms of 8,000 steps fit a short GPU window). Every finished arm (trained and
scored) is written to WORK/arms/ARM.json; a rerun with the same `--keep WORK` skips those, so an interrupted
unattended run (`nohup ... --keep runs/ttq --log runs/ttq/progress.log &`) resumes per arm, and by steps an arm killed
while training continues from its last checkpoint (one past a mark starts over beside it). Progress lines go to
stderr and, with `--log`, to that file.

Writes into --out-dir (default benchmarks/results): time_to_quality.md (the table, the floor, the command,
machine load), time_to_quality.json, ttq_edgegan.png and ttq_plain.png (64 samples, seed 0, of each arm's last
snapshot). Needs an evaluator: `edgegan evaluator train --dataset fashion-mnist` (or pass --evaluator).

Usage: python -m benchmarks.time_to_quality [--minutes 10 --at 2.5,5,10 | --steps 4000,8000] [--seeds 2]
       [-n 10000] [--evaluator E.onnx] [--dataset fashion-mnist|mnist] [--arch dcgan|gan] [--conditional]
       [--ablate ema=false ...] [--ablate lr=0.0005,ema_start=1000 ...] [--plain-workers 2] [--threads N]
       [--device cpu|cuda] [--jobs N] [--data-dir DIR] [--out-dir benchmarks/results] [--keep DIR] [--log FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import edgegan.trainer.train as train_module  # noqa: E402
from benchmarks.examples_data import ExamplesFashionMNIST  # noqa: E402
from edgegan.runtime.errors import EdgeganError  # noqa: E402
from edgegan.runtime.evaluation.datasets import load_images  # noqa: E402
from edgegan.runtime.files import atomic_write  # noqa: E402
from edgegan.trainer.checkpoint import load_checkpoint, save_weights_checkpoint  # noqa: E402
from edgegan.trainer.config import ModelConfig, TrainConfig  # noqa: E402
from edgegan.trainer.models import build_discriminator, build_generator  # noqa: E402
from edgegan.trainer.recipes import parse_changes  # noqa: E402

DATASETS = ("fashion-mnist", "mnist")
BATCH = 64  # pytorch/examples' default
TARGET_RATIO = 0.55  # "Defaults that win": at the last step mark, defaults' FID <= 0.55x the plain loop's


class BudgetReached(Exception):
    """Raised from inside a training loop when its wall-clock budget is spent."""


@dataclass
class Snapshot:
    mark: float  # minutes (wall-clock mode) or steps (steps mode)
    elapsed: float  # seconds since the arm's start when taken (first step boundary after the mark)
    step: int
    states: dict[str, dict[str, torch.Tensor]]  # "ema" / "raw" -> G state dict


@dataclass
class Arm:
    name: str
    kind: str  # "edgegan" or "plain"
    cfg: TrainConfig
    changes: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    snapshots: list[Snapshot] = field(default_factory=list)
    total_steps: int = 0
    seconds: float = 0.0
    final_losses: dict[str, float] = field(default_factory=dict)
    # the config train() ran (recipe filled, classes from the data): what a checkpoint of the arm would hold
    trained_cfg: TrainConfig | None = None
    # steps mode, an arm whose lr schedule reads the planned total: the one mark this job trains to (max_steps)
    # and is scored at; None: the plan's marks, snapshotted on the way
    to_mark: int | None = None
    # wall-clock mode, a defaults arm whose recipe row decays the lr over a planned step count, which a clock
    # budget does not give: it runs the row's other values with a constant lr (the report says so)
    constant_lr: bool = False
    resumed_at: int = 0  # the step an interrupted arm's run continued from (0: trained from the start)


class Clock:
    """One arm's marks: snapshots when the wall clock (unit "min") or the step count (unit "step") passes a mark,
    BudgetReached when the last mark is taken and the budget spent."""

    def __init__(self, marks: list[float], budget: float, unit: str = "min"):
        self.marks = sorted(marks)
        self.unit = unit
        self.budget = budget * 60.0 if unit == "min" else budget
        self.start = time.perf_counter()
        self.snapshots: list[Snapshot] = []

    def after_step(self, step: int, models: dict[str, nn.Module], prepare: Callable[[], None] | None = None) -> None:
        """`prepare()` runs once before a snapshot (what a checkpoint does first: the EMA's standing statistics)."""
        elapsed = time.perf_counter() - self.start
        progress = elapsed / 60.0 if self.unit == "min" else step
        if prepare is not None and self.marks and progress >= self.marks[0]:
            prepare()
        while self.marks and progress >= self.marks[0]:
            states = {k: {n: t.detach().cpu().clone() for n, t in m.state_dict().items()} for k, m in models.items()}
            self.snapshots.append(Snapshot(self.marks.pop(0), elapsed, step, states))
        if not self.marks and (elapsed if self.unit == "min" else step) >= self.budget:
            raise BudgetReached


# ------------------------------------------------------------------------------------------------ edgegan arm
def checkpoint_step(run_dir: Path) -> int:
    """The step of a run folder's checkpoints/last.pt."""
    return int(load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"])


def interrupted_run(run_dir: Path, clock: Clock) -> tuple[Path, int]:
    """-> (the folder to train in, the step to resume it from; 0: a fresh run). An arm killed while training left
    run_dir with a checkpoint (written after its first steps, so its step is > 0): by steps it continues from there
    while no mark has passed (the resumed run is the same run: its checkpoint holds the noise streams); otherwise (a
    mark passed, or marks are minutes of a clock that restarts) it starts over in a fresh sibling folder, and the
    killed run stays on disk."""
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        return run_dir, 0
    if clock.unit == "step" and clock.marks:
        step = checkpoint_step(run_dir)
        if step < clock.marks[0]:
            return run_dir, step
    n = 2
    while (run_dir.parent / f"{run_dir.name}.try{n}").exists():
        n += 1
    return run_dir.parent / f"{run_dir.name}.try{n}", 0


def run_edgegan(arm: Arm, clock: Clock, work: Path) -> None:
    """edgegan.trainer.train.train with its defaults, stopped by the clock: the step train() makes (GANStep, or its
    CUDA-graph form) gets its `step` wrapped to read the clock, and each snapshot sees the EMA G as a checkpoint
    would (standing statistics first)."""
    make_step = train_module.make_step

    def timed_make_step(cfg: TrainConfig, *args, **kwargs):
        arm.trained_cfg = cfg
        engine = make_step(cfg, *args, **kwargs)
        train_step = engine.step

        def step(x, y, t):
            stats = train_step(x, y, t)
            models = {"raw": engine.G}
            if engine.ema is not None:
                models["ema"] = engine.ema.model
            clock.after_step(t + 1, models, prepare=lambda: engine.prepare_sample_model(t + 1))
            return stats

        engine.step = step
        return engine

    cfg = TrainConfig.from_dict(arm.cfg.to_dict())
    # the clock ends the run; an arm with a planned-total lr schedule plans exactly its mark, as a user would
    cfg.max_steps = arm.to_mark if arm.to_mark is not None else 10**9
    run_dir, arm.resumed_at = interrupted_run(work / _arm_stem(arm), clock)
    clock.start = time.perf_counter()
    try:
        with mock.patch.object(train_module, "make_step", timed_make_step):
            train_module.train(cfg, run_dir, resume=arm.resumed_at > 0, progress=False)
    except BudgetReached:
        pass
    arm.snapshots = clock.snapshots
    arm.seconds = time.perf_counter() - clock.start
    arm.total_steps = clock.snapshots[-1].step if clock.snapshots else 0


# ------------------------------------------------------------------------------------------------ plain arm
def run_plain(arm: Arm, clock: Clock, workers: int, data_dir: str | None) -> None:
    """pytorch/examples/dcgan/main.py's loop, step for step, on the same G/D architecture (its `--cuda` on cuda)."""
    cfg = arm.cfg
    device = torch.device("cuda" if cfg.device == "cuda" else "cpu")
    torch.manual_seed(cfg.seed)
    data = load_images(cfg.dataset, "train", data_dir, progress=False)
    loader = torch.utils.data.DataLoader(
        ExamplesFashionMNIST(data.images, data.labels), batch_size=BATCH, shuffle=True, num_workers=workers
    )
    netG, netD = build_generator(cfg.model).to(device), build_discriminator(cfg.model).to(device)  # examples' init
    criterion = nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    step, last = 0, ()
    try:
        while True:
            for data_batch in loader:
                # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
                netD.zero_grad()
                real = data_batch[0].to(device)
                b = real.size(0)
                label = torch.full((b,), real_label, dtype=real.dtype, device=device)
                output = torch.sigmoid(netD(real)).view(-1)
                errD_real = criterion(output, label)
                errD_real.backward()
                D_x = output.mean().item()
                noise = torch.randn(b, cfg.model.nz, device=device)
                fake = netG(noise)
                label.fill_(fake_label)
                output = torch.sigmoid(netD(fake.detach())).view(-1)
                errD_fake = criterion(output, label)
                errD_fake.backward()
                D_G_z1 = output.mean().item()
                errD = errD_real + errD_fake
                optimizerD.step()
                # (2) Update G: maximize log(D(G(z)))
                netG.zero_grad()
                label.fill_(real_label)
                output = torch.sigmoid(netD(fake)).view(-1)
                errG = criterion(output, label)
                errG.backward()
                D_G_z2 = output.mean().item()
                optimizerG.step()
                last = (errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)  # what examples prints each step
                step += 1
                clock.after_step(step, {"raw": netG})
    except BudgetReached:
        pass
    arm.snapshots = clock.snapshots
    arm.seconds = time.perf_counter() - clock.start
    arm.total_steps = step
    arm.final_losses = {"loss_d": last[0], "loss_g": last[1], "d_x": last[2], "d_g_z": last[3]} if step else {}


# ------------------------------------------------------------------------------------------------ scoring
def score(
    arm: Arm, which: str, snap: Snapshot, work: Path, evaluator: str | None, n: int, data_dir: str | None, floor: bool
) -> dict[str, Any]:
    """Export one snapshot (checkpoint -> generator.onnx) and score it with edgegan.runtime.evaluation.quality.evaluate."""
    from edgegan.export.pipeline import export_checkpoint
    from edgegan.runtime.evaluation.quality import evaluate

    state = snap.states[which]
    folder = work / "snapshots" / f"{_slug(arm.name)}_seed{arm.seed}_{which}_{snap.mark:g}"
    cfg = TrainConfig.from_dict((arm.trained_cfg or arm.cfg).to_dict())
    save_weights_checkpoint(cfg, state, folder / "snapshot.pt", step=snap.step)
    export_checkpoint(folder / "snapshot.pt", folder / "model", use_ema=False, progress=False, force=True)
    report = evaluate(
        folder / "model" / "generator.onnx",
        cfg.dataset,
        data_dir=data_dir,
        n=n,
        evaluator=evaluator,
        seed=0,
        floor=floor,
        threads=torch.get_num_threads(),
    )  # the arm's share of the CPUs (--jobs)
    return {
        "arm": arm.name,
        "seed": arm.seed,
        "generator": which,
        "mark": snap.mark,
        "elapsed_s": snap.elapsed,
        "step": snap.step,
        # the recipe's batch where the arm set none; a resumed arm counts the steps since it resumed
        "images_per_s": (snap.step - arm.resumed_at) * cfg.batch_size / snap.elapsed,
        **report.metrics,
        "coverage": report.coverage["entropy"],
        "confidence": report.coverage["confidence"],
        # conditional models: labels drawn as asked, and the weakest class (README's quality targets)
        "label_accuracy": report.coverage.get("label_accuracy"),
        "min_class_recall": min(
            (c["recall"] for c in report.per_class.get("classes", []) if c.get("recall") is not None), default=None
        ),
        "per_class_recall": {str(c["class"]): c.get("recall") for c in report.per_class.get("classes", [])},
        "model": str(folder / "model" / "generator.onnx"),
        "_report": report,
    }


def save_samples(model: str, path: Path) -> None:
    from edgegan.runtime.generator import Generator
    from edgegan.runtime.images import save_grid

    save_grid(Generator(model).sample(64, seed=0), path, nrow=8)


# ------------------------------------------------------------------------------------------------ report
def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


METRICS = ("fid", "kid_mean", "precision", "recall", "coverage")
CONDITIONAL_METRICS = ("label_accuracy", "min_class_recall")


def _slug(name: str) -> str:
    return name.replace(" ", "_").replace("=", "-").replace(",", "_")


def _arm_stem(arm: Arm) -> str:
    """The file name stem of one arm job: its run folder and WORK/arms/STEM.json."""
    return f"{_slug(arm.name)}_seed{arm.seed}" + (f"_to{arm.to_mark}" if arm.to_mark is not None else "")


def plans_its_total(cfg: TrainConfig) -> bool:
    """The arm's lr schedule (its own or its recipe row's) reads the run's planned steps: a snapshot at an earlier
    mark is not the run a user training that many steps gets."""
    from edgegan.trainer.recipes import apply_recipe

    return apply_recipe(cfg).lr_schedule != "constant"


def per_mark(arms: list[Arm], marks: list[float]) -> list[Arm]:
    """Steps mode: each edgegan arm that plans_its_total becomes one job per mark (to_mark = the mark); the others
    are kept as they are. (run_arms starts the longest jobs first.)"""
    out: list[Arm] = []
    for arm in arms:
        if arm.kind != "edgegan" or not plans_its_total(arm.cfg):
            out.append(arm)
            continue
        out += [replace(arm, to_mark=int(mark), snapshots=[]) for mark in sorted(marks)]
    return out


def summarize(rows: list[dict]) -> list[dict]:
    """Rows of one (arm, generator, mark) over seeds -> mean and spread (half the range) of each figure."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["arm"], r["generator"], r["mark"]), []).append(r)
    out = []
    for (arm, which, mark), members in groups.items():
        entry = {
            "arm": arm,
            "generator": which,
            "mark": mark,
            "seeds": [m["seed"] for m in members],
            "step": round(float(np.mean([m["step"] for m in members]))),
            "images_per_s": float(np.mean([m["images_per_s"] for m in members])),
        }
        for key in METRICS + CONDITIONAL_METRICS:
            if any(m.get(key) is None for m in members):
                continue  # conditional figures of an unconditional model
            values = np.array([m[key] for m in members], dtype=np.float64)
            entry[key] = float(values.mean())
            entry[key + "_spread"] = float((values.max() - values.min()) / 2)
        out.append(entry)
    return out


def verdicts(summary: list[dict], unit: str) -> list[str]:
    """The issue's targets, read off the summary: in steps mode, the defaults (EMA) at N reach the plain loop's
    FID at 2N, and at the last mark their FID is at most TARGET_RATIO x the plain loop's; in wall-clock mode, when
    edgegan reaches the plain loop's last FID."""
    plain = {r["mark"]: r for r in summary if r["arm"] == "plain"}
    edge = {r["mark"]: r for r in summary if r["arm"] == "edgegan" and r["generator"] == "ema"}
    if not plain or not edge:
        return []
    lines = []
    if unit == "step":
        for mark, row in sorted(edge.items()):
            if 2 * mark in plain:
                target = plain[2 * mark]
                ok = row["fid"] <= target["fid"]
                lines.append(
                    f"{'met' if ok else 'NOT met'}: defaults at {mark:g} steps FID {row['fid']:.2f} "
                    f"(±{row['fid_spread']:.2f}) vs plain at {2 * mark:g} steps {target['fid']:.2f} "
                    f"(±{target['fid_spread']:.2f})"
                )
        last = max(set(plain) & set(edge), default=None)
        if last is not None:
            ratio = edge[last]["fid"] / plain[last]["fid"]
            lines.append(
                f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}: at {last:g} steps defaults / plain FID = "
                f"{ratio:.2f} (target <= {TARGET_RATIO})"
            )
        return lines
    target = plain[max(plain)]
    reached = [r for m, r in sorted(edge.items()) if r["fid"] <= target["fid"]]
    return [
        f"edgegan (EMA) reaches the plain loop's {target['mark']:g}-minute FID ({target['fid']:.3f}) at the "
        f"{reached[0]['mark']:g}-minute mark"
        if reached
        else f"edgegan (EMA) does not reach the plain loop's {target['mark']:g}-minute FID ({target['fid']:.3f})"
    ]


def render(
    rows: list[dict],
    floor: dict,
    arms: list[Arm],
    args,
    evaluator: dict,
    loads: tuple[str, str],
    command: str,
    unit: str,
) -> str:
    dataset = arms[0].cfg.dataset
    budget = (
        f"the same {args.minutes:g}-minute wall-clock budget per arm"
        if unit == "min"
        else f"snapshots by step count (batch {BATCH})"
    )
    at = "at (min)" if unit == "min" else "at (steps)"
    conditional = arms[0].cfg.conditional
    lines = [
        "# Time to quality: edgegan defaults vs the plain pytorch/examples loop",
        "",
        f"{dataset}, {'conditional ' if arms[0].cfg.conditional else ''}{arms[0].cfg.model.arch} 28x28 (width 64, "
        f"nz 100, batch {BATCH}), {budget}, seeds "
        f"{args.seed}..{args.seed + args.seeds - 1}, on this machine ({os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {loads[0]} before, {loads[1]} "
        f"after). Each snapshot is exported and scored by `edgegan eval` with {args.n} images (seed 0) against the "
        f"{floor.get('reference_n', '?')} test images; features: the evaluator's {evaluator['feature_dim']}-d "
        f"penultimate layer ({Path(evaluator['path']).name}, test accuracy {evaluator['test_accuracy']:.2%}).",
        "",
        "## Summary (mean ± half the range over seeds)",
        "",
        f"| arm | generator | {at} | steps | FID | KID | precision | recall | coverage |"
        + (" label accuracy | weakest class recall |" if conditional else ""),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if conditional else ""),
    ]
    summary = summarize(rows)
    for r in summary:
        lines.append(
            f"| {r['arm']} | {r['generator']} | {r['mark']:g} | {r['step']} | {r['fid']:.2f} ± {r['fid_spread']:.2f} | "
            f"{r['kid_mean']:.3f} ± {r['kid_mean_spread']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | "
            f"{r['coverage']:.3f} |"
            + (
                f" {r.get('label_accuracy', float('nan')):.3f} | {r.get('min_class_recall', float('nan')):.3f} |"
                if conditional
                else ""
            )
        )
    if "fid" in floor:
        lines.append(
            f"| real data (floor) | {floor['method']} | - | - | {floor['fid']:.3f} | {floor['kid_mean']:.4f} | "
            f"{floor['precision']:.3f} | {floor['recall']:.3f} | - |"
        )
    lines += [""] + [f"**{v}.**" for v in verdicts(summary, unit)]
    lines += [
        "",
        "## Every run",
        "",
        f"| arm | seed | generator | {at} | steps | images/s | FID | KID | precision | recall | coverage |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['arm']} | {r['seed']} | {r['generator']} | {r['mark']:g} | {r['step']} | {r['images_per_s']:.0f} | "
            f"{r['fid']:.3f} | {r['kid_mean']:.4f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['coverage']:.3f} |"
        )
    changes = sorted({f"`{a.name}`: {', '.join(f'{k}={v}' for k, v in a.changes.items())}" for a in arms if a.changes})
    lines += [
        "",
        "Rows: `edgegan`/`ema` is what `edgegan train` + `edgegan export` ship (EMA weights); `edgegan`/`raw` is the same "
        "run's raw G (EMA's contribution); `plain` is pytorch/examples' loop (no EMA). images/s counts the whole "
        "arm's wall clock (setup, data loading, checkpoints) up to the mark."
        + (" Ablations: " + "; ".join(changes) + "." if changes else "")
        + (
            " Arms whose lr schedule reads the planned steps ("
            + ", ".join(sorted({f"`{a.name}`" for a in arms if a.to_mark is not None}))
            + ") ran once per mark, each with max_steps = the mark, and were scored at its end."
            if any(a.to_mark is not None for a in arms)
            else ""
        )
        + (
            " By the clock there is no planned step count for the recipe's lr schedule to read: "
            + ", ".join(sorted({f"`{a.name}`" for a in arms if a.constant_lr}))
            + " ran its row with a constant lr (`--steps` measures the schedule)."
            if any(a.constant_lr for a in arms)
            else ""
        ),
        "",
        # the grids main() writes: one per arm kind that has rows (--no-defaults / --no-plain leave one out)
        " ".join(
            f"![{kind} samples](ttq_{kind}.png)" for kind in ("edgegan", "plain") if any(r["arm"] == kind for r in rows)
        ),
        "",
        f"Command: `{command}`",
    ]
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text), binary=False)


def _log(message: str, log_path: str | None) -> None:
    """A progress line on stderr and, for an unattended run, appended to --log."""
    line = f"[ttq {time.strftime('%H:%M:%S')}] {message}"
    print(line, file=sys.stderr, flush=True)
    if log_path:
        with open(log_path, "a") as f:
            f.write(line + "\n")


@dataclass
class Plan:
    """What every arm shares: the marks, the budget and how to score (picklable: it crosses to --jobs workers)."""

    unit: str
    marks: list[float]
    budget: float
    work: Path
    evaluator: str
    n: int
    data_dir: str | None
    plain_workers: int
    threads: int | None
    log: str | None


def _arm_file(plan: Plan, arm: Arm) -> Path:
    return plan.work / "arms" / f"{_arm_stem(arm)}.json"


def _arm_marks(plan: Plan, arm: Arm) -> list[float]:
    """The marks one arm job is snapshotted at: its own mark (a per-mark job) or the plan's."""
    return [arm.to_mark] if arm.to_mark is not None else list(plan.marks)


def _arm_budget(plan: Plan, arm: Arm) -> float:
    return float(arm.to_mark) if arm.to_mark is not None else plan.budget


def run_arm(arm: Arm, plan: Plan, floor: bool) -> dict[str, Any]:
    """Train one arm, score each snapshot, write WORK/arms/ARM.json (what a resumed run reads) and return it."""
    if plan.threads:
        torch.set_num_threads(plan.threads)
    marks = _arm_marks(plan, arm)
    what = f"{plan.budget:g} min" if plan.unit == "min" else f"{marks[-1]:g} steps"
    if arm.to_mark is not None:
        what += f" (max_steps {arm.to_mark}: its lr schedule plans the run's steps)"
    _log(f"training {arm.name} seed {arm.seed} for {what} on {arm.cfg.device}", plan.log)
    clock = Clock(marks, _arm_budget(plan, arm), plan.unit)
    if arm.kind == "plain":
        run_plain(arm, clock, plan.plain_workers, plan.data_dir)
    else:
        run_edgegan(arm, clock, plan.work)
        if arm.resumed_at:
            _log(f"{arm.name} seed {arm.seed}: resumed an interrupted run at step {arm.resumed_at}", plan.log)
    _log(f"{arm.name} seed {arm.seed}: {arm.total_steps} steps in {arm.seconds:.0f} s; scoring", plan.log)
    rows: list[dict] = []
    floor_figures: dict = {}
    for snap in arm.snapshots:
        for which in ("ema", "raw"):
            if which not in snap.states or (which == "raw" and arm.name != "edgegan" and "ema" in snap.states):
                continue  # ablation arms: only what they would ship
            row = score(
                arm, which, snap, plan.work, plan.evaluator, plan.n, plan.data_dir, floor=floor and not floor_figures
            )
            report = row.pop("_report")
            if floor and not floor_figures:
                floor_figures = {**report.floor, "reference_n": report.reference["n"]}
            rows.append(row)
    result = {
        "arm": {
            "name": arm.name,
            "kind": arm.kind,
            "seed": arm.seed,
            "changes": arm.changes,
            "steps": arm.total_steps,
            "seconds": arm.seconds,
            "resumed_at": arm.resumed_at,
            "final_losses": arm.final_losses,
            "unit": plan.unit,
            "marks": marks,
            "max_steps": arm.to_mark,
        },
        "rows": rows,
        "floor": floor_figures,
    }
    path = _arm_file(plan, arm)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, json.dumps(result, indent=2) + "\n")
    _log(f"{arm.name} seed {arm.seed}: done ({len(rows)} scores)", plan.log)
    return result


def _finished(plan: Plan, arm: Arm) -> dict[str, Any] | None:
    """The arm's result from an earlier (interrupted) run with the same marks, or None."""
    path = _arm_file(plan, arm)
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    same = result["arm"]["unit"] == plan.unit and result["arm"]["marks"] == _arm_marks(plan, arm)
    return result if same else None


def run_arms(arms: list[Arm], plan: Plan, jobs: int) -> list[dict[str, Any]]:
    """Every arm's result, in the order of `arms`: finished ones read back, the rest run `jobs` at a time."""
    results: dict[int, dict] = {}
    todo = []
    for i, arm in enumerate(arms):
        done = _finished(plan, arm)
        if done is not None:
            _log(f"{arm.name} seed {arm.seed}: finished in an earlier run ({_arm_file(plan, arm)}), skipped", plan.log)
            results[i] = done
        else:
            todo.append(i)
    # the longest jobs first (per-mark jobs differ): with --jobs N the short ones fill in at the end
    todo.sort(key=lambda i: -_arm_budget(plan, arms[i]))
    need_floor = not any(r["floor"] for r in results.values())
    floor_arm = todo[0] if need_floor and todo else None
    if jobs <= 1:
        for i in todo:
            results[i] = run_arm(arms[i], plan, floor=i == floor_arm)
    else:
        # spawn: a fresh interpreter per worker (no forked OpenMP or CUDA state); each gets its own device handle
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(run_arm, arms[i], plan, i == floor_arm): i for i in todo}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
    return [results[i] for i in range(len(arms))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget per arm (wall-clock mode)")
    parser.add_argument("--at", default="2.5,5,10", help="snapshot marks in minutes (comma separated)")
    parser.add_argument(
        "--steps",
        default=None,
        help="steps mode: snapshot at these step counts (e.g. 4000,8000); --minutes/--at unused",
    )
    parser.add_argument("--seeds", type=int, default=1, help="seeds per arm (seed, seed+1, ...)")
    parser.add_argument("-n", type=int, default=10000, help="images per FID")
    parser.add_argument("--dataset", default="fashion-mnist", choices=DATASETS)
    parser.add_argument("--arch", default="dcgan", choices=("dcgan", "gan"), help="every arm's architecture")
    parser.add_argument("--conditional", action="store_true", help="class-conditional arms (no plain arm)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where every arm trains")
    parser.add_argument("--jobs", type=int, default=1, help="arms trained at once, as separate processes")
    parser.add_argument("--log", default=None, help="append progress lines to this file too")
    parser.add_argument("--evaluator", default=None, help="evaluator .onnx (default: the cached one of --dataset)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--ablate",
        action="append",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="extra edgegan arm with TrainConfig fields changed (repeatable)",
    )
    parser.add_argument("--no-plain", action="store_true", help="skip the plain loop (ablations only)")
    parser.add_argument(
        "--no-defaults", action="store_true", help="skip the defaults' arm (ablations measured earlier against them)"
    )
    parser.add_argument("--plain-workers", type=int, default=2, help="plain loop DataLoader workers (examples: 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads per arm (default: torch's; with --jobs N, CPUs / N)"
    )
    parser.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--name", default="time_to_quality", help="stem of the .md/.json written into --out-dir")
    parser.add_argument(
        "--keep", default=None, help="keep runs, snapshots and per-arm results in this folder (a rerun resumes from it)"
    )
    args = parser.parse_args(argv)
    if args.steps:
        unit, marks = "step", sorted(int(m) for m in args.steps.split(","))
        budget = float(marks[-1]) if marks else 0.0
        if not marks or marks[0] <= 0:
            parser.error(f"--steps {args.steps}: give positive step counts")
    else:
        unit, marks, budget = "min", sorted(float(m) for m in args.at.split(",")), args.minutes
        if not marks or marks[-1] > args.minutes or marks[0] <= 0:
            parser.error(f"--at {args.at}: marks must be in (0, --minutes {args.minutes:g}]")
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    if args.no_defaults and (args.no_plain or args.conditional) and not args.ablate:
        parser.error(
            "nothing to run: --no-defaults leaves no edgegan arm and "
            + ("--no-plain" if args.no_plain else "--conditional (the plain loop has no labels)")
            + " no plain one; add --ablate KEY=VALUE or drop --no-defaults"
        )
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    if args.jobs > 1 and args.threads is None and args.device == "cpu":
        args.threads = max(1, (os.cpu_count() or 1) // args.jobs)  # N processes x torch's default would oversubscribe
    if args.threads:
        torch.set_num_threads(args.threads)
    from edgegan.runtime.evaluation.quality import Evaluator, resolve_evaluator

    try:
        ablations = [parse_changes(text) for text in args.ablate]
    except ValueError as exc:
        raise SystemExit(f"--ablate: {exc}") from None
    try:
        evaluator_path = resolve_evaluator(args.evaluator, args.dataset)  # fail now, not after the training
    except EdgeganError as exc:
        raise SystemExit(f"time_to_quality: {exc}") from None
    ev = Evaluator(evaluator_path)
    evaluator = {
        "path": str(evaluator_path),
        "feature_dim": ev.info.feature_dim,
        "test_accuracy": ev.info.test_accuracy,
        "sha256": ev.digest,
    }
    arms: list[Arm] = []
    for seed in range(args.seed, args.seed + args.seeds):
        model = ModelConfig(arch=args.arch)
        base = TrainConfig(
            model=model,
            dataset=args.dataset,
            data_dir=args.data_dir,
            seed=seed,
            device=args.device,
            conditional=args.conditional,
        )
        if not args.no_defaults:
            arms.append(Arm("edgegan", "edgegan", base, seed=seed))
        if not args.no_plain and not args.conditional:  # pytorch/examples' loop has no labels
            arms.append(
                Arm(
                    "plain",
                    "plain",
                    TrainConfig(
                        model=model,
                        dataset=args.dataset,
                        data_dir=args.data_dir,
                        seed=seed,
                        ema=False,
                        device=args.device,
                    ),
                    seed=seed,
                )
            )
        for changes in ablations:
            cfg = TrainConfig.from_dict(base.to_dict())
            for key, value in changes.items():
                setattr(cfg, key, value)
            name = "edgegan " + ",".join(f"{k}={v}" for k, v in changes.items())
            arms.append(Arm(name, "edgegan", cfg, changes, seed=seed))
    if unit == "step":
        arms = per_mark(arms, marks)
    else:
        if any(a.kind == "edgegan" and "lr_schedule" in a.changes and plans_its_total(a.cfg) for a in arms):
            parser.error("an lr_schedule other than constant reads the run's planned steps: measure it with --steps")
        for arm in arms:  # a recipe row's schedule: the clock gives no planned total, so the lr stays constant
            if arm.kind == "edgegan" and plans_its_total(arm.cfg):
                arm.cfg.lr_schedule, arm.constant_lr = "constant", True
                _log(
                    f"{arm.name}: its recipe's lr schedule needs a planned step count; by the clock it runs with a "
                    "constant lr (measure the schedule with --steps)",
                    args.log,
                )

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ttq-"))
    work.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.time_to_quality " + " ".join(argv if argv is not None else sys.argv[1:])
    load_before = _load()
    plan = Plan(
        unit,
        marks,
        budget,
        work,
        str(evaluator_path),
        args.n,
        args.data_dir,
        args.plain_workers,
        args.threads,
        args.log,
    )
    try:
        results = run_arms(arms, plan, args.jobs)
        load_after = _load()
        rows = [row for result in results for row in result["rows"]]
        floor = next((r["floor"] for r in results if r["floor"]), {})
        for arm, result in zip(arms, results):
            for key in ("steps", "seconds", "final_losses"):
                setattr(arm, {"steps": "total_steps"}.get(key, key), result["arm"][key])
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for arm_name, png in (("edgegan", "ttq_edgegan.png"), ("plain", "ttq_plain.png")):
            last = [
                r
                for r in rows
                if r["arm"] == arm_name
                and r["seed"] == args.seed
                and r["generator"] == ("ema" if arm_name == "edgegan" else "raw")
            ]
            if last:
                save_samples(last[-1]["model"], out / png)
        text = render(rows, floor, arms, args, evaluator, (load_before, load_after), command, unit)
        _write_text(out / f"{args.name}.md", text)
        _write_text(
            out / f"{args.name}.json",
            json.dumps(
                {
                    "command": command,
                    "unit": unit,
                    "minutes": args.minutes if unit == "min" else None,
                    "marks": marks,
                    "seeds": args.seeds,
                    "dataset": args.dataset,
                    "n": args.n,
                    "evaluator": evaluator,
                    "machine": {
                        "cpus": os.cpu_count(),
                        "platform": platform.platform(),
                        "torch": torch.__version__,
                        "threads": torch.get_num_threads(),
                        "load_before": load_before,
                        "load_after": load_after,
                    },
                    "arms": [
                        {
                            "name": a.name,
                            "kind": a.kind,
                            "seed": a.seed,
                            "changes": a.changes,
                            "steps": a.total_steps,
                            "seconds": a.seconds,
                            "final_losses": a.final_losses,
                            "max_steps": a.to_mark,
                        }
                        for a in arms
                    ],
                    "floor": floor,
                    "summary": summarize(rows),
                    "rows": [{k: v for k, v in r.items() if k != "model"} for r in rows],
                },
                indent=2,
            )
            + "\n",
        )
        print(text)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
