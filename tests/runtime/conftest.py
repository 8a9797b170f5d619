"""Tiny edgegan-contract ONNX generators built with onnx.helper (no torch), for the runtime tests.

The "generator" is z [batch, nz] (+ Gather(embedding, label) added to z) -> MatMul -> Add -> Tanh -> Reshape
[batch, C, H, W]; the uint8 form appends the contract's pixel formula and a transpose to NHWC; fp16 and int8
forms mirror what export writes (fp16 weights between float32 casts; QDQ weights).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgegan.runtime.contract import GeneratorContract

OPSET = 18
CLASS_NAMES = ["T-shirt", "Trouser", "Pullover"]


def build_generator_onnx(
    path: Path,
    nz: int = 8,
    channels: int = 1,
    height: int = 4,
    width: int = 5,
    num_classes: int = 0,
    output: str = "float_nchw",
    precision: str = "fp32",
    class_names: list[str] | None = None,
    metadata: dict[str, str | None] | None = None,
    z_name: str = "z",
    batch: str | int = "batch",
    seed: int = 0,
) -> Path:
    """Write a contract-following generator; `metadata` overrides keys (None deletes one)."""
    rng = np.random.default_rng(seed)
    pixels = channels * height * width
    weight = (rng.standard_normal((nz, pixels)) * 1.5 / np.sqrt(nz)).astype(np.float32)  # [nz, C*H*W]
    bias = (rng.standard_normal(pixels) * 0.1).astype(np.float32)
    inits = [
        numpy_helper.from_array(bias, "b"),
        numpy_helper.from_array(np.array([-1, channels, height, width], np.int64), "shape"),
    ]
    inputs = [helper.make_tensor_value_info(z_name, TensorProto.FLOAT, [batch, nz])]
    nodes = []
    h = z_name
    if num_classes:
        embed = rng.standard_normal((num_classes, nz)).astype(np.float32)  # [K, nz]
        inits.append(numpy_helper.from_array(embed, "embed"))
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, [batch]))
        nodes += [
            helper.make_node("Gather", ["embed", "label"], ["e"], axis=0),
            helper.make_node("Add", [h, "e"], ["h0"]),
        ]
        h = "h0"
    if precision == "fp16":
        inits[0] = numpy_helper.from_array(bias.astype(np.float16), "b")
        inits.append(numpy_helper.from_array(weight.astype(np.float16), "W"))
        nodes += [
            helper.make_node("Cast", [h], ["h16"], to=TensorProto.FLOAT16),
            helper.make_node("MatMul", ["h16", "W"], ["m16"]),
            helper.make_node("Add", ["m16", "b"], ["a16"]),
            helper.make_node("Tanh", ["a16"], ["t16"]),
            helper.make_node("Cast", ["t16"], ["t"], to=TensorProto.FLOAT),
        ]
    else:
        if precision == "int8":
            scale = np.float32(np.abs(weight).max() / 127)
            q = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
            inits += [
                numpy_helper.from_array(q, "Wq"),
                numpy_helper.from_array(np.array(scale, np.float32), "Ws"),
                numpy_helper.from_array(np.array(0, np.int8), "Wz"),
            ]
            nodes.append(helper.make_node("DequantizeLinear", ["Wq", "Ws", "Wz"], ["W"]))
        else:
            inits.append(numpy_helper.from_array(weight, "W"))
        nodes += [
            helper.make_node("MatMul", [h, "W"], ["m"]),
            helper.make_node("Add", ["m", "b"], ["a"]),
            helper.make_node("Tanh", ["a"], ["t"]),
        ]
    if output == "uint8_nhwc":
        inits += [
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
            numpy_helper.from_array(np.array(127.5, np.float32), "half"),
            numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
            numpy_helper.from_array(np.array(255.0, np.float32), "hi"),
        ]
        nodes += [
            helper.make_node("Add", ["t", "one"], ["p1"]),
            helper.make_node("Mul", ["p1", "half"], ["p2"]),
            helper.make_node("Round", ["p2"], ["p3"]),
            helper.make_node("Clip", ["p3", "lo", "hi"], ["p4"]),
            helper.make_node("Cast", ["p4"], ["p5"], to=TensorProto.UINT8),
            helper.make_node("Reshape", ["p5", "shape"], ["p6"]),
            helper.make_node("Transpose", ["p6"], ["image"], perm=[0, 2, 3, 1]),
        ]
        out = helper.make_tensor_value_info("image", TensorProto.UINT8, [batch, height, width, channels])
    else:
        nodes.append(helper.make_node("Reshape", ["t", "shape"], ["image"]))
        out = helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, channels, height, width])
    graph = helper.make_graph(nodes, "tiny_generator", inputs, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=9)
    names = (class_names if class_names is not None else CLASS_NAMES[:num_classes]) if num_classes else []
    contract = GeneratorContract(
        arch="tiny",
        nz=nz,
        num_classes=num_classes,
        channels=channels,
        height=height,
        width=width,
        class_names=names,
        output=output,
        precision=precision,
        dataset="test",
        train={"step": 0},
    )
    props = contract.to_metadata()
    for key, value in (metadata or {}).items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def make_model(tmp_path_factory) -> Callable[..., Path]:
    """Factory: make_model(name, **build_generator_onnx kwargs) -> path to a fresh model file."""
    root = tmp_path_factory.mktemp("models")

    def make(name: str, **kwargs: Any) -> Path:
        return build_generator_onnx(root / name, **kwargs)

    return make


@pytest.fixture(scope="session")
def float_model(make_model) -> Path:
    return make_model("uncond/generator.onnx")


@pytest.fixture(scope="session")
def cond_model(make_model) -> Path:
    return make_model("cond/generator.onnx", num_classes=3, channels=3)


@pytest.fixture(scope="session")
def uint8_model(make_model) -> Path:
    return make_model("uint8/generator.onnx", num_classes=3, output="uint8_nhwc")


@pytest.fixture
def cache_home(tmp_path, monkeypatch) -> Path:
    """An empty XDG cache (evaluators, reference statistics) per test; its path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"
