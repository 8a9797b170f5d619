"""The ort variant: generator.onnx in onnxruntime's .ort format, for minimal and mobile builds (generator.ort),
and beside it the operators and types a reduced onnxruntime build needs to run it
(generator.required_operators.config, the input of onnxruntime's `build.sh --include_ops_by_config`)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import onnx

from edgegan.export.onnx import op_counts
from edgegan.export.variants import REDUCED_BUILD_CONFIG
from edgegan.export.variants.variant import Built, Sources, VariantError
from edgegan.runtime.files import atomic_write, file_sha256

BUILD_FLAGS = "--minimal_build --include_ops_by_config {config} --enable_reduced_operator_type_support"


def _config_text(tool_text: str, ort_name: str) -> str:
    """The tool's config with its header (temp-folder paths) replaced by one that names the shipped file."""
    import onnxruntime

    body = [line for line in tool_text.splitlines() if line.strip() and not line.startswith("#")]
    header = [
        f"# Operators and types {ort_name} needs, by onnxruntime {onnxruntime.__version__}'s "
        "convert_onnx_models_to_ort",
        "# (Runtime optimization style: the ops of the saved graph, of its runtime fusions and of the graph without them).",
        f"# Build: ./build.sh --config MinSizeRel {BUILD_FLAGS.format(config='<this file>')}",
    ]
    return "\n".join(header + body) + "\n"


def _ops_in_config(path: Path) -> dict[str, dict[str, list[str]]]:
    """{domain: {opset: [op types]}} of a config, read back with onnxruntime's own parser (what build.sh reads)."""
    from onnxruntime.tools.reduced_build_config_parser import parse_config

    required, _ = parse_config(str(path))
    return {
        domain: {str(opset): sorted(ops) for opset, ops in sorted(opsets.items())}
        for domain, opsets in sorted(required.items())
    }


def convert_to_ort(
    onnx_path: str | os.PathLike, ort_path: str | os.PathLike, config_path: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Convert with onnxruntime's own tool (convert_onnx_models_to_ort, runtime optimization style: basic graph optimizations baked in, the platform-specific ones applied when the .ort is loaded, so the file stays portable to mobile builds).

    Args:
        onnx_path: the .onnx to convert.
        ort_path: where the .ort goes (written in place; the caller's folder is a private temp folder).
        config_path: also write the reduced-build configuration here (operators with their types: the tool's
            type reduction); None: not written.

    Returns:
        {"optimized_onnx": ModelProto of the optimized graph the .ort holds (for operator counts),
         "optimization_style": "Runtime", "required_operators": {domain: {opset: [op types]}} or None}.
    """
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    onnx_path, ort_path = Path(onnx_path), Path(ort_path)
    with tempfile.TemporaryDirectory(dir=ort_path.parent, prefix=".ort-convert-") as work_dir:
        work = Path(work_dir)
        src = work / "model.onnx"
        shutil.copyfile(onnx_path, src)
        chatter = io.StringIO()  # the tool prints each step; keep it for the error message only
        tool_logger = logging.getLogger("ort_format_model.utils")
        level = tool_logger.level
        tool_logger.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                convert_onnx_models_to_ort(
                    src,
                    output_dir=work / "out",
                    optimization_styles=[OptimizationStyle.Runtime],
                    save_optimized_onnx_model=True,
                    allow_conversion_failures=False,
                    enable_type_reduction=config_path is not None,
                )
        except Exception as exc:  # noqa: BLE001 - the tool raises plain exceptions; say which step failed
            raise VariantError(
                f"onnxruntime could not convert {onnx_path.name} to .ort: {exc}\n{chatter.getvalue()[-2000:]}"
            ) from exc
        finally:
            tool_logger.setLevel(level)
        produced = sorted((work / "out").glob("*.ort"))
        if not produced:
            raise VariantError(f"onnxruntime's converter wrote no .ort file for {onnx_path.name}")
        optimized = sorted((work / "out").glob("*.optimized.onnx"))
        optimized_model = onnx.load(optimized[0]) if optimized else None
        required = None
        if config_path is not None:
            configs = sorted((work / "out").glob("*.config"))
            if not configs:
                raise VariantError(f"onnxruntime's converter wrote no operator config for {onnx_path.name}")
            text = _config_text(configs[0].read_text(), ort_path.name)
            atomic_write(config_path, lambda f: f.write(text), binary=False)
            required = _ops_in_config(Path(config_path))
        os.replace(produced[0], ort_path)
    return {"optimized_onnx": optimized_model, "optimization_style": "Runtime", "required_operators": required}


def build(sources: Sources, path: Path) -> Built:
    """generator.onnx converted to .ort at path, with its reduced-build config beside it; the .ort keeps the fp32
    contract and metadata, so nothing is stamped."""
    config = path.with_name(REDUCED_BUILD_CONFIG)
    conversion = convert_to_ort(sources.written["fp32"], path, config_path=config)
    optimized = conversion["optimized_onnx"]
    reduced_build = {
        "config": REDUCED_BUILD_CONFIG,
        "sha256": file_sha256(config),
        "type_reduction": True,
        "operators": conversion["required_operators"],
        "build_flags": BUILD_FLAGS.format(config=REDUCED_BUILD_CONFIG),
    }
    return Built(
        ops=op_counts(optimized) if optimized is not None else None,
        extra={"optimization_style": conversion["optimization_style"], "reduced_build": reduced_build},
    )
