"""Class labels (indices or class names) -> int64 label arrays, checked against a model's contract (numpy only)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Union

import numpy as np

from edgegan.runtime.contract import GeneratorContract
from edgegan.runtime.errors import GeneratorInputError

__all__ = ["Label", "parse_labels", "label_slice", "label_index"]

Label = Union[int, str, np.integer]


def parse_labels(contract: GeneratorContract, labels: Any, n: int) -> np.ndarray | None:
    """Checked labels for n images: None (an unconditional model, or the default rule), else int64 [1] (one
    label for all images) or int64 [n].

    Raises:
        GeneratorInputError: labels for an unconditional model, a count other than 1 or n, or a bad label.
    """
    if not contract.conditional:
        if labels is not None:
            raise GeneratorInputError(
                "this generator is unconditional (no classes): labels cannot be used; pass labels=None"
            )
        return None
    if labels is None:
        return None
    if isinstance(labels, np.ndarray):
        items: list[Any] = list(labels.ravel())
    elif isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        items = [labels]  # one label (checked below), used for every image
    else:
        items = list(labels)
    if len(items) not in (1, n):
        raise GeneratorInputError(f"got {len(items)} labels for {n} images; give one label (used for all) or {n}")
    return np.array([label_index(contract, item) for item in items], dtype=np.int64)


def label_slice(contract: GeneratorContract, index: np.ndarray | None, start: int, stop: int) -> np.ndarray | None:
    """int64 [stop - start] labels of images start..stop-1 from `parse_labels`' answer, without making all n."""
    if not contract.conditional:
        return None
    if index is None:  # the contract's default, arange(n) % num_classes, one slice of it
        return (np.arange(start, stop) % contract.num_classes).astype(np.int64)
    if len(index) == 1:
        return np.full(stop - start, index[0], dtype=np.int64)
    return index[start:stop]


def label_index(contract: GeneratorContract, label: Any) -> int:
    """One label as a class index in [0, num_classes): an int, or a class name (case-insensitive) or its digits."""
    k = contract.num_classes
    if isinstance(label, str):
        wanted = label.strip().casefold()
        for i, name in enumerate(contract.class_names):
            if name.casefold() == wanted:
                return i
        try:
            label_int = int(wanted)
        except ValueError:
            names = ", ".join(contract.class_names) or f"none stored; use an index 0..{k - 1}"
            raise GeneratorInputError(f"unknown class name {label!r}; classes are: {names}") from None
        return label_index(contract, label_int)
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        raise GeneratorInputError(f"a label is an int index or a class name, got {label!r}")
    if not 0 <= label < k:
        raise GeneratorInputError(f"label {int(label)} is out of range: this generator has classes 0..{k - 1}")
    return int(label)
