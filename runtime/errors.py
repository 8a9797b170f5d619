"""User-facing errors of the runtime core: the EdgeganError base, bad model files, bad Generator arguments.

The `edgegan` command turns these into a one-line message and exit status 1; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


def install_hint(extra: str) -> str:
    """How to add an optional part: the index spelling, and the checkout spelling while edgegan is not on PyPI."""
    return f"pip install 'edgegan[{extra}]' (from a checkout: pip install '.[{extra}]')"


class EdgeganError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


class ModelFileError(EdgeganError):
    """The model path does not exist, is not a model file, or onnxruntime cannot (or must not) load it."""


class GeneratorInputError(EdgeganError, ValueError):
    """A bad argument to a Generator: image count, seed, labels, latents or truncation."""


class MemoryLimitError(GeneratorInputError):
    """More images asked for at once than the memory available now holds."""
