"""What a training step of a recipe arm costs against its row, in one interleaved run (issue 21)

A quality arm is measured by steps; this says what its step costs in time on this machine. For the recipe row of
--arch / --conditional / --dataset and each --ablate arm (time_to_quality.py's syntax), a `GANStep` of that config
trains on fixed random batches; the arms take turns in each round (a block of --steps steps each), so a load change
hits them alike. Prints the median ms per step over the rounds and each arm's ratio to the row.

    python -m benchmarks.probes.step_cost --dataset mnist --arch dcgan --ablate fake_multiple=4,lr=2e-3 \
        [--threads 1] [--rounds 6] [--steps 10]

Figures: benchmarks/results/recipes/cpu_2026-12-05f/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from edgegan.trainer.config import ModelConfig, TrainConfig
from edgegan.trainer.recipes import apply_recipe, parse_changes
from edgegan.trainer.step import GANStep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="dcgan")
    parser.add_argument("--conditional", action="store_true")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--ablate", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    classes = 10 if args.conditional else 0
    row = apply_recipe(
        TrainConfig(
            model=ModelConfig(arch=args.arch, num_classes=classes),  # width 64, 28x28 x 1: the MNIST rows
            dataset=args.dataset,
            conditional=args.conditional,
            max_steps=3000,  # the plan an lr schedule reads
        )
    )
    arms = {"the row": row} | {text: replace(row, **parse_changes(text)) for text in args.ablate}
    device = torch.device("cpu")
    engines = {name: GANStep(cfg, device) for name, cfg in arms.items()}
    gen = torch.Generator().manual_seed(0)
    batches = {}  # each arm's own batch (an arm may ablate batch_size): x [B, 1, 28, 28] in [-1, 1], y [B] or None
    for name, engine in engines.items():
        size = engine.cfg.batch_size
        batches[name] = (
            torch.rand(size, 1, 28, 28, generator=gen) * 2 - 1,
            torch.randint(10, (size,), generator=gen) if classes else None,
        )
        for t in range(args.warmup):
            engine.step(*batches[name], t)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name, engine in engines.items():
            start = time.perf_counter()
            for t in range(args.steps):
                engine.step(*batches[name], args.warmup + t).sum().item()  # the item(): wait for the step's work
            times[name].append((time.perf_counter() - start) / args.steps * 1000)
    base = statistics.median(times["the row"])
    print(
        f"{args.arch} {'conditional' if classes else 'unconditional'} {args.dataset}, the row's batch {row.batch_size}, "
        f"{args.threads} thread(s), median of {args.rounds} rounds of {args.steps} steps\n"
    )
    print("| arm | ms per step | ratio to the row |\n| --- | ---: | ---: |")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.1f} | {statistics.median(values) / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
