"""Merge `edgegan bench --json` runs from several machines into one result with ratios to a baseline run.

Each run is one machine (a laptop, a Raspberry Pi, a Jetson), named by its label (the JSON's machine.label, e.g.
"amd-epyc-2cpu" or "raspberry-pi-4-model-b-rev-1-4-4cpu"; older files: the same name made from their CPU). A row
of another run is compared with the baseline run's row of the same model file, engine, session set-up, batch and
threads (the same provider where the baseline has it): `vs_baseline` = p50 / the baseline's p50, so 2.0 is twice
as slow as the baseline device and 0.5 twice as fast.

Example:
    >>> merged = merge_runs(["laptop.json", "pi4.json"], baseline="laptop.json")  # doctest: +SKIP
    >>> [(r["device"], r["batch"], round(r["vs_baseline"], 2)) for r in merged["rows"]]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgegan.runtime.bench.harness import BENCH_FORMAT, BENCH_KIND
from edgegan.runtime.bench.machine import machine_slug
from edgegan.runtime.bench.runners import BenchError

__all__ = ["MERGED_KIND", "MERGED_FORMAT", "load_run", "merge_runs", "variant_name"]

MERGED_KIND = "edgegan bench-report"
MERGED_FORMAT = 1
ROW_KEYS = ("model", "engine", "threads", "batch")  # what every bench row has, in every format so far
HOW = "run `edgegan bench MODEL ... --json FILE` on each machine and give those files"


def variant_name(model: str) -> str:
    """The model file as the rows of different machines name it: its last two path parts
    ("fashion/generator.int8.onnx"), since each machine keeps the files under its own folder."""
    parts = Path(str(model)).parts
    return "/".join(parts[-2:]) if len(parts) > 1 else str(model)


def load_run(path: str | os.PathLike) -> dict[str, Any]:
    """Read one `edgegan bench --json` file and check that it is one.

    Raises:
        BenchError: unreadable, not JSON, a merged bench-report, not a bench result, or a newer format.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError(f"{path}: no such file; {HOW}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from exc
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path} is not JSON (line {exc.lineno}: {exc.msg}); {HOW}") from exc
    if isinstance(data, dict) and data.get("kind") == MERGED_KIND:
        raise BenchError(f"{path} is a merged `edgegan bench-report` file, not one run; give the runs it merged")
    rows = data.get("rows") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("kind", BENCH_KIND) != BENCH_KIND
        or not isinstance(data.get("machine"), dict)
        or not isinstance(rows, list)
        or not all(isinstance(r, dict) and all(k in r for k in ROW_KEYS) for r in rows)
    ):
        raise BenchError(
            f"{path} is not an edgegan bench JSON (it needs 'machine' and 'rows' with {', '.join(ROW_KEYS)}); {HOW}"
        )
    version = data.get("format")
    if not isinstance(version, int) or not 1 <= version <= BENCH_FORMAT:
        raise BenchError(
            f"{path} is bench format {version!r}; this edgegan reads format 1..{BENCH_FORMAT}: "
            "merge it with the edgegan that wrote it, or run `edgegan bench` again with this one"
        )
    return data


def _labels(paths: Sequence[Path], runs: Sequence[dict]) -> list[str]:
    """Each run's machine label; runs of one machine (same label) are told apart by their file names."""
    base = [str(run["machine"].get("label") or machine_slug(run["machine"])) for run in runs]
    labels = [f"{label} ({path.stem})" if base.count(label) > 1 else label for label, path in zip(base, paths)]
    return [f"{label} #{i + 1}" if labels.count(label) > 1 else label for i, label in enumerate(labels)]


def _pick_baseline(baseline: str | os.PathLike | None, paths: Sequence[Path], labels: Sequence[str]) -> int:
    if baseline is None:
        return 0
    text = str(baseline)
    for i, (path, label) in enumerate(zip(paths, labels)):
        if text == label or text == str(path) or (Path(text).exists() and Path(text).resolve() == path.resolve()):
            return i
    matches = [i for i, label in enumerate(labels) if label.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    raise BenchError(
        f"--baseline {text!r} is neither one of the files given nor a run label; labels: " + ", ".join(labels)
    )


def _key(row: dict[str, Any]) -> tuple:
    return variant_name(row["model"]), row["engine"], row.get("setup"), row["batch"], row["threads"]


def _baseline_row(row: dict[str, Any], candidates: dict[tuple, list[dict]]) -> dict[str, Any] | None:
    """The baseline's row for the same configuration: the same provider if it ran it, else its only one."""
    rows = [r for r in candidates.get(_key(row), []) if r.get("p50_ms")]
    same = [r for r in rows if r.get("provider") == row.get("provider")]
    return same[0] if same else (rows[0] if len(rows) == 1 else None)


def merge_runs(paths: Sequence[str | os.PathLike], baseline: str | os.PathLike | None = None) -> dict[str, Any]:
    """Merge bench runs (one per machine) into one result.

    Args:
        paths: `edgegan bench --json` files, two or more (one also works: it is its own baseline).
        baseline: the run the ratios are relative to: one of `paths`, or a run's label (or a unique start of
            one); None: the first file.

    Returns:
        {"kind", "format", "baseline": label, "runs": [{label, file, machine, settings, memory_method, peak}],
         "rows": every run's rows, one configuration's rows together, each with "device" (its run's label), "variant" (variant_name of its model),
         "vs_baseline" (p50 / the baseline's p50 at the same variant, engine, set-up, batch and threads; None
         where the baseline has no such row) and "baseline_provider"}.

    Raises:
        BenchError: no files, a file that is not a bench JSON, runs of different formats, an unknown baseline.
    """
    if not paths:
        raise BenchError(f"give at least one bench JSON file; {HOW}")
    files = [Path(p) for p in paths]
    runs = [load_run(p) for p in files]
    formats = {run["format"] for run in runs}
    if len(formats) > 1:
        listed = ", ".join(f"{p.name} format {run['format']}" for p, run in zip(files, runs))
        raise BenchError(
            f"the runs have different bench formats ({listed}); their rows do not compare: run "
            "`edgegan bench` again with one edgegan version on every machine"
        )
    labels = _labels(files, runs)
    chosen = _pick_baseline(baseline, files, labels)
    candidates: dict[tuple, list[dict]] = {}
    for row in runs[chosen]["rows"]:
        candidates.setdefault(_key(row), []).append(row)
    rows = []
    for label, run in zip(labels, runs):
        for row in run["rows"]:
            base = _baseline_row(row, candidates)
            merged = {"device": label, "variant": variant_name(row["model"]), **row}
            merged["vs_baseline"] = row["p50_ms"] / base["p50_ms"] if base and row.get("p50_ms") else None
            merged["baseline_provider"] = base.get("provider") if base else None
            rows.append(merged)
    # One configuration's rows next to each other, devices in the order given: the table compares down a column.
    order = {label: i for i, label in enumerate(labels)}
    rows.sort(
        key=lambda r: (r["variant"], r["engine"], str(r.get("setup")), r["threads"], r["batch"], order[r["device"]])
    )
    return {
        "kind": MERGED_KIND,
        "format": MERGED_FORMAT,
        "baseline": labels[chosen],
        "runs": [
            {
                "label": label,
                "file": str(path),
                "machine": run["machine"],
                "settings": run.get("settings"),
                "memory_method": run.get("memory_method"),
                "peak": run.get("peak", []),
            }
            for label, path, run in zip(labels, files, runs)
        ],
        "rows": rows,
    }
