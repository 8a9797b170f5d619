"""Small ONNX models written as protobuf bytes by hand: the runtime builds them without the onnx package.

onnx is an export dependency, not a runtime one (pyproject), yet the runtime needs two tiny graphs of its own: the
bench's peak matrix product (runtime/bench/runners.py) and the uint8 pixel tail that runs on the device after a
float generator (runtime/io_binding.py), so a CUDA caller copies uint8 NHWC back instead of float NCHW (4x fewer
bytes). Only the protobuf fields those graphs use are written; field numbers are onnx.proto's (IR version 8).
"""

from __future__ import annotations

import numpy as np

#: onnx TensorProto.DataType codes of the types these graphs use.
FLOAT, UINT8, INT8, INT32 = 1, 2, 3, 6
#: Name of the batch dimension of the models written here (the contract's BATCH_AXIS).
BATCH = "batch"


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes | int | str) -> bytes:
    """One protobuf field: varint (wire type 0) for ints, length-delimited (2) for bytes/str."""
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def value_info(name: str, elem_type: int, dims: list[int | str]) -> bytes:
    """ValueInfoProto{name, type{tensor_type{elem_type, shape{dim{dim_value | dim_param}}}}}."""
    shape = b"".join(field(1, field(1, d) if isinstance(d, int) else field(2, d)) for d in dims)
    tensor = field(1, elem_type) + field(2, shape)
    return field(1, name) + field(2, field(1, tensor))


def scalar(name: str, value: float) -> bytes:
    """TensorProto of one float32 scalar: data_type FLOAT, raw_data little-endian, no dims."""
    return field(2, FLOAT) + field(8, name) + field(9, np.float32(value).tobytes())


def node(op: str, inputs: list[str], outputs: list[str], name: str, **attrs: int | list[int]) -> bytes:
    """NodeProto with int (AttributeProto type INT=2) or ints (INTS=7) attributes."""
    body = b"".join(field(1, i) for i in inputs) + b"".join(field(2, o) for o in outputs)
    body += field(3, name) + field(4, op)
    for key, value in attrs.items():
        if isinstance(value, int):
            body += field(5, field(1, key) + field(3, value) + field(20, 2))
        else:
            body += field(5, field(1, key) + b"".join(field(8, v) for v in value) + field(20, 7))
    return body


def model(
    nodes: list[bytes], inputs: list[bytes], outputs: list[bytes], initializers: list[bytes], name: str, opset: int
) -> bytes:
    """ModelProto{ir_version 8, opset_import{"" opset}, graph{node, name, initializer, input, output}}."""
    graph = b"".join(field(1, n) for n in nodes) + field(2, name)
    graph += b"".join(field(5, t) for t in initializers)
    graph += b"".join(field(11, v) for v in inputs) + b"".join(field(12, v) for v in outputs)
    return field(1, 8) + field(7, graph) + field(8, field(1, "") + field(2, opset))


def pixel_tail_model(channels: int, height: int, width: int) -> bytes:
    """float "x" [batch, C, H, W] in [-1, 1] -> uint8 "pixels" [batch, H, W, C]: the contract's to_uint8_nhwc
    (round((x + 1) * 127.5) half-to-even, clipped to [0, 255]) as the same nodes export/onnx.py's uint8 tail uses,
    so a device computes exactly the pixels numpy does."""
    nodes = [
        node("Add", ["x", "one"], ["shifted"], "add"),  # [B, C, H, W] in [0, 2]
        node("Mul", ["shifted", "half_range"], ["scaled"], "mul"),  # [0, 255]
        node("Round", ["scaled"], ["rounded"], "round"),
        node("Clip", ["rounded", "lo", "hi"], ["clipped"], "clip"),
        node("Cast", ["clipped"], ["nchw"], "cast", to=UINT8),
        node("Transpose", ["nchw"], ["pixels"], "nhwc", perm=[0, 2, 3, 1]),  # [B, H, W, C]
    ]
    inits = [scalar("one", 1.0), scalar("half_range", 127.5), scalar("lo", 0.0), scalar("hi", 255.0)]
    return model(
        nodes,
        [value_info("x", FLOAT, [BATCH, channels, height, width])],
        [value_info("pixels", UINT8, [BATCH, height, width, channels])],
        inits,
        "edgegan_pixel_tail",
        13,
    )


def matmul_model(n: int) -> bytes:
    """C = MatMul(A [n, n], B [n, n]) in float32: the bench's peak (opset 17)."""
    return model(
        [node("MatMul", ["A", "B"], ["C"], "matmul")],
        [value_info("A", FLOAT, [n, n]), value_info("B", FLOAT, [n, n])],
        [value_info("C", FLOAT, [n, n])],
        [],
        "peak",
        17,
    )
