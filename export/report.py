"""export_report.json: one entry per variant (file, checks with figures, error, size, opset, operator counts),
plus the contract, the source checkpoint and library versions; and the same as a text table for the CLI."""

from __future__ import annotations

import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from edgegan.export.pixel_levels import describe
from edgegan.export.verify import TOLERANCES, VariantVerification
from edgegan.runtime.files import file_sha256

REPORT_NAME = "export_report.json"
REPORT_FORMAT = 1


def versions() -> dict[str, str]:
    """Versions of what produced and checked the files."""
    found = {"python": platform.python_version()}
    for dist in ("edgegan", "torch", "onnx", "onnxruntime", "onnxscript", "tensorrt"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def variant_entry(
    verification: VariantVerification | None,
    *,
    file: str,
    path: Path,
    precision: str,
    output: str,
    opset: int | None,
    ops: dict[str, int] | None,
    extra: dict[str, Any] | None = None,
    checks: list | None = None,
) -> dict[str, Any]:
    """One variant's report entry; `file` is relative to the export folder."""
    records = verification.records if verification is not None else (checks or [])
    max_err, mean_err = verification.error_figures() if verification is not None else (None, None)
    units = {r.unit for r in records if r.name.startswith("vs_torch")}
    entry: dict[str, Any] = {
        "file": file,
        "passed": all(r.passed for r in records),
        "precision": precision,
        "output": output,
        "max_err": max_err,
        "mean_err": mean_err,
        "error_unit": units.pop() if len(units) == 1 else None,
        "size_bytes": path.stat().st_size if path.is_file() else _tree_size(path),
        "sha256": file_sha256(path) if path.is_file() else None,
        "opset": opset,
        "ops": ops,
        "checks": [r.to_dict() for r in records],
    }
    levels = next((r for r in records if r.name == "pixel_levels" and r.figures), None)
    if levels is not None:  # a lossy variant's headline: what its users see, each figure with its limit
        entry["pixel_levels"] = levels.figures
    if extra:
        entry.update(extra)
    return entry


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def tolerance_table() -> dict[str, dict[str, float | None]]:
    return {name: asdict(tol) for name, tol in TOLERANCES.items()}


def _size(n: int) -> str:
    size = float(n)  # bytes, then KiB, MiB, GiB
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _err(value: float | None, unit: str | None) -> str:
    if value is None:
        return "-"
    if unit == "levels":
        return f"{value:.3g} lvl"
    return f"{value:.2e}"


def _ops(ops: dict[str, int] | None, width: int = 4) -> str:
    if not ops:
        return "-"
    top = sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{name} {count}" for name, count in top[:width])
    more = "" if len(top) <= width else f", +{len(top) - width} more"
    return f"{sum(ops.values())}: {text}{more}"


def format_table(report: dict[str, Any]) -> str:
    """The report as a text table: variant | checks | max err | mean err | size | ops."""
    header = ("variant", "file", "checks", "max err", "mean err", "size", "ops")
    rows = [header]
    for name, entry in report["variants"].items():
        checks = entry["checks"]
        passed = sum(1 for c in checks if c["passed"])
        rows.append(
            (
                name,
                entry["file"],
                f"{passed}/{len(checks)} " + ("ok" if entry["passed"] else "FAILED"),
                _err(entry["max_err"], entry.get("error_unit")),
                _err(entry["mean_err"], entry.get("error_unit")),
                _size(entry["size_bytes"]),
                _ops(entry["ops"]),
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = [" | ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    for name, entry in report["variants"].items():
        if entry.get("pixel_levels"):
            lines.append(
                f"{name} pixel levels vs torch: " + "; ".join(describe(f) for f in entry["pixel_levels"].values())
            )
    exporter = report["exporter"]
    lines.append("")
    lines.append(
        f"exporter: torch.onnx {exporter['exporter']}, opset {exporter['opset']}; "
        f"BatchNorm folded: {report['batchnorm_folded']}; source: {report['source']}"
    )
    return "\n".join(lines)
