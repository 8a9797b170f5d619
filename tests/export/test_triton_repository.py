"""Triton model repository: config.pbtxt parsed with Triton's own ModelConfig protobuf (tritonclient) and
checked field by field against the ONNX model it serves."""

from __future__ import annotations

import onnx
import pytest
from google.protobuf import text_format

from edgegan.export.triton_repository import config_text, load_model_config_pb2, model_name
from edgegan.runtime.contract import GeneratorContract

ONNX_TO_TRITON = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
}


@pytest.fixture(scope="module")
def pb2():
    module = load_model_config_pb2()
    if module is None:
        pytest.skip("tritonclient (Triton's model_config protobuf) is not installed: pip install tritonclient")
    return module


def _check_against_model(config, model: onnx.ModelProto, pb2) -> None:
    """Every input/output of the ONNX graph appears in the config with Triton's type and its dims minus batch."""
    inits = {i.name for i in model.graph.initializer}
    graph_inputs = [v for v in model.graph.input if v.name not in inits]
    assert [i.name for i in config.input] == [v.name for v in graph_inputs]
    assert [o.name for o in config.output] == [v.name for v in model.graph.output]
    for entry, value in [*zip(config.input, graph_inputs), *zip(config.output, model.graph.output)]:
        tensor = value.type.tensor_type
        assert pb2.DataType.Name(entry.data_type) == ONNX_TO_TRITON[tensor.elem_type]
        assert tensor.shape.dim[0].dim_param == "batch"  # Triton owns the batch axis...
        rest = [d.dim_value for d in tensor.shape.dim[1:]]
        if rest:  # ...and dims lists the rest
            assert list(entry.dims) == rest and not entry.HasField("reshape")
        else:  # a per-item scalar ("label" [batch]): dims [1] reshaped to [] for the model
            assert list(entry.dims) == [1]
            assert entry.HasField("reshape") and list(entry.reshape.shape) == []


def test_conditional_float_repository(full_export, pb2):
    out, report = full_export
    folder = out / "triton" / "edgegan_fashion"
    assert sorted(p.name for p in folder.iterdir()) == ["1", "config.pbtxt"]
    model_bytes = (folder / "1" / "model.onnx").read_bytes()
    assert model_bytes == (out / "generator.onnx").read_bytes()
    config = text_format.Parse((folder / "config.pbtxt").read_text(), pb2.ModelConfig())
    assert config.name == "edgegan_fashion" == folder.name
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 64 == report["options"]["trt_batch"][2]
    assert config.HasField("dynamic_batching")
    assert config.dynamic_batching.max_queue_delay_microseconds > 0
    _check_against_model(config, onnx.load_from_string(model_bytes), pb2)
    assert [c["name"] for c in report["variants"]["triton"]["checks"]] == ["model_file", "config_parses"]


def test_uint8_unconditional_repository(uint8_export, pb2):
    out, _ = uint8_export
    folder = out / "triton" / "edgegan_rgb_pixels"  # "rgb.pixels": '.' is not kept in a Triton model name
    config = text_format.Parse((folder / "config.pbtxt").read_text(), pb2.ModelConfig())
    assert config.name == "edgegan_rgb_pixels"
    assert [i.name for i in config.input] == ["z"]
    assert pb2.DataType.Name(config.output[0].data_type) == "TYPE_UINT8"
    assert list(config.output[0].dims) == [32, 32, 3]
    _check_against_model(config, onnx.load(folder / "1" / "model.onnx"), pb2)


def test_config_text_follows_max_batch_size(pb2):
    contract = GeneratorContract(arch="dcgan", nz=8, num_classes=0, channels=1, height=28, width=28)
    config = text_format.Parse(config_text("edgegan_x", contract, 7), pb2.ModelConfig())
    assert config.max_batch_size == 7 and list(config.input[0].dims) == [8]
    assert model_name("/tmp/some dir/my model") == "edgegan_my_model"
