"""Refuse ONNX external data before onnxruntime opens a model (pure Python: no onnx, no protobuf package).

A TensorProto may keep its bytes in another file (`external_data` with a `location`, `data_location` EXTERNAL),
and onnxruntime reads that file at session creation. Releases before 1.27 follow `../../etc/passwd`, absolute
paths and symlinks out of the model's folder, and none refuses a hard link to a file elsewhere, so a downloaded
model could read any file the process can. `edgegan export` never writes external data, so the runtime refuses
every tensor that has any, whatever onnxruntime is installed: `check_model_file` walks the protobuf wire format
down to every tensor a model can hold (initializers, sparse initializers, Constant and attribute tensors,
subgraphs of If/Loop/Scan, functions, training graphs) and raises before the file is handed on.

Which parser onnxruntime uses is decided as onnxruntime decides it, never from the bytes: for a path, the session
config "session.load_model_format" when set, else the file NAME (a name ending ".ort", any case, is ORT format;
everything else is protobuf). A protobuf .onnx whose bytes 4-8 read "ORTM" (the ORT-format tag; `producer_name`
= "ORTM" puts it there) is still parsed as protobuf by onnxruntime, so it is scanned like any other .onnx. Only
files onnxruntime parses as ORT format (a flatbuffer whose initializers are inline and name no file) skip the scan.
"""

from __future__ import annotations

import mmap
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgegan.runtime.errors import ModelFileError

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["ExternalDataError", "ExternalTensor", "parsed_as_ort_format", "find_external_data", "check_model_file"]

_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_MAX_DEPTH = 100  # protobuf's own default recursion limit

# message -> {field number: message type of that field}, only the fields that can lead to a TensorProto
# (onnx.proto: ModelProto.graph 7, .training_info 20, .functions 25; GraphProto.node 1, .initializer 5,
# .sparse_initializer 15; NodeProto.attribute 5; AttributeProto.t 5, .g 6, .tensors 10, .graphs 11,
# .sparse_tensor 22, .sparse_tensors 23; FunctionProto.node 7, .attribute_proto 11; TrainingInfoProto
# .initialization 1, .algorithm 2; SparseTensorProto.values 1, .indices 2).
_SCHEMA: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "function": {7: "node", 11: "attribute"},
    "training": {1: "graph", 2: "graph"},
    "sparse": {1: "tensor", 2: "tensor"},
}
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14  # TensorProto.name, .external_data, .data_location


class ExternalDataError(ModelFileError):
    """A model keeps tensor bytes in another file, or its protobuf cannot be read."""


@dataclass
class ExternalTensor:
    """A tensor that names an external file: its name and the `location` it gives ("" when none)."""

    name: str
    location: str


class _Malformed(Exception):
    def __init__(self, pos: int):
        super().__init__(pos)
        self.pos = pos


def _varint(buf: mmap.mmap | bytes, pos: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed(pos)
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: mmap.mmap | bytes, start: int, end: int):
    """Yield (field number, wire type, value) of one message; value is an int (varint) or a (start, end) span."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed(pos)
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise _Malformed(pos)
            yield number, wire, (pos, pos + length)
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:  # groups (3, 4) are not in onnx.proto; anything else is not protobuf
            raise _Malformed(pos)
    if pos != end:
        raise _Malformed(end)


def _text(buf: mmap.mmap | bytes, span: tuple[int, int]) -> str:
    return bytes(buf[span[0] : span[1]]).decode("utf-8", "replace")


def _tensor(buf: mmap.mmap | bytes, start: int, end: int) -> ExternalTensor | None:
    name, location, external = "", "", False
    for number, wire, value in _fields(buf, start, end):
        if number == _TENSOR_NAME and wire == 2:
            name = _text(buf, value)
        elif number == _TENSOR_LOCATION and wire == 0:
            external = external or value == _EXTERNAL
        elif number == _TENSOR_EXTERNAL:
            external = True
            if wire == 2:  # StringStringEntryProto{key 1, value 2}
                entry = {n: _text(buf, v) for n, w, v in _fields(buf, *value) if w == 2}
                if entry.get(1) == "location":
                    location = entry.get(2, "")
    return ExternalTensor(name, location) if external else None


def _walk(buf: mmap.mmap | bytes, kind: str, start: int, end: int, depth: int, found: list[ExternalTensor]) -> None:
    if depth > _MAX_DEPTH:
        raise _Malformed(start)
    if kind == "tensor":
        tensor = _tensor(buf, start, end)
        if tensor is not None:
            found.append(tensor)
        return
    children = _SCHEMA[kind]
    for number, wire, value in _fields(buf, start, end):
        child = children.get(number)
        if child is not None and wire == 2:
            _walk(buf, child, value[0], value[1], depth + 1, found)


def _scan(buf: mmap.mmap | bytes) -> list[ExternalTensor]:
    found: list[ExternalTensor] = []
    _walk(buf, "model", 0, len(buf), 0, found)
    return found


_FORMAT_KEY = "session.load_model_format"  # onnxruntime_session_options_config_keys.h: "ORT" or "ONNX"


def parsed_as_ort_format(path: str | os.PathLike, options: ort.SessionOptions | None = None) -> bool:
    """Whether `onnxruntime.InferenceSession(path, options)` parses the file as ORT format rather than protobuf.

    onnxruntime (InferenceSession::Load of a path) takes the session config "session.load_model_format" when it is
    set ("ORT" is ORT format, any other value protobuf), else the file name: a name ending ".ort" in any case
    (fbs::utils::IsOrtFormatModel). It never looks at the bytes of a path (only a model given as bytes is judged
    by its "ORTM" tag), so neither does this.
    """
    explicit = _config_entry(options, _FORMAT_KEY)
    if explicit:
        return explicit == "ORT"
    name = os.fspath(path)
    return len(name) > 4 and name[-4:].lower() == ".ort"


def _config_entry(options: Any, key: str) -> str:
    """A session config entry, "" when unset (onnxruntime's getter raises for a missing key)."""
    if options is None:
        return ""
    try:
        return str(options.get_session_config_entry(key))
    except Exception:  # noqa: BLE001 - RuntimeError "does not have configuration with key", or no such method
        return ""


def find_external_data(path: str | os.PathLike, options: ort.SessionOptions | None = None) -> list[ExternalTensor]:
    """Every tensor in an ONNX file that keeps its bytes outside the file (an empty list for a clean model).

    Args:
        path: an .onnx (protobuf) or .ort (flatbuffer, never holds file names) model.
        options: the SessionOptions onnxruntime will load it with (they may force a format).

    Returns:
        The tensors with external data, in file order; [] for a file onnxruntime reads as ORT format.

    Raises:
        ExternalDataError: a file onnxruntime parses as protobuf is not readable as protobuf (say where).
        OSError: the file cannot be opened.
    """
    if parsed_as_ort_format(path, options):  # a flatbuffer: initializers inline, no file names
        return []
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return []  # an empty ModelProto; onnxruntime says what is wrong with it
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                return _scan(buf)
            except _Malformed as exc:
                raise ExternalDataError(
                    f"onnxruntime cannot load {path} as an ONNX model: the protobuf is malformed at byte {exc.pos} "
                    "(a truncated or corrupt file; export it again)"
                ) from None


def _where(model: Path, location: str) -> str:
    """Why a location is dangerous, in words, for the message: the first reason along the path onnxruntime
    would follow (model folder / location, component by component)."""
    if not location:
        return "with no location"
    parts = location.replace("\\", "/").split("/")
    if os.path.isabs(location) or location.startswith("\\") or (len(location) > 1 and location[1] == ":"):
        return "at an absolute path"
    if ".." in parts:
        return "outside the model's folder (a '..' component)"
    if all(p in (".", "") for p in parts):
        return "at the model's folder itself"
    if "." in parts or "" in parts:
        return "through a '.' or empty path component"
    walked = model.parent
    for part in parts[:-1]:
        walked = walked / part
        if walked.is_symlink():
            return f"through a symlinked folder ({part!r})"
    target = walked / parts[-1]
    if target.is_symlink():
        return "through a symlink"
    try:
        info = target.stat()
    except OSError:
        return "in a missing file"
    if not stat.S_ISREG(info.st_mode):
        return "in something that is not a regular file"
    if info.st_nlink > 1:
        return "through a hard link"
    return "in a separate file"


def check_model_file(path: str | os.PathLike, options: ort.SessionOptions | None = None) -> None:
    """Refuse a model that keeps any tensor in an external file, before onnxruntime reads it.

    `edgegan export` writes every weight inside generator.onnx, so external data is never needed, and refusing
    it all (rather than judging which paths are safe) also closes hard links and races on the folder.

    Args:
        path: the model file, as it will be handed to onnxruntime.
        options: the SessionOptions it will be loaded with (they may force ORT format or protobuf).

    Raises:
        ExternalDataError: one line naming the model, the first such tensor and its location.
    """
    path = Path(path)
    found = find_external_data(path, options)
    if found:
        first = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ExternalDataError(
            f"refusing {path}: tensor {first.name!r} keeps its data {_where(path, first.location)} "
            f"({first.location!r}){more}; edgegan models hold every weight inside the .onnx file (`edgegan export` "
            "never writes external data), so a model that reads another file is not loaded"
        )
