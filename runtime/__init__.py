"""edgegan runtime: load and sample `generator.onnx` with numpy + onnxruntime only (never torch)."""
from __future__ import annotations

from runtime.contract import ContractError, GeneratorContract, draw_latents, default_labels

__all__ = ["ContractError", "GeneratorContract", "draw_latents", "default_labels"]


def __getattr__(name: str):
    # Lazy: `import runtime` stays cheap; onnxruntime is imported only when a Generator is built.
    if name == "Generator":
        from runtime.generator import Generator

        return Generator
    raise AttributeError(name)
