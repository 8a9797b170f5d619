"""edgegan runtime: load and sample `generator.onnx` with numpy + onnxruntime only (never torch).

The core, one job per module:
    contract.py          the generator contract: metadata keys, io_spec() every checker compares against, latent rule
    generator.py         `Generator`: seeds (+ labels) in, uint8 [N, H, W, C] images out
    session.py           model path -> onnxruntime session, its contract read and its signature checked
    latents.py           truncated latents, slerp, and the checks of counts, seeds, truncation and latents
    labels.py            class indices or names -> int64 labels, checked against the contract
    memory.py            refuse up front work that would not fit in the memory available now
    providers.py         provider names, session options, and the check that the provider asked for runs
    tensorrt_backend.py  run a `generator.plan` TensorRT engine (tensorrt imported only when one is opened)
    external_data.py     refuse ONNX external data before onnxruntime opens a model
    images.py            grids, PNG and .npy files; `sample_to_files` behind `edgegan sample`
    files.py             atomic writes, output path and free-space checks, the cache root, file digests
    errors.py            EdgeganError and the user-facing errors of the core
    cli.py               the `edgegan sample` command (thin; imports lazily)

`evaluation/` (datasets, metrics, quality) and `bench/` (the latency harness) are separate sub-packages, torch-free
too; `import edgegan.runtime` loads neither.

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
