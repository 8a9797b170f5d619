"""PyTorch -> ONNX: BatchNorm folding, interface and metadata of the exported graph, the uint8 tail."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

import edgegan.export.onnx as export_onnx
from edgegan.export.ir_version import cap_ir_version
from edgegan.export.onnx import append_uint8_tail, export_generator, fold_batchnorm, name_batch_axis, op_counts
from edgegan.runtime.contract import OUTPUT_FLOAT_NCHW, default_labels, draw_latents, to_uint8_nhwc
from edgegan.trainer.contract import checkpoint_contract
from edgegan.trainer.sample import load_generator


def _load(ckpt):
    G, cfg, state = load_generator(ckpt)
    return G, checkpoint_contract(cfg, state, ema=True, output=OUTPUT_FLOAT_NCHW)


def _torch_images(G, contract, n, seed=0):
    z = draw_latents(n, contract.nz, seed)
    labels = default_labels(n, contract.num_classes) if contract.conditional else None
    with torch.no_grad():
        out = G(torch.from_numpy(z), None if labels is None else torch.from_numpy(labels)).numpy()
    return z, labels, out


def _ort(model: onnx.ModelProto, z, labels):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {"z": z} if labels is None else {"z": z, "label": labels}
    return session.run(None, feeds)[0]


@pytest.mark.parametrize(
    "fixture, expected_bn",
    [
        ("dcgan_cond_ckpt", 2),
        ("dcgan_ckpt", 2),
        ("mlp_cond_ckpt", 3),
        ("mlp_ckpt", 3),
        ("rgb32_ckpt", 3),
    ],
)
def test_fold_batchnorm_is_exact_and_removes_every_batchnorm(request, fixture, expected_bn):
    """Every tiny G of conftest.py; mlp_cond's BatchNorms are the affine-free norms of ConditionalBatchNorm."""
    G, contract = _load(request.getfixturevalue(fixture))
    folded, count = fold_batchnorm(G)
    assert count == expected_bn
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in folded.modules())
    assert any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in G.modules())  # G untouched
    z, labels, ref = _torch_images(G, contract, 17)
    with torch.no_grad():
        out = folded(torch.from_numpy(z), None if labels is None else torch.from_numpy(labels)).numpy()
    assert np.abs(out - ref).max() <= 1e-5
    assert np.abs(ref).max() > 0.5  # the test model produces a real range of values, not ~0


def test_fold_batchnorm_folds_conv2d_and_skips_what_it_cannot():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),  # folds
        torch.nn.ConvTranspose2d(4, 4, 4, 2, 1, groups=2),
        torch.nn.BatchNorm2d(4),  # grouped: stays
        torch.nn.ReLU(),
        torch.nn.BatchNorm2d(4, track_running_stats=False),  # not after a layer, batch stats
    )
    for _ in range(3):  # train-mode forwards: running statistics away from 0/1
        net(torch.randn(8, 3, 9, 9) * 2 + 0.5)
    folded, count = fold_batchnorm(net)
    assert count == 1
    assert [type(m).__name__ for m in folded] == [
        "Conv2d",
        "Identity",
        "ConvTranspose2d",
        "BatchNorm2d",
        "ReLU",
        "BatchNorm2d",
    ]
    x = torch.randn(5, 3, 9, 9)
    with torch.no_grad():
        assert (folded(x) - net.eval()(x)).abs().max() <= 1e-5


@pytest.mark.parametrize("fixture", ["dcgan_cond_ckpt", "dcgan_ckpt", "mlp_cond_ckpt"])  # MLP uncond: test_pipeline
def test_export_interface_metadata_and_values(request, fixture):
    G, contract = _load(request.getfixturevalue(fixture))
    model, info = export_generator(G, contract, opset=18)
    assert info.exporter == "dynamo" and info.opset == 18 and info.fallback_reason is None
    inputs = {v.name: v for v in model.graph.input}
    assert list(inputs) == (["z", "label"] if contract.conditional else ["z"])
    z_type = inputs["z"].type.tensor_type
    assert z_type.elem_type == TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in z_type.shape.dim] == ["batch", contract.nz]
    if contract.conditional:
        label_type = inputs["label"].type.tensor_type
        assert label_type.elem_type == TensorProto.INT64
        assert [d.dim_param for d in label_type.shape.dim] == ["batch"]
    (out,) = model.graph.output
    assert out.name == "image" and out.type.tensor_type.elem_type == TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 1, 28, 28]
    assert {p.key: p.value for p in model.metadata_props} == contract.to_metadata()
    assert "BatchNormalization" not in op_counts(model)
    onnx.checker.check_model(model, full_check=True)
    for n in (1, 5):  # batch sizes other than the traced one (2)
        z, labels, ref = _torch_images(G, contract, n, seed=n)
        assert np.abs(_ort(model, z, labels) - ref).max() <= 1e-4


def test_torchscript_exporter_is_the_fallback_and_is_reported(dcgan_cond_ckpt, monkeypatch):
    G, contract = _load(dcgan_cond_ckpt)

    def broken(*args, **kwargs):
        raise RuntimeError("dynamo exporter unavailable in this test")

    monkeypatch.setattr(export_onnx, "_export_dynamo", broken)
    model, info = export_generator(G, contract, opset=18)
    assert info.exporter == "torchscript"
    assert "dynamo exporter unavailable" in info.fallback_reason
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    z, labels, ref = _torch_images(G, contract, 3)
    assert np.abs(_ort(model, z, labels) - ref).max() <= 1e-4


def test_opset_is_honoured(dcgan_ckpt):
    G, contract = _load(dcgan_ckpt)
    model, info = export_generator(G, contract, opset=17)
    assert info.opset == 17
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]


def _identity_model(batch_dim) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch_dim, 4])
    y = helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch_dim, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["z"], ["image"])], "g", [x], [y])
    return cap_ir_version(helper.make_model(graph))


def test_name_batch_axis_renames_and_reports_fixed_batches():
    model = _identity_model("s0")
    assert name_batch_axis(model) == []
    assert [v.type.tensor_type.shape.dim[0].dim_param for v in [*model.graph.input, *model.graph.output]] == [
        "batch"
    ] * 2
    fixed = _identity_model(2)
    problems = name_batch_axis(fixed)
    assert len(problems) == 2 and "fixed batch size 2" in problems[0]


@pytest.mark.parametrize("fixture", ["dcgan_cond_ckpt", "rgb32_ckpt"])
def test_uint8_tail_is_the_contract_formula(request, fixture):
    G, contract = _load(request.getfixturevalue(fixture))
    model, _ = export_generator(G, contract)
    z, labels, ref = _torch_images(G, contract, 17)
    float_out = _ort(model, z, labels)
    tailed = append_uint8_tail(onnx.ModelProto.FromString(model.SerializeToString()))
    onnx.checker.check_model(tailed, full_check=True)
    (out,) = tailed.graph.output
    c, h, w = contract.image_shape_nchw
    assert out.type.tensor_type.elem_type == TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", h, w, c]
    pixels = _ort(tailed, z, labels)
    assert pixels.dtype == np.uint8 and pixels.shape == (17, h, w, c)
    # Same float input -> bit-identical to edgegan.runtime.contract.to_uint8_nhwc.
    np.testing.assert_array_equal(pixels, to_uint8_nhwc(float_out))
    # Against PyTorch: at most one level, and only where PyTorch's value sits within float error of a .5.
    expected = to_uint8_nhwc(ref)
    diff = np.abs(pixels.astype(int) - expected.astype(int))
    assert diff.max() <= 1
    scaled = ((ref.astype(np.float32) + 1) * 127.5).transpose(0, 2, 3, 1)
    assert np.all(np.abs(scaled[diff > 0] % 1 - 0.5) < 0.01)
    assert pixels.min() < 40 and pixels.max() > 215  # both ends of the range are exercised
