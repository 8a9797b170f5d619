"""edgegan runtime: load and sample `generator.onnx` with numpy + onnxruntime only (never torch).

Example:
    >>> from edgegan.runtime import Generator
    >>> images = Generator("models/fm/generator.onnx").sample(16, seed=0)   # uint8 [16, H, W, C]
"""
from __future__ import annotations

import importlib

# Lazy re-exports: `import edgegan.runtime` (and `edgegan --help`) import neither numpy nor onnxruntime.
_EXPORTS = {
    "Generator": "edgegan.runtime.generator",
    "ContractError": "edgegan.runtime.contract",
    "GeneratorContract": "edgegan.runtime.contract",
    "draw_latents": "edgegan.runtime.contract",
    "default_labels": "edgegan.runtime.contract",
    "EdgeganError": "edgegan.runtime.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'edgegan.runtime' has no attribute {name!r}")
