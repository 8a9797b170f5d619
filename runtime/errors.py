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


def first_line(exc: BaseException) -> str:
    """An exception's first line (onnxruntime's and torch's messages run to many), or its type where it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def exception_summary(exc: BaseException, limit: int = 300) -> str:
    """ "TypeName: first line" of an exception, at most `limit` characters: what a report records of a failure."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:limit]
