"""ONNX "image bank" generators for the mode-collapse tests: z picks one of M real images of the asked-for class.

M = 1 is a generator that ignores z (every image of a class is the same image, with the right label: the collapse
issue 9 reported); M = 100 draws real images, as varied as the data. Built with onnx.helper, no torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgegan.runtime.contract import GeneratorContract
from tests.quality_helpers import CLASS_NAMES, SIZE, shapes

NZ = 4


def build_bank_generator(path: Path, images: np.ndarray, num_classes: int) -> Path:
    """A contract generator whose image for (z, label) is images[label * M + floor(|z_0| * 1000) mod M].

    Args:
        images: uint8 [K * M, 16, 16] grey images, class-major (conditional) or in any order (num_classes = 0).
    """
    m = len(images) // max(num_classes, 1)
    pixels = images.reshape(len(images), -1).astype(np.float32) / 127.5 - 1.0  # [K*M, H*W] in [-1, 1]
    inits = [
        numpy_helper.from_array(pixels, "bank"),
        numpy_helper.from_array(np.array([0], np.int64), "first"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array(1000.0, np.float32), "scale"),
        numpy_helper.from_array(np.array(m, np.int64), "m"),
        numpy_helper.from_array(np.array([-1, 1, SIZE, SIZE], np.int64), "shape"),
    ]
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", NZ])]
    nodes = [
        helper.make_node("Gather", ["z", "first"], ["z0"], axis=1),  # [batch, 1]
        helper.make_node("Squeeze", ["z0", "axis1"], ["z0s"]),  # [batch]
        helper.make_node("Abs", ["z0s"], ["a"]),
        helper.make_node("Mul", ["a", "scale"], ["b"]),
        helper.make_node("Floor", ["b"], ["c"]),
        helper.make_node("Cast", ["c"], ["ci"], to=TensorProto.INT64),
        helper.make_node("Mod", ["ci", "m"], ["within"]),  # [batch] in [0, M)
    ]
    index = "within"
    if num_classes:
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]))
        nodes += [
            helper.make_node("Mul", ["label", "m"], ["offset"]),
            helper.make_node("Add", ["offset", "within"], ["idx"]),
        ]
        index = "idx"
    nodes += [
        helper.make_node("Gather", ["bank", index], ["flat"], axis=0),
        helper.make_node("Reshape", ["flat", "shape"], ["image"]),
    ]
    out = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, SIZE, SIZE])
    model = helper.make_model(
        helper.make_graph(nodes, "bank", inputs, [out], inits),
        opset_imports=[helper.make_opsetid("", 18)],
        ir_version=9,
    )
    contract = GeneratorContract(
        arch="bank",
        nz=NZ,
        num_classes=num_classes,
        channels=1,
        height=SIZE,
        width=SIZE,
        class_names=CLASS_NAMES[:num_classes] if num_classes else [],
        output="float_nchw",
        precision="fp32",
        dataset="npz",
        train={"step": 0},
    )
    helper.set_model_props(model, contract.to_metadata())
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def bank(per_class: int, seed: int = 7) -> np.ndarray:
    """Class-major real shapes [3 * per_class, 16, 16] (a training-like sample the evaluator never saw)."""
    images, labels = shapes(3 * max(per_class, 2) * 2, seed)
    return np.concatenate([images[labels == k][:per_class] for k in range(3)])
