"""Where an int8 generator's error comes from, and what each int8 build option does to it (issue 20, point 3).

For one checkpoint (a run folder or a .pt): export it as `edgegan export` does, build int8 with the defaults and
print the per-layer error (edgegan.export.int8_explain.layer_errors: each weighted layer's output against the
float model's, in int8 steps of that tensor), then build it with each alternative below and print its image-level
figures (edgegan.export.pixel_levels on 256 images, as the export's pixel_levels check) beside the float max error:

  before            the build before issue 20: the first layer's z grid set by the calibration latents' max |z|
  default           build_int8's defaults (MinMax ranges over 256 latents, per-channel weights, z grid +-5.5)
  calib 2048        8x the calibration latents (wider ranges: fewer clipped values, a coarser grid)
  percentile        ranges at the 99.999th percentile instead of min/max
  per-tensor        one weight scale per layer instead of per output channel
  first float       the first layer (reads z) kept float as well as the image layer

Usage: python -m benchmarks.int8_explain RUN|CKPT [--markdown F]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

# label -> (build_int8 options, the first layer's z bound: edgegan.export.int8.LATENT_BOUND, 0 = calibration's max)
OPTIONS = {
    "before: z range from calibration": ({}, 0.0),
    "default": ({}, None),
    "calib 2048": ({"calibration_samples": 2048}, None),
    "percentile": ({"method": "Percentile"}, None),
    "per-tensor": ({"per_channel": False}, None),
    "first float": ({"float_layers": ("first", "last")}, None),
}


def explain(source: Path, options: dict[str, tuple[dict, float | None]]) -> str:
    from edgegan.export import int8_quantize as int8
    from edgegan.export.check_records import TOLERANCES
    from edgegan.export.int8_explain import format_layer_errors, layer_errors
    from edgegan.export.int8_quantize import build_int8
    from edgegan.export.verify import verify_variant
    from tests.trained_fixtures import export_core

    out = [f"## {source}", ""]
    with tempfile.TemporaryDirectory(prefix="int8-explain-") as tmp:
        work = Path(tmp)
        _, core, contract, reference = export_core(source, work)
        contract = dataclasses.replace(contract, precision="int8")
        rows = []
        shipped = int8.LATENT_BOUND
        for label, (kwargs, bound) in options.items():
            path = work / f"{label.split(':')[0].replace(' ', '_')}.onnx"
            int8.LATENT_BOUND = shipped if bound is None else bound
            try:
                build_int8(core, path, contract, **kwargs)
            finally:
                int8.LATENT_BOUND = shipped
            if label == "default":
                out += [
                    "Per layer, default build (error in int8 steps of each tensor, 256 latents):",
                    "",
                    format_layer_errors(layer_errors(core, path, contract)),
                    "",
                ]
            result = verify_variant(path, contract, reference, tolerance=TOLERANCES["int8"], batches=(17,))
            levels = next(r for r in result.records if r.name == "pixel_levels")
            f = {k: v["value"] for k, v in levels.figures.items()}
            rows.append(
                f"| {label} | {f['p999']:.0f} | {100 * f['share_over_k']:.3f}% | {f['worst_image_mean']:.2f} | "
                f"{f['max']:.0f} | {f['mean']:.3f} | {levels.max_err:.3f} | {path.stat().st_size / 1e6:.2f} |"
            )
            print(rows[-1], flush=True)
        k = TOLERANCES["int8"].levels.k
        out += [
            "Image-level figures per build option (256 images vs PyTorch):",
            "",
            f"| build | p99.9 lvl | share > {k} lvl | worst image mean | max lvl | mean lvl | float max err | MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--only", nargs="*", choices=sorted(OPTIONS), help="build options (default: all)")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    options = {k: v for k, v in OPTIONS.items() if not args.only or k in args.only or k == "default"}
    text = "\n".join(explain(source, options) for source in args.sources)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
