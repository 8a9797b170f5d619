"""How far one `edgegan eval` figure moves with the latent draw alone: each model's figures over several --seed values

A quality target read off one draw (`edgegan eval -n 5000`, seed 0) carries the draw's own noise; this puts a
number on it. Score each model at a few eval seeds with the CLI, then summarise the JSON files:

    for e in 0 1 2 3 4 5 6 7; do
        edgegan eval M.onnx --dataset mnist -n 5000 --seed $e --no-floor -q --json draws/NAME_e$e.json
    done
    python -m benchmarks.probes.eval_draws draws/*.json [--md out.md] [--json out.json]

Files are grouped by the model path they record; a group must share n and the evaluator (its sha256).
Figures: benchmarks/results/recipes/cpu_2026-12-05h/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def summarize(paths: list[Path]) -> list[dict]:
    """One row per model: its draws' seeds, and mean / sd / min / max of precision, plus mean FID and recall."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for path in paths:
        report = json.loads(path.read_text())
        groups[report["model"]["path"]].append(report)
    rows = []
    for model, reports in groups.items():
        setups = {(r["model"]["n"], r["evaluator"]["sha256"]) for r in reports}
        if len(setups) > 1:
            raise ValueError(f"{model}: its files mix n / evaluators {sorted(setups)}; summarise one setup at a time")
        seeds = [r["model"]["seed"] for r in reports]
        if len(set(seeds)) < len(seeds):
            raise ValueError(f"{model}: eval seed scored twice ({sorted(seeds)}): each file must be its own draw")
        precision = [r["metrics"]["precision"] for r in reports]
        fid = [r["metrics"]["fid"] for r in reports]
        rows.append(
            {
                "model": model,
                "n": reports[0]["model"]["n"],
                "seeds": sorted(seeds),
                "precision_mean": statistics.mean(precision),
                "precision_sd": statistics.stdev(precision) if len(precision) > 1 else 0.0,
                "precision_min": min(precision),
                "precision_max": max(precision),
                "precision_seed0": next((p for p, s in zip(precision, seeds) if s == 0), None),
                "fid_mean": statistics.mean(fid),
                "recall_mean": statistics.mean(r["metrics"]["recall"] for r in reports),
            }
        )
    return rows


def render(rows: list[dict]) -> str:
    common = os.path.commonpath([row["model"] for row in rows]) if len(rows) > 1 else ""
    lines = [
        "| model | draws (eval seeds) | precision at seed 0 | precision, mean ± sd (min-max) | FID, mean | recall, mean |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in sorted(rows, key=lambda r: r["model"]):
        name = os.path.relpath(row["model"], common) if common else row["model"]
        seed0 = f"{row['precision_seed0']:.3f}" if row["precision_seed0"] is not None else "-"
        lines.append(
            f"| {name} | {len(row['seeds'])} ({row['seeds'][0]}-{row['seeds'][-1]}) | {seed0} | "
            f"{row['precision_mean']:.3f} ± {row['precision_sd']:.3f} ({row['precision_min']:.3f}-"
            f"{row['precision_max']:.3f}) | {row['fid_mean']:.2f} | {row['recall_mean']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="`edgegan eval --json` files")
    parser.add_argument("--md", type=Path, help="also write the table here")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    try:
        rows = summarize(args.reports)
    except (OSError, ValueError, KeyError) as exc:
        print(f"eval_draws: {exc}", file=sys.stderr)
        return 2
    table = render(rows)
    print(table, end="")
    if args.md:
        args.md.write_text(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
