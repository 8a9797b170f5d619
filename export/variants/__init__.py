"""The variants an export can add beside generator.onnx: one module each, one row each in VARIANTS.

edgegan.export.pipeline.export_checkpoint walks the table in order (the order of export_report.json's
"variants"): for each row the options ask for, it builds the file, stamps the row's contract into an ONNX graph
and saves it, verifies it (edgegan.export.verify, by the row's tolerance) or raises on the build's own failed
checks, and records it. The table is also the one source of the variants' options: `edgegan export`'s flags
(export/cli.py), export_checkpoint's variant keywords and the VariantOptions dataclass (options_type) derive from
the rows. Adding a variant is a module with a `build(sources, path) -> Built` (and optionally `preflight()`) and a
row here; tests/export/test_variant_table.py adds a toy one that way.

Torch- and onnx-free at import (`edgegan export --help` reads it in a runtime-only install): rows name their
modules, which are imported when a variant is built.
"""

from __future__ import annotations

from typing import Any

from edgegan.export.variants.variant import (
    Built,
    Sources,
    Variant,
    VariantError,
    VariantParam,
    make_options,
    options_type,
)
from edgegan.runtime.session import PROVIDER_FORMS

__all__ = [
    "VARIANTS",
    "Built",
    "Sources",
    "Variant",
    "VariantError",
    "VariantOptions",
    "VariantParam",
    "convert_fp16",
    "convert_to_ort",
    "make_options",
    "options_type",
]

MODULE = "edgegan.export.variants.{}"
#: the onnxruntime reduced-build config the ort variant writes beside generator.ort (export/variants/ort.py)
REDUCED_BUILD_CONFIG = "generator.required_operators.config"

VARIANTS: tuple[Variant, ...] = (
    Variant(
        "fp16",
        "generator.fp16.onnx",
        "fp16",
        MODULE.format("fp16"),
        option="fp16",
        tolerance="fp16",
        help="Also write generator.fp16.onnx (float16 weights, float32 I/O).",
        step="converting to float16",
    ),
    Variant(
        "int8",
        "generator.int8.onnx",
        "int8",
        MODULE.format("int8"),
        option="int8",
        tolerance="int8",
        help="Also write generator.int8.onnx (static int8 quantization).",
        step="quantizing to int8",
    ),
    Variant(
        "ort",
        "generator.ort",
        "fp32",
        MODULE.format("ort"),
        option="ort_format",
        tolerance="fp32",
        help="Also write generator.ort for onnxruntime minimal/mobile builds.",
        step="converting to onnxruntime's .ort format",
        versus_fp32=True,
        also=(REDUCED_BUILD_CONFIG,),
    ),
    Variant(
        "tensorrt",
        "generator.plan",
        "fp32",
        MODULE.format("tensorrt"),
        option="tensorrt",
        tolerance=None,
        help="Also build generator.plan with TensorRT (needs tensorrt + CUDA).",
        step="building a TensorRT engine (batch profile {trt_batch})",
        has_opset=False,
        also=("generator.plan.sha256",),
        params=(
            VariantParam(
                "trt_batch",
                (1, 16, 64),
                metavar="MIN,OPT,MAX",
                cli_default="1,16,64",
                help="TensorRT optimization profile batch sizes; MAX is also Triton's max_batch_size.",
                parse="edgegan.export.tensorrt_build:parse_batch_profile",
                check="edgegan.export.tensorrt_build:check_batch_profile",
            ),
        ),
    ),
    Variant(
        "triton",
        "triton/{model}",
        "fp32",
        MODULE.format("triton"),
        option="triton",
        tolerance=None,
        help="Also write a Triton model repository under OUT/triton/.",
        step="writing the Triton model repository",
    ),
    Variant(
        "cuda",
        PROVIDER_FORMS["CUDAExecutionProvider"].file,
        "fp32",
        MODULE.format("cuda"),
        option="cuda",
        tolerance="fp32",
        versus_fp32=True,
        help="Also write generator.cuda.onnx, the plain ConvTranspose form for onnxruntime's CUDA provider "
        "(a folder loaded with --provider cuda opens it).",
        step="writing the plain ConvTranspose form for the CUDA provider",
    ),
    # Last: the page copies generator.onnx and, when asked for, generator.int8.onnx.
    Variant(
        "web",
        "web",
        "fp32",
        MODULE.format("web"),
        option="web",
        tolerance=None,
        has_opset=False,
        help="Also write OUT/web/: a static page that samples, interpolates and benchmarks in a browser "
        "(serve it with `edgegan serve OUT/web`).",
        step="writing the web page (web/: index.html, the models, manifest.json)",
        params=(
            VariantParam(
                "web_runtime",
                None,
                metavar="DIR",
                needs_flag=True,
                help="onnxruntime-web's dist folder to copy into web/ort/ for offline use [default: a "
                "pinned, integrity-checked CDN URL].",
                check="edgegan.export.variants.web:runtime_dir_option",
            ),
        ),
    ),
)

#: The options dataclass of the shipped table (a test's own table gets its own: options_type(table)).
VariantOptions = options_type(VARIANTS)


def __getattr__(name: str) -> Any:
    # The graph conversions, importable from here as before, imported on first use (they need onnx).
    if name == "convert_fp16":
        from edgegan.export.variants.fp16 import convert_fp16

        return convert_fp16
    if name == "convert_to_ort":
        from edgegan.export.variants.ort import convert_to_ort

        return convert_to_ort
    raise AttributeError(name)
