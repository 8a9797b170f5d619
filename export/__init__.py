"""edgegan export: checkpoint -> verified generator.onnx (+ fp16, int8, .ort, TensorRT, Triton variants).

Imports torch and onnx; the runtime never imports this package. Entry point: edgegan.export.pipeline.export_checkpoint.
"""

from __future__ import annotations

__all__ = ["export_checkpoint"]


def __getattr__(name: str):
    # Lazy, so `import edgegan.export.verify` does not pull in torch through the pipeline.
    if name == "export_checkpoint":
        from edgegan.export.pipeline import export_checkpoint

        return export_checkpoint
    raise AttributeError(name)
