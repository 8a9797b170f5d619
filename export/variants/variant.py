"""What an export variant is: its row in the table (Variant), what it is built from (Sources) and what its build
function hands back to the pipeline (Built)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import onnx

from edgegan.export.verify import CheckRecord
from edgegan.runtime.contract import GeneratorContract
from edgegan.runtime.errors import EdgeganError


class VariantError(EdgeganError, RuntimeError):
    """A variant could not be built from generator.onnx."""


@dataclass(frozen=True)
class VariantOptions:
    """The export options variants read: which of them to build, and TensorRT's batch profile (min, opt, max)."""

    fp16: bool = False
    int8: bool = False
    ort_format: bool = False
    tensorrt: bool = False
    triton: bool = False
    cuda: bool = False
    trt_batch: tuple[int, int, int] = (1, 16, 64)
    web: bool = False
    web_runtime: str | None = None  # onnxruntime-web's dist folder to copy into web/ort/ (None: pinned CDN URL)


@dataclass(frozen=True)
class Sources:
    """What every variant is built from, in the staging folder of one export."""

    fp32: onnx.ModelProto  # generator.onnx as saved: graph form, uint8 tail (if any), metadata
    core: onnx.ModelProto  # torch's export, ConvTranspose form, float NCHW, no uint8 tail: what int8 quantizes
    contract: GeneratorContract  # generator.onnx's contract (fp32)
    stage: Path  # becomes --out
    work: Path  # scratch files that never reach --out
    out_dir: Path  # --out as given (Triton names its model after it)
    options: VariantOptions
    written: dict[str, Path] = field(default_factory=dict)  # variant name -> its file, "fp32" first; the pipeline adds each


@dataclass
class Built:
    """A build function's result.

    model: the graph to stamp with the variant's contract and save at its path; None when the build wrote the
        file itself (.ort, TensorRT engine, Triton repository).
    ops: operator counts for the report (None: not an ONNX graph, or unknown).
    checks: the variant's own checks, for variants verify_variant cannot run (their `tolerance` is None).
    extra: more keys for the variant's report entry.
    precision: the precision when it follows the options rather than the table row (TensorRT's flags).
    """

    model: onnx.ModelProto | None = None
    ops: dict[str, int] | None = None
    checks: list[CheckRecord] = field(default_factory=list)
    extra: dict[str, Any] | None = None
    precision: str | None = None


@dataclass(frozen=True)
class Variant:
    """One row of the variant table (edgegan.export.variants.VARIANTS).

    name: its key in export_report.json's "variants".
    file: its path in --out; "{model}" stands for the Triton model name (edgegan.export.triton_repository.model_name).
    precision: the contract precision its metadata states (edgegan.runtime.contract.PRECISIONS).
    build: (sources, path in the staging folder) -> Built.
    option: the VariantOptions flag (an export_checkpoint parameter of the same name) that asks for it.
    step: the progress line before the build, formatted with the VariantOptions fields.
    tolerance: the TOLERANCES row verify_variant judges the file by; None: onnxruntime cannot run the file
        itself, so the build's own checks stand instead.
    versus_fp32: also compare its images with generator.onnx's (a variant that must compute the same graph).
    has_opset: the file holds an ONNX graph whose opset the report gives.
    also: more files it writes beside `file`.
    preflight: run before anything is written, to fail fast when a dependency is missing.
    """

    name: str
    file: str
    precision: str
    build: Callable[[Sources, Path], Built]
    option: str
    step: str
    tolerance: str | None
    versus_fp32: bool = False
    has_opset: bool = True
    also: tuple[str, ...] = ()
    preflight: Callable[[], None] | None = None

    def enabled(self, options: VariantOptions) -> bool:
        return bool(getattr(options, self.option))

    def files(self, model: str) -> tuple[str, ...]:
        """Every path it writes, relative to --out, for the Triton model name `model`."""
        return (self.file.format(model=model), *self.also)
