"""The cuda variant: the generator in the graph form cuDNN runs best, for onnxruntime's CUDA provider
(generator.cuda.onnx). A folder loaded with provider "cuda" opens it (runtime/session.py PROVIDER_FORMS).

generator.onnx ships export/graph_forms.optimize_fp32's phase form: each stride-2 ConvTranspose as four 2x2 Convs
interleaved channels-last, which wins on the CPU provider (NCHWc kernels) but costs a GPU four convolutions, a
Concat and Transposes per layer: four or more kernel launches where cuDNN has one ConvTranspose kernel. On an H200
(docs/reference_figures.md, 2026-11-30) `Generator` on that form ran 1.36x torch eager at batch 1024, while the plain
ConvTranspose graph (fp16, CUDA graph, IO binding) ran 1.02 ms against torch's 3.59. So this variant is the graph
as torch exported it (`Sources.core`: BatchNorm folded, ConvTranspose form) with the uint8 tail where the contract
asks for it: the same contract, precision fp32, verified like generator.onnx and against it (versus_fp32).

NHWC is not written into the graph: onnxruntime's CUDA provider converts Conv/ConvTranspose to NHWC itself with
`prefer_nhwc` (runtime/providers.py CudaOptions), inserting the layout Transposes once, where it has NHWC kernels.
fp16 of this form is `convert_fp16(build(...).model)` (benchmarks/gpu_check.py times it); the shipped fp16
variant stays the conversion of generator.onnx until the H200 run shows which form it should take.

The form is recorded in the report entry ("graph_form", "for_provider"), in the file's doc_string (onnxruntime's
`get_modelmeta().description`) and in its contract: `form_contract` is generator.onnx's contract recording
edgegan.graph_form = "convtranspose" and nothing else changed (runtime/contract.py with_graph_form), which the
runtime reads when it opens the file for the CUDA provider (runtime/session.py check_provider_form); metadata_props
stay exactly that contract's keys, as verify demands of every file.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from edgegan.export.onnx import append_uint8_tail, op_counts
from edgegan.export.variants.variant import Built, Sources
from edgegan.runtime.contract import OUTPUT_UINT8_NHWC, GeneratorContract
from edgegan.runtime.session import PROVIDER_FORMS

FOR_PROVIDER = "CUDAExecutionProvider"
FILE = PROVIDER_FORMS[FOR_PROVIDER].file  # the file the runtime opens for a folder on that provider
GRAPH_FORM = PROVIDER_FORMS[FOR_PROVIDER].graph_form  # "convtranspose", what its contract records
DOC = f"edgegan graph form: {GRAPH_FORM} (plain ConvTranspose, BatchNorm folded), for {FOR_PROVIDER}"


def form_contract(contract: GeneratorContract) -> GeneratorContract:
    """The contract of this variant: `contract` (generator.onnx's) recording GRAPH_FORM, the same in all else."""
    return contract.with_graph_form(GRAPH_FORM)


def cuda_form(sources: Sources) -> onnx.ModelProto:
    """The plain ConvTranspose graph with generator.onnx's output form (a copy; `sources` are left alone)."""
    model = onnx.ModelProto.FromString(sources.core.SerializeToString())
    if sources.contract.output == OUTPUT_UINT8_NHWC:
        model = append_uint8_tail(model)
    model.doc_string = DOC
    return model


def build(sources: Sources, path: Path) -> Built:
    """cuda_form with its contract (the pipeline stamps it at fp32, saves and verifies the file)."""
    model = cuda_form(sources)
    return Built(
        model,
        ops=op_counts(model),
        extra={"graph_form": GRAPH_FORM, "for_provider": FOR_PROVIDER},
        contract=form_contract(sources.contract),
    )
