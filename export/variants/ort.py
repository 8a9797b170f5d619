"""The ort variant: generator.onnx in onnxruntime's .ort format, for minimal and mobile builds (generator.ort)."""
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
from edgegan.export.variants.variant import Built, Sources, VariantError


def convert_to_ort(onnx_path: str | os.PathLike, ort_path: str | os.PathLike) -> dict[str, Any]:
    """Convert with onnxruntime's own tool (convert_onnx_models_to_ort, runtime optimization style: basic graph optimizations baked in, the platform-specific ones applied when the .ort is loaded, so the file stays portable to mobile builds).

    Args:
        onnx_path: the .onnx to convert.
        ort_path: where the .ort goes (written in place; the caller's folder is a private temp folder).

    Returns:
        {"optimized_onnx": ModelProto of the optimized graph the .ort holds (for operator counts),
         "optimization_style": "Runtime"}.
    """
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    onnx_path, ort_path = Path(onnx_path), Path(ort_path)
    with tempfile.TemporaryDirectory(dir=ort_path.parent, prefix=".ort-convert-") as work:
        work = Path(work)
        src = work / "model.onnx"
        shutil.copyfile(onnx_path, src)
        chatter = io.StringIO()  # the tool prints each step; keep it for the error message only
        tool_logger = logging.getLogger("ort_format_model.utils")
        level = tool_logger.level
        tool_logger.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                convert_onnx_models_to_ort(
                    src, output_dir=work / "out", optimization_styles=[OptimizationStyle.Runtime],
                    save_optimized_onnx_model=True, allow_conversion_failures=False,
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
        os.replace(produced[0], ort_path)
    return {"optimized_onnx": optimized_model, "optimization_style": "Runtime"}


def build(sources: Sources, path: Path) -> Built:
    """generator.onnx converted to .ort at path; it keeps the fp32 contract and metadata, so nothing is stamped."""
    conversion = convert_to_ort(sources.written["fp32"], path)
    optimized = conversion["optimized_onnx"]
    return Built(ops=op_counts(optimized) if optimized is not None else None,
                 extra={"optimization_style": conversion["optimization_style"]})
