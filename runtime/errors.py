"""One base class for every error a user can cause (bad file, bad option, missing data).

The `edgegan` command turns these into a one-line message and exit status 1; anything else is a bug and keeps
its traceback.
"""
from __future__ import annotations


class EdgeganError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


class ModelFileError(EdgeganError):
    """The model path does not exist, is not a model file, or onnxruntime cannot (or must not) load it."""
