"""The pixel-level figures of fp16 and int8 on real checkpoints, and of deliberately damaged int8 files: the
measurements TOLERANCES' level budgets were picked from (issue 20).

For each checkpoint: export as `edgegan export` does (BatchNorm folded, torch.onnx, the optimized fp32 form), build
fp16 and int8 (the defaults), damage the int8 file twice per layer kind (one weight scale x1.5; one activation's
calibrated range clipped to a quarter), run verify_variant on every file, and write one row per file: the level
figures of the 256-image pixel_levels check, the float max error, whether the old rule (max abs error <= 0.05 at
batches 1, 3, 17) and the new one pass.

Usage: python -m benchmarks.probes.int8_levels CKPT ... [--markdown benchmarks/results/int8/levels.md] [--json F]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import onnx


def files_to_judge(
    fp32_path: Path, core_path: Path, contract, work: Path, damage: bool = True
) -> list[tuple[str, str, Path]]:
    """(label, tolerance row, path): fp16, int8 and the damaged int8 files."""
    from edgegan.export.int8_quantize import build_int8
    from edgegan.export.onnx import set_contract_metadata
    from edgegan.export.variants.fp16 import convert_fp16
    from tests.trained_fixtures import (
        activation_quantizers,
        clipped_activation_range,
        weight_dequantizers,
        wrong_weight_scale,
    )

    fp16 = convert_fp16(onnx.load(fp32_path))
    set_contract_metadata(fp16, dataclasses.replace(contract, precision="fp16"))
    onnx.save(fp16, work / "generator.fp16.onnx")
    int8 = work / "generator.int8.onnx"
    build_int8(core_path, int8, dataclasses.replace(contract, precision="int8"))
    rows = [("fp16", "fp16", work / "generator.fp16.onnx"), ("int8", "int8", int8)]
    if not damage:
        return rows
    model = onnx.load(int8)
    for i in range(len(weight_dequantizers(model))):
        dst = work / f"int8.wscale{i}.onnx"
        name = wrong_weight_scale(int8, dst, 1.5, i)
        rows.append((f"int8, weight scale x1.5 on {name}", "int8", dst))
    # One damage per distinct activation: the Transpose/Unsqueeze/Concat copies of a phase output share its range
    # (export/int8_calibration.shared_concat_ranges), so clipping them repeats the same figures.
    seen_scales = set()
    for i, node in enumerate(activation_quantizers(model)):
        if node.input[1] in seen_scales or not any(part in node.input[0] for part in ("act", "relu", "z", "cat")):
            continue
        seen_scales.add(node.input[1])
        dst = work / f"int8.clip{i}.onnx"
        name = clipped_activation_range(int8, dst, 0.25, i)
        rows.append((f"int8, range of {name} clipped to 1/4", "int8", dst))
    return rows


def measure(ckpt: Path, damage: bool = True) -> list[dict]:
    from edgegan.export.check_records import TOLERANCES
    from edgegan.export.verify import verify_variant
    from tests.trained_fixtures import export_core

    out = []
    with tempfile.TemporaryDirectory(prefix="int8-levels-") as tmp:
        work = Path(tmp)
        fp32_path, core_path, contract, reference = export_core(ckpt, work)
        for label, row, path in files_to_judge(fp32_path, core_path, contract, work, damage):
            c = dataclasses.replace(contract, precision=row)
            t0 = time.perf_counter()
            new = verify_variant(path, c, reference, variant=label, tolerance=TOLERANCES[row])
            old = verify_variant(
                path,
                c,
                reference,
                variant=label,
                batches=(1, 3, 17),
                tolerance=dataclasses.replace(TOLERANCES[row], levels=None),
            )
            levels = next(r for r in new.records if r.name == "pixel_levels")
            old_vs = [r for r in old.records if r.name.startswith("vs_torch")]
            out.append(
                {
                    "checkpoint": ckpt.name,
                    "file": label,
                    **{k: f["value"] for k, f in levels.figures.items()},
                    "float_max": max(r.max_err for r in old_vs),
                    "old_rule": all(r.passed for r in old_vs),
                    "new_rule": new.passed,
                    "failed": [r.failure() for r in new.records if not r.passed][:2],
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(json.dumps(out[-1]), flush=True)
    return out


def markdown(rows: list[dict], k: int) -> str:
    head = (
        f"| checkpoint | file | p99.9 | share > {k} lvl | worst image mean | max lvl | mean lvl | float max err "
        "| old rule (0.05) | new rule |\n|---|---|---:|---:|---:|---:|---:|---:|---|---|\n"
    )
    return head + "".join(
        f"| {r['checkpoint']} | {r['file']} | {r['p999']:.0f} | {100 * r['share_over_k']:.3f}% | "
        f"{r['worst_image_mean']:.2f} | {r['max']:.0f} | {r['mean']:.3f} | {r['float_max']:.3f} | "
        f"{'pass' if r['old_rule'] else 'FAIL'} | {'pass' if r['new_rule'] else 'FAIL'} |\n"
        for r in rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-damage", action="store_true", help="only the fp16 and int8 files as built")
    args = parser.parse_args(argv)
    from edgegan.export.check_records import TOLERANCES

    rows = [row for ckpt in args.checkpoints for row in measure(ckpt, not args.no_damage)]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(rows, TOLERANCES["int8"].levels.k))
    print(markdown(rows, TOLERANCES["int8"].levels.k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
