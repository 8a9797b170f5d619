"""Which EMA setting (decay, start) of a recipe row ships the best G, from one training run per seed (issue 21)

The EMA never feeds back into training: G and D read only their own weights, the data and the noise stream
(trainer/step.py), and an EMA update draws no random numbers. So averages with other settings, updated next to the
run's own after every step, are exactly the EMA G that a run with those settings would ship. Each gets its
standing statistics at the last step from the draw a checkpoint uses (GANStep.prepare_sample_model), and is
exported and scored by `edgegan eval` as time_to_quality.py scores an arm (its `score`). The setting equal to the
row's own is checked bit for bit against the run's EMA, and the raw G is scored too.

    python -m benchmarks.probes.ema_settings --dataset mnist --arch dcgan --steps 3000 --seed 0 \
        --settings 0.95,0.98,0.99,0.99@1500 --evaluator E.onnx -n 5000 --threads 1 --out-dir DIR [--log F] \
        [--device cuda]

A setting is DECAY or DECAY@START (trainer/step.py's EMA: decay 0 before START, then warmed up to DECAY).
Writes DIR/ema_settings_seedS.{md,json}; the run folder and the exported snapshots stay under DIR.
Figures: benchmarks/results/recipes/cpu_2026-12-05h/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import torch

from benchmarks.time_to_quality import Arm, Snapshot, score
from edgegan.trainer import train as train_module
from edgegan.trainer.config import ModelConfig, TrainConfig
from edgegan.trainer.step import EMA


def parse_setting(text: str) -> tuple[float, int]:
    """A setting's text as (decay, start): "0.98" -> (0.98, 0), "0.99@1500" -> (0.99, 1500)."""
    decay, _, start = text.partition("@")
    value, begin = float(decay), int(start or 0)
    if not 0.0 <= value < 1.0 or begin < 0:
        raise argparse.ArgumentTypeError(f"an EMA setting is DECAY in [0, 1) or DECAY@START (START >= 0), got {text!r}")
    return value, begin


def train_with_shadows(cfg: TrainConfig, settings: list[str], run_dir: Path, log) -> tuple:
    """Train `cfg` into `run_dir` with one shadow EMA per setting; returns (the engine, the config train() ran,
    {setting: its EMA}, seconds). Shadows start from the run's EMA G before its first update (G as it started)."""
    make_step = train_module.make_step
    held: dict = {}
    shadows: dict[str, EMA] = {}

    def shadowed_make_step(run_cfg: TrainConfig, *args, **kwargs):
        engine = make_step(run_cfg, *args, **kwargs)
        held["cfg"], held["engine"] = run_cfg, engine
        train_step = engine.step

        def step(x, y, t):
            if not shadows:
                for text in settings:
                    shadows[text] = EMA(engine.ema.model, *parse_setting(text))
            stats = train_step(x, y, t)
            for shadow in shadows.values():
                shadow.update(engine.G, t)
            if (t + 1) % 100 == 0:
                log(f"step {t + 1}")
            return stats

        engine.step = step
        return engine

    start = time.perf_counter()
    with mock.patch.object(train_module, "make_step", shadowed_make_step):
        train_module.train(cfg, run_dir, progress=False)
    return held["engine"], held["cfg"], shadows, time.perf_counter() - start


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="dcgan")
    parser.add_argument("--conditional", action="store_true")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default="0.95,0.98,0.99", help="comma-separated DECAY or DECAY@START")
    parser.add_argument("--evaluator")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (step counts do not depend on it)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--log", help="progress lines go here (default: stdout)")
    args = parser.parse_args(argv)
    settings = [s for s in args.settings.split(",") if s]
    for text in settings:
        try:
            parse_setting(text)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            parser.error(str(exc))
    torch.set_num_threads(args.threads)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        line = f"[ema_settings {time.strftime('%H:%M:%S')}] seed {args.seed}: {message}"
        if args.log:
            with open(args.log, "a") as f:
                f.write(line + "\n")
        else:
            print(line, flush=True)

    cfg = TrainConfig(
        model=ModelConfig(arch=args.arch),
        dataset=args.dataset,
        data_dir=args.data_dir,
        seed=args.seed,
        device=args.device,
        conditional=args.conditional,
        max_steps=args.steps,
    )
    engine, run_cfg, shadows, seconds = train_with_shadows(cfg, settings, out / f"run_seed{args.seed}", log)
    log(f"{args.steps} steps in {seconds:.0f} s; scoring")
    ema = engine.ema
    candidates = {"raw G": (engine.G, None)}
    for text, shadow in shadows.items():
        engine.ema = shadow  # the checkpoint's draw (seeded by seed and step) for this average's statistics
        engine.prepare_sample_model(args.steps)
        candidates[f"EMA {text}"] = (shadow.model, shadow)
    engine.ema = ema
    rows = []
    for label, (model, shadow) in candidates.items():
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        arm_cfg = run_cfg if shadow is None else replace(run_cfg, ema_decay=shadow.decay, ema_start=shadow.start)
        arm = Arm(label, "edgegan", arm_cfg, seed=args.seed, trained_cfg=arm_cfg)
        snap = Snapshot(args.steps, seconds, args.steps, {"ema": state})
        row = score(arm, "ema", snap, out, args.evaluator, args.n, args.data_dir, floor=False)
        row.pop("_report")
        if shadow is not None and (shadow.decay, shadow.start) == (run_cfg.ema_decay, run_cfg.ema_start):
            row["same_as_run_ema"] = states_equal(state, ema.model.state_dict())
        rows.append(row)
        log(f"{label}: FID {row['fid']:.2f}, precision {row['precision']:.3f}, recall {row['recall']:.3f}")
    stem = out / f"ema_settings_seed{args.seed}"
    stem.with_suffix(".json").write_text(json.dumps({"config": run_cfg.to_dict(), "rows": rows}, indent=2))
    lines = [
        f"# EMA settings, {args.dataset} {args.arch}{' conditional' if args.conditional else ''}, seed {args.seed}, "
        f"{args.steps} steps (the row's own EMA: decay {run_cfg.ema_decay:g}, start {run_cfg.ema_start})",
        "",
        f"`python -m benchmarks.probes.ema_settings {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        "| G | FID | precision | recall | same as the run's EMA |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        check = {True: "bit for bit", False: "NO"}.get(row.get("same_as_run_ema"), "")
        lines.append(f"| {row['arm']} | {row['fid']:.2f} | {row['precision']:.3f} | {row['recall']:.3f} | {check} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(row.get("same_as_run_ema", True) for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
