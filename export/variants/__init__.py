"""The variants an export can add beside generator.onnx: one module each, one row each in VARIANTS.

edgegan.export.pipeline.export_checkpoint walks the table in order (the order of export_report.json's
"variants"): for each row the options ask for, it builds the file, stamps the row's contract into an ONNX graph
and saves it, verifies it (edgegan.export.verify, by the row's tolerance) or raises on the build's own failed
checks, and records it. Adding a variant is a module with a `build(sources, path) -> Built` and a row here.
"""
from __future__ import annotations

from edgegan.export.variants import cuda, fp16, int8, ort, tensorrt, triton, web
from edgegan.export.variants.fp16 import convert_fp16
from edgegan.export.variants.ort import convert_to_ort
from edgegan.export.variants.variant import Built, Sources, Variant, VariantError, VariantOptions

__all__ = ["VARIANTS", "Built", "Sources", "Variant", "VariantError", "VariantOptions", "convert_fp16",
           "convert_to_ort"]

VARIANTS: tuple[Variant, ...] = (
    Variant("fp16", "generator.fp16.onnx", "fp16", fp16.build, option="fp16", tolerance="fp16",
            step="converting to float16"),
    Variant("int8", "generator.int8.onnx", "int8", int8.build, option="int8", tolerance="int8",
            step="quantizing to int8", preflight=int8.preflight),
    Variant("ort", "generator.ort", "fp32", ort.build, option="ort_format", tolerance="fp32",
            step="converting to onnxruntime's .ort format", versus_fp32=True, also=ort.ALSO),
    Variant("tensorrt", "generator.plan", "fp32", tensorrt.build, option="tensorrt", tolerance=None,
            step="building a TensorRT engine (batch profile {trt_batch})", has_opset=False,
            also=("generator.plan.sha256",), preflight=tensorrt.preflight),
    Variant("triton", "triton/{model}", "fp32", triton.build, option="triton", tolerance=None,
            step="writing the Triton model repository"),
    Variant("cuda", cuda.FILE, "fp32", cuda.build, option="cuda", tolerance="fp32",
            step="writing the plain ConvTranspose form for the CUDA provider", versus_fp32=True),
    # Last: the page copies generator.onnx and, when asked for, generator.int8.onnx.
    Variant("web", "web", "fp32", web.build, option="web", tolerance=None, has_opset=False,
            step="writing the web page (web/: index.html, the models, manifest.json)"),
)
