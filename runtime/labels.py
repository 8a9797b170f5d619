"""Class labels (indices or class names) -> int64 label arrays, checked against a model's contract (numpy only);
and the model's own label tables checked against the class count its metadata declares."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from edgegan.runtime.contract import INPUT_LABEL, ContractError, GeneratorContract
from edgegan.runtime.errors import GeneratorInputError

__all__ = ["Label", "parse_labels", "label_slice", "label_index", "label_tables", "check_label_tables"]

Label = int | str | np.integer


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


# onnx.proto field numbers: ModelProto.graph 7; GraphProto.node 1, .initializer 5; NodeProto.input 1, .output 2,
# .op_type 4; TensorProto.dims 1, .name 8.
_PASS_THROUGH = {"Cast", "DequantizeLinear", "Identity"}  # fp16 and int8 forms: the table reaches Gather through these


def label_tables(path: str | os.PathLike) -> list[tuple[str, int]]:
    """(initializer name, rows) of every table the graph indexes by its `label` input: Gather(table, label) whose
    table is an initializer, directly or through a Cast / DequantizeLinear (fp16 and int8 forms). Read from the
    protobuf's wire format (runtime/external_data.py's reader), no onnx import. [] when there are none or the
    file is not protobuf (an .ort flatbuffer)."""
    from edgegan.runtime.external_data import _fields, _Malformed, _text, _varint

    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return []
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                graphs = [v for n, w, v in _fields(buf, 0, len(buf)) if n == 7 and w == 2]
                nodes: list[tuple[str, list[str], list[str]]] = []  # (op_type, inputs, outputs)
                rows: dict[str, int] = {}  # initializer name -> dims[0]
                for start, end in graphs:
                    for number, wire, value in _fields(buf, start, end):
                        if wire != 2:
                            continue
                        if number == 1:
                            fields = [(n, w, v) for n, w, v in _fields(buf, *value)]
                            op = next((_text(buf, v) for n, w, v in fields if n == 4 and w == 2), "")
                            ins = [_text(buf, v) for n, w, v in fields if n == 1 and w == 2]
                            outs = [_text(buf, v) for n, w, v in fields if n == 2 and w == 2]
                            nodes.append((op, ins, outs))
                        elif number == 5:
                            name, dims = "", []
                            for n, w, v in _fields(buf, *value):
                                if n == 8 and w == 2:
                                    name = _text(buf, v)
                                elif n == 1 and w == 0:
                                    dims.append(v)
                                elif n == 1 and w == 2:  # packed dims
                                    pos, stop = v
                                    while pos < stop:
                                        d, pos = _varint(buf, pos, stop)
                                        dims.append(d)
                            if dims:
                                rows[name] = dims[0]
            except _Malformed:
                return []  # an .ort flatbuffer, or a file onnxruntime will refuse with its own message
    producer = {out: (op, ins) for op, ins, outs in nodes for out in outs}
    found = []
    for op, ins, _ in nodes:
        if op != "Gather" or len(ins) < 2 or ins[1] != INPUT_LABEL:
            continue
        table = ins[0]
        for _ in range(8):  # a short chain of Casts / DequantizeLinears at most
            if table in rows or table not in producer or producer[table][0] not in _PASS_THROUGH:
                break
            table = producer[table][1][0]
        if table in rows:
            found.append((table, rows[table]))
    return found


def check_label_tables(path: str | os.PathLike, contract: GeneratorContract) -> None:
    """Refuse a conditional model whose label tables do not hold one row per class its metadata declares: a
    label beyond the table would end in onnxruntime's Gather error (or, on a GPU, silent garbage).

    Raises:
        ContractError: one line naming the first table, its rows and edgegan.num_classes.
    """
    if not contract.conditional:
        return
    wrong = [(name, rows) for name, rows in label_tables(path) if rows != contract.num_classes]
    if wrong:
        name, rows = wrong[0]
        raise ContractError(
            f"{path}: edgegan.num_classes says {contract.num_classes} classes, but its label table {name!r} holds "
            f"{rows} rows; the metadata does not match the graph: export it again"
        )
