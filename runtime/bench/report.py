"""The benchmark's outputs: a text table for the terminal, markdown, JSON and a PNG plot (matplotlib, optional).

All take the dict `edgegan.runtime.bench.harness.run_bench` returns; files are written atomically (temp file in the same folder,
fsync, rename), so a reader never sees half a table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgegan.runtime.bench.harness import BenchError
from edgegan.runtime.errors import install_hint
from edgegan.runtime.files import atomic_write

# (header, key, format) of the table's columns; a missing value prints as "-".
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model", "model", "s"),
    ("engine", "engine", "s"),
    ("setup", "setup", "s"),
    ("provider", "provider", "s"),
    ("thr", "threads", "d"),
    ("batch", "batch", "d"),
    ("prec", "precision", "s"),
    ("output", "output", "s"),
    ("p50 ms", "p50_ms", ".3f"),
    ("p90 ms", "p90_ms", ".3f"),
    ("p99 ms", "p99_ms", ".3f"),
    ("mean ms", "mean_ms", ".3f"),
    ("img/s", "images_per_s", ".0f"),
    ("GFLOP/s", "gflops", ".1f"),
    ("% peak", "peak_share", "%"),
    ("CPU % peak", "peak_share_cpu", "%"),
    ("create ms", "cold_create_s", "ms"),
    ("1st call ms", "cold_first_run_s", "ms"),
    ("peak MiB", "rss_peak_mib", ".0f"),
    ("/ torch", "ratio", ".3f"),
    ("/ compile", "ratio_compile", ".3f"),
    ("spread", "spread", "%"),
)
PROVIDER_SHORT = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "trt"}


def short_model(name: str) -> str:
    """The last two parts of a path ("dcgan28/generator.onnx"), enough to tell rows apart."""
    parts = Path(name).parts
    return "/".join(parts[-2:]) if len(parts) > 1 else name


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None or value == "":
        return "-"
    if key == "model":
        return short_model(str(value))
    if key == "provider":
        return PROVIDER_SHORT.get(str(value), str(value))
    if fmt == "%":
        return f"{100 * value:.0f}%"
    if fmt == "ms":
        return f"{1e3 * value:.1f}"
    if fmt == "s":
        return str(value)
    return format(value, fmt)


def _header_lines(result: dict[str, Any]) -> list[str]:
    m, s = result["machine"], result["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    lines = [
        f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable, "
        f"{m['physical_cores'] or '?'} physical cores), flags {' '.join(m['flags']) or '-'}, "
        f"{m['memory_gib'] or '?'} GiB; {m['os']}",
        f"versions: {versions}; providers available: {', '.join(m['providers'])}",
        f"load average (1, 5, 15 min): {m['loadavg']} at start, {m.get('loadavg_end', '?')} at end",
    ]
    peaks = [
        f"{p.get('precision', 'fp32')} {PROVIDER_SHORT.get(p['provider'], p['provider'])} {p['threads']} thr "
        + (
            f"{p['gflops']:.1f} GFLOP/s ({p['gflops_per_cpu_s'] or 0:.1f} per CPU-second)"
            if "gflops" in p
            else f"failed ({p['error']})"
        )
        for p in result["peak"]
    ]
    if peaks:
        lines.append(
            f"peak (fp32 matmul {s['peak_size']}^3; int8 u8 x s8 matmulinteger {s['peak_size']}^3 on the CPU; "
            "same provider and threads, same rounds): " + "; ".join(peaks)
        )
    how = f"{s['iters']} calls" if s["iters"] else f"~{s['duration_s'] or 2:g} s of calls"
    lines.append(
        f"timing: {s['warmup']} warm-up calls, then {how} per row over {s['rounds']} interleaved rounds "
        f"(seeded shuffle); figures are medians"
        + (f"; pinned to core {s['pin_core']}" if s["pin_core"] is not None else "")
    )
    lines.append(f"memory: {result['memory_method']}")
    lines.append(
        "GFLOP/s = 2 x multiply-adds counted in the graph at that batch / p50; % peak = GFLOP/s / the peak of "
        "the row's precision (fp16 counts as fp32; int8 by the integer matmul), or the best row of that "
        "precision when a row beats its kernel: each row's peak_source says which; "
        "CPU % peak = the same per CPU-second of the process (blind to preemption by other processes and to "
        "idle threads); / torch = p50 / torch eager p50 (same threads, batch); spread = IQR / median of "
        "per-round medians"
    )
    return lines


def format_table(result: dict[str, Any]) -> str:
    """The result as an aligned text table under the machine/peak header."""
    rows = result["rows"]
    cells = [[h for h, _, _ in COLUMNS]] + [[_cell(r, k, f) for _, k, f in COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    text = [
        " ".join(c.ljust(w) if i < 8 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))) for line in cells
    ]
    errors = [
        f"  {short_model(r['model'])} {r['engine']} t{r['threads']} b{r['batch']}: {r['error']}"
        for r in rows
        if r.get("error")
    ]
    return "\n".join(_header_lines(result) + [""] + text + (["", "errors:", *errors] if errors else []))


def to_markdown(result: dict[str, Any], title: str = "edgegan bench") -> str:
    """The result as markdown: the header as a list, then one table row per configuration."""
    lines = [f"## {title}", ""] + [f"- {line}" for line in _header_lines(result)] + [""]
    lines.append("| " + " | ".join(h for h, _, _ in COLUMNS) + " |")
    lines.append("|" + "|".join(" --- " if i < 8 else " ---: " for i in range(len(COLUMNS))) + "|")
    for row in result["rows"]:
        lines.append("| " + " | ".join(_cell(row, k, f) for _, k, f in COLUMNS) + " |")
    errors = [r for r in result["rows"] if r.get("error")]
    if errors:
        lines += ["", "Errors:"] + [
            f"- {short_model(r['model'])} {r['engine']} {r['threads']} threads, batch {r['batch']}: `{r['error']}`"
            for r in errors
        ]
    return "\n".join(lines) + "\n"


def write_json(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Every row, ratio, peak and the machine, as indented JSON."""
    return atomic_write(path, lambda f: f.write(json.dumps(result, indent=2, default=str) + "\n"), binary=False)


def write_markdown(result: dict[str, Any], path: str | os.PathLike, title: str = "edgegan bench") -> Path:
    return atomic_write(path, lambda f: f.write(to_markdown(result, title)), binary=False)


def require_matplotlib() -> None:
    """Fail early, before any timing, when --plot cannot be honoured."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise BenchError(f"--plot needs matplotlib, which is not installed: {install_hint('plot')}")


def _palette(name: str) -> list[Any]:
    """The colours of one of matplotlib's listed (qualitative) colormaps, "tab10" or "tab20"."""
    import matplotlib
    from matplotlib.colors import ListedColormap

    cmap = matplotlib.colormaps[name]
    colors = cmap.colors if isinstance(cmap, ListedColormap) else None
    if not isinstance(colors, Sequence):
        raise BenchError(f"matplotlib's colormap {name!r} is not a list of colours in this matplotlib version")
    return list(colors)


def _series(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """One line per configuration: everything but the batch."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("p50_ms") is None:
            continue
        setup = f" [{row['setup']}]" if row.get("setup") not in (None, "default") else ""
        name = (
            f"{short_model(row['model'])} {row['engine']}{setup} "
            f"{PROVIDER_SHORT.get(row['provider'], row['provider'])} {row['threads']}t"
        )
        lines.setdefault(name, []).append(row)
    return lines


def write_plot(result: dict[str, Any], path: str | os.PathLike, title: str = "edgegan bench") -> Path:
    """PNG: p50 latency and images/s against batch (log-log), one line per configuration.

    Raises:
        BenchError: matplotlib is not installed.
    """
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (matplotlib.ticker.ScalarFormatter below)

    fig, (ax_lat, ax_thr) = plt.subplots(1, 2, figsize=(13, 5.5))
    colors = _palette("tab20")
    for i, (name, rows) in enumerate(sorted(_series(result["rows"]).items())):
        rows = sorted(rows, key=lambda r: r["batch"])
        batches = [r["batch"] for r in rows]
        style = "--" if rows[0]["engine"].startswith("torch") else "-"
        color = colors[i % len(colors)]
        ax_lat.plot(batches, [r["p50_ms"] for r in rows], style, marker="o", label=name, color=color)
        ax_thr.plot(batches, [r["images_per_s"] for r in rows], style, marker="o", label=name, color=color)
    for ax, label in ((ax_lat, "p50 latency (ms)"), (ax_thr, "images / s (batch / p50)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sorted({r["batch"] for r in result["rows"]}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("batch")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    m = result["machine"]
    fig.suptitle(f"{title}: {m['cpu']}, {m['usable_cpus']} CPUs, onnxruntime {m['versions']['onnxruntime']}")
    handles, labels = ax_lat.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.022 * ((len(labels) + 1) // 2), 1, 0.95))
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110), binary=True)
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------------------- merged runs
# `edgegan bench-report`: the result of edgegan.runtime.bench.merge.merge_runs, several machines in one table.
MERGED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("device", "device", "s"),
    ("model", "variant", "s"),
    ("engine", "engine", "s"),
    ("setup", "setup", "s"),
    ("provider", "provider", "s"),
    ("thr", "threads", "d"),
    ("batch", "batch", "d"),
    ("prec", "precision", "s"),
    ("p50 ms", "p50_ms", ".3f"),
    ("p90 ms", "p90_ms", ".3f"),
    ("img/s", "images_per_s", ".0f"),
    ("GFLOP/s", "gflops", ".1f"),
    ("% peak", "peak_share", "%"),
    ("/ baseline", "vs_baseline", ".3f"),
    ("spread", "spread", "%"),
)
_MERGED_TEXT_COLUMNS = 8  # left-aligned; the figures after them are right-aligned


def _run_line(run: dict[str, Any]) -> str:
    """One machine of a merged result: what it is, its versions and load, how it was timed, from which file."""
    m, s = run["machine"], run.get("settings") or {}
    what = ", ".join(str(x) for x in (m.get("board"), m.get("cpu"), m.get("arch"), *(m.get("gpus") or [])) if x)
    how = f"{s['iters']} calls" if s.get("iters") else f"~{s.get('duration_s') or 2:g} s of calls"
    return (
        f"{run['label']}: {what}; {m.get('usable_cpus')} of {m.get('logical_cpus')} CPUs usable, flags "
        f"{' '.join(m.get('flags') or []) or '-'}, {m.get('memory_gib') or '?'} GiB; {m.get('os')}; onnxruntime "
        f"{(m.get('versions') or {}).get('onnxruntime')}; load average {m.get('loadavg')} at start, "
        f"{m.get('loadavg_end', '?')} at end; {how} per row over {s.get('rounds', '?')} rounds; {run['file']}"
    )


def _merged_header(merged: dict[str, Any]) -> list[str]:
    return [_run_line(run) for run in merged["runs"]] + [
        f"/ baseline = p50 / the p50 of {merged['baseline']} at the same model, engine, set-up, batch and threads "
        "(the same provider where it ran it): above 1 slower, below 1 faster; figures are each run's medians"
    ]


def format_merged_table(merged: dict[str, Any]) -> str:
    """A merged result as an aligned text table under one line per machine."""
    cells = [[h for h, _, _ in MERGED_COLUMNS]] + [
        [_cell(r, k, f) for _, k, f in MERGED_COLUMNS] for r in merged["rows"]
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(MERGED_COLUMNS))]
    text = [
        " ".join(
            c.ljust(w) if i < _MERGED_TEXT_COLUMNS else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))
        ).rstrip()
        for line in cells
    ]
    return "\n".join(_merged_header(merged) + [""] + text)


def merged_markdown(merged: dict[str, Any], title: str = "edgegan bench-report") -> str:
    """A merged result as markdown: the machines as a list, then one table row per (machine, configuration)."""
    lines = [f"## {title}", ""] + [f"- {line}" for line in _merged_header(merged)] + [""]
    lines.append("| " + " | ".join(h for h, _, _ in MERGED_COLUMNS) + " |")
    lines.append(
        "|" + "|".join(" --- " if i < _MERGED_TEXT_COLUMNS else " ---: " for i in range(len(MERGED_COLUMNS))) + "|"
    )
    lines += ["| " + " | ".join(_cell(r, k, f) for _, k, f in MERGED_COLUMNS) + " |" for r in merged["rows"]]
    return "\n".join(lines) + "\n"


def write_merged_markdown(merged: dict[str, Any], path: str | os.PathLike) -> Path:
    return atomic_write(path, lambda f: f.write(merged_markdown(merged)), binary=False)


def write_merged_plot(merged: dict[str, Any], path: str | os.PathLike, title: str = "edgegan bench-report") -> Path:
    """PNG: p50 latency and images/s of every configuration (model, engine, batch, threads), one bar per device.

    Raises:
        BenchError: matplotlib is not installed.
    """
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    timed = [r for r in merged["rows"] if r.get("p50_ms")]
    devices = list(dict.fromkeys(r["device"] for r in timed))
    configs = sorted(
        {(r["variant"], r["engine"], r.get("setup"), r["threads"], r["batch"]) for r in timed},
        key=lambda c: (c[0], c[1], str(c[2]), c[3], c[4]),
    )
    by_key = {(r["device"], r["variant"], r["engine"], r.get("setup"), r["threads"], r["batch"]): r for r in timed}
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 0.45 * len(configs) * max(1, len(devices)) + 3), 8.5), sharex=True)
    width = 0.8 / max(1, len(devices))
    x = np.arange(len(configs))
    colors = _palette("tab10")
    for d, device in enumerate(devices):
        rows = [by_key.get((device, *c)) for c in configs]
        for ax, key in zip(axes, ("p50_ms", "images_per_s")):
            values = [r[key] if r else np.nan for r in rows]
            ax.bar(x + (d - (len(devices) - 1) / 2) * width, values, width, label=device, color=colors[d % 10])
    for ax, label in zip(axes, ("p50 latency (ms)", "images / s (batch / p50)")):
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(True, axis="y", which="both", alpha=0.3)
    names = [
        f"{short_model(v)} {e}{'' if s in (None, 'default') else f' [{s}]'}\n{t}t b{b}" for v, e, s, t, b in configs
    ]
    axes[1].set_xticks(x, names, rotation=60, ha="right", fontsize=7)
    axes[0].legend(fontsize=8, frameon=False)
    fig.suptitle(f"{title}: {len(devices)} device(s), baseline {merged['baseline']}")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110), binary=True)
    finally:
        plt.close(fig)
