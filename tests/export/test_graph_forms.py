"""Exactness of the fp32 graph rewrites in export/graph_forms.py, checked with onnxruntime on random inputs."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edgegan.export import graph_forms as gf
from edgegan.export.ir_version import cap_ir_version
from edgegan.export.onnx import export_generator
from edgegan.runtime.contract import (
    BATCH_AXIS,
    KEY_PRECISION,
    LATENT_RULE_NUMPY,
    OUTPUT_FLOAT_NCHW,
    GeneratorContract,
    default_labels,
    draw_latents,
)
from edgegan.trainer.contract import checkpoint_contract
from edgegan.trainer.sample import load_generator

BATCHES = (1, 3, 17)
TOL = 1e-5


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _convtranspose_model(
    cin: int,
    cout: int,
    h: int,
    w: int,
    *,
    bias: bool,
    act: str | None = None,
    kernel: int = 4,
    stride: int = 2,
    pad: int = 1,
    seed: int = 0,
    **attrs,
) -> onnx.ModelProto:
    """x [batch, cin, h, w] -> ConvTranspose (-> act) -> y, random weights of DCGAN-like scale."""
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((cin, cout, kernel, kernel)) / np.sqrt(cin * 4)).astype(np.float32)
    inits = [numpy_helper.from_array(weight, "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), "b"))
        inputs.append("b")
    nodes = [
        helper.make_node(
            "ConvTranspose",
            inputs,
            ["t" if act else "y"],
            name="ct",
            kernel_shape=[kernel] * 2,
            strides=[stride] * 2,
            pads=[pad] * 4,
            **attrs,
        )
    ]
    if act:
        nodes.append(helper.make_node(act, ["t"], ["y"], name="act"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [BATCH_AXIS, cin, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [BATCH_AXIS, cout, None, None])],
        inits,
    )
    model = cap_ir_version(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    model.metadata_props.add(key="edgegan.test", value="kept")
    return model


def _numpy_convtranspose(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Direct scatter definition of ConvTranspose(k=4, s=2, p=1): y[2i - 1 + ky, 2j - 1 + kx] += x[i, j] w[ky, kx]."""
    n, _, h, wd = x.shape
    full = np.zeros((n, w.shape[1], 2 * h + 2, 2 * wd + 2), np.float64)
    for ky, kx in itertools.product(range(4), repeat=2):
        contrib = np.einsum("nchw,cd->ndhw", x.astype(np.float64), w[:, :, ky, kx].astype(np.float64))
        full[:, :, ky : ky + 2 * h : 2, kx : kx + 2 * wd : 2] += contrib
    return (full[:, :, 1:-1, 1:-1] + b[None, :, None, None]).astype(np.float32)


@pytest.mark.parametrize("form", gf.SUBPIXEL_FORMS)
@pytest.mark.parametrize("layout", gf.LAYOUTS)
@pytest.mark.parametrize(
    "cin,cout,h,w,bias,act",
    [
        (3, 5, 7, 7, True, None),
        (8, 1, 14, 14, False, "Tanh"),
        (16, 4, 4, 6, True, "Relu"),
        (5, 16, 3, 3, False, "Relu"),
    ],
)
def test_subpixel_is_exact(form, layout, cin, cout, h, w, bias, act):
    model = _convtranspose_model(cin, cout, h, w, bias=bias, act=act)
    rewritten = gf.convtranspose_to_subpixel(model, form, layout)
    onnx.checker.check_model(rewritten, full_check=True)
    assert "ConvTranspose" not in {n.op_type for n in rewritten.graph.node}
    for batch in BATCHES:
        x = np.random.default_rng(batch).standard_normal((batch, cin, h, w)).astype(np.float32)
        expected, got = _run(model, {"x": x}), _run(rewritten, {"x": x})
        assert got.shape == expected.shape == (batch, cout, 2 * h, 2 * w)
        assert np.abs(got - expected).max() <= TOL, (form, layout, batch)


def test_subpixel_matches_the_definition_of_convtranspose():
    """Independent of onnxruntime's ConvTranspose: compare with the scatter definition in numpy."""
    model = _convtranspose_model(6, 3, 5, 4, bias=True)
    w = numpy_helper.to_array(model.graph.initializer[0])
    b = numpy_helper.to_array(model.graph.initializer[1])
    x = np.random.default_rng(3).standard_normal((3, 6, 5, 4)).astype(np.float32)
    expected = _numpy_convtranspose(x, w, b)
    for form in ("crop", "phases"):
        got = _run(gf.convtranspose_to_subpixel(model, form), {"x": x})
        assert np.abs(got - expected).max() <= TOL


def test_subpixel_kernels_take_the_right_taps():
    w = np.arange(2 * 3 * 16, dtype=np.float32).reshape(2, 3, 4, 4)
    k = gf.subpixel_kernels(w)
    assert k.shape == (2, 2, 3, 2, 2, 2)
    # Even rows, even cols: taps (3, 3) (x[m-1, n-1]), (3, 1), (1, 3), (1, 1) (x[m, n]); weights transposed.
    assert np.array_equal(k[0, 0, :, :, 0, 0], w[:, :, 3, 3].T)
    assert np.array_equal(k[0, 0, :, :, 1, 1], w[:, :, 1, 1].T)
    # Odd rows, odd cols: taps (2, 2) (x[m, n]) and (0, 0) (x[m+1, n+1]).
    assert np.array_equal(k[1, 1, :, :, 0, 0], w[:, :, 2, 2].T)
    assert np.array_equal(k[1, 1, :, :, 1, 1], w[:, :, 0, 0].T)


def test_activation_fuses_after_the_conv_and_metadata_stays():
    model = _convtranspose_model(4, 8, 5, 5, bias=True, act="Relu")
    rewritten = gf.convtranspose_to_subpixel(model, "crop", "nhwc")
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops[:2] == ["Conv", "Relu"]  # onnxruntime fuses Conv + Relu into one kernel
    assert {p.key: p.value for p in rewritten.metadata_props} == {"edgegan.test": "kept"}
    assert [i.name for i in rewritten.graph.input] == ["x"] and [o.name for o in rewritten.graph.output] == ["y"]


@pytest.mark.parametrize(
    "attrs",
    [
        {"kernel": 3, "stride": 1, "pad": 1},
        {"kernel": 4, "stride": 2, "pad": 1, "output_padding": [1, 1]},
        {"kernel": 4, "stride": 2, "pad": 0},
    ],
)
def test_other_convtransposes_are_left_alone(attrs):
    model = _convtranspose_model(4, 4, 5, 5, bias=False, **attrs)
    rewritten = gf.convtranspose_to_subpixel(model)
    assert [n.op_type for n in rewritten.graph.node] == ["ConvTranspose"]


def test_min_out_channels_keeps_the_image_layer():
    model = _convtranspose_model(8, 1, 6, 6, bias=False, act="Tanh")
    assert [n.op_type for n in gf.convtranspose_to_subpixel(model, min_out_channels=8).graph.node] == [
        "ConvTranspose",
        "Tanh",
    ]


def _first_layer_model(nz: int, cout: int, k: int, *, via_reshape: bool, bias: bool) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rng.standard_normal((nz, cout, k, k)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([-1, nz, 1, 1], np.int64), "shape"),
    ]
    inputs = ["x4", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), "b"))
        inputs.append("b")
    nodes = [
        helper.make_node("ConvTranspose", inputs, ["t"], kernel_shape=[k, k]),
        helper.make_node("Relu", ["t"], ["y"]),
    ]
    if via_reshape:  # the exporter's z.view(B, nz, 1, 1)
        nodes.insert(0, helper.make_node("Reshape", ["z", "shape"], ["x4"]))
        inp = helper.make_tensor_value_info("z", TensorProto.FLOAT, [BATCH_AXIS, nz])
    else:
        nodes[0].input[0] = "z"
        inp = helper.make_tensor_value_info("z", TensorProto.FLOAT, [BATCH_AXIS, nz, 1, 1])
    graph = helper.make_graph(
        nodes, "g", [inp], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [BATCH_AXIS, cout, k, k])], inits
    )
    return cap_ir_version(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))


@pytest.mark.parametrize("via_reshape", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_first_layer_becomes_gemm(via_reshape, bias):
    model = _first_layer_model(10, 6, 4, via_reshape=via_reshape, bias=bias)
    rewritten = gf.hoist_activations(gf.first_layer_to_gemm(model))
    ops = [n.op_type for n in rewritten.graph.node]
    assert "ConvTranspose" not in ops and "Gemm" in ops
    if via_reshape:
        assert ops == ["Gemm", "Relu", "Reshape"]  # reads z directly; Relu fuses into the Gemm
    for batch in BATCHES:
        shape = (batch, 10) if via_reshape else (batch, 10, 1, 1)
        z = np.random.default_rng(batch).standard_normal(shape).astype(np.float32)
        expected, got = _run(model, {"z": z}), _run(rewritten, {"z": z})
        assert got.shape == (batch, 6, 4, 4)
        assert np.abs(got - expected).max() <= TOL * 10  # sums of 10 O(1) products


def test_batchnorm_is_left_to_the_torch_side():
    """export/onnx.py folds BatchNorm in PyTorch; a BatchNormalization still in the graph stays, and stays exact."""
    model = _convtranspose_model(4, 6, 5, 5, bias=True)
    rng = np.random.default_rng(5)
    params = [rng.uniform(0.5, 1.5, 6), rng.uniform(-0.3, 0.3, 6), rng.uniform(-0.5, 0.5, 6), rng.uniform(0.3, 2.0, 6)]
    for name, value in zip(("g", "be", "m", "v"), params):
        model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
    model.graph.node[0].output[0] = "t"
    model.graph.node.append(helper.make_node("BatchNormalization", ["t", "g", "be", "m", "v"], ["y"], epsilon=1e-3))
    rewritten = gf.to_subpixel(model, min_out_channels=1)
    ops = [n.op_type for n in rewritten.graph.node]
    assert "ConvTranspose" not in ops and ops[-1] == "BatchNormalization"
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 5)).astype(np.float32)
    assert np.abs(_run(rewritten, {"x": x}) - _run(model, {"x": x})).max() <= TOL


# --------------------------------------------------------------------------- whole generators from the exporter
def _exported(ckpt) -> tuple[onnx.ModelProto, torch.nn.Module, GeneratorContract]:
    G, cfg, state = load_generator(ckpt)
    contract = checkpoint_contract(cfg, state, ema=True, output=OUTPUT_FLOAT_NCHW)
    model, _ = export_generator(G, contract)
    return model, G, contract


@pytest.fixture(scope="module")
def exported_models(dcgan_cond_ckpt, rgb32_ckpt):
    return {"dcgan28_cond": _exported(dcgan_cond_ckpt), "dcgan32_rgb": _exported(rgb32_ckpt)}


@pytest.mark.parametrize("name", ["dcgan28_cond", "dcgan32_rgb"])
@pytest.mark.parametrize("rewrite", ["optimize_fp32", "to_subpixel"])
def test_whole_generator_is_exact_and_keeps_the_contract(exported_models, name, rewrite):
    model, G, contract = exported_models[name]
    fast = gf.optimize_fp32(model) if rewrite == "optimize_fp32" else gf.to_subpixel(model, min_out_channels=1)
    onnx.checker.check_model(fast, full_check=True)
    assert {p.key: p.value for p in fast.metadata_props} == {p.key: p.value for p in model.metadata_props}
    assert fast.metadata_props and {p.key for p in fast.metadata_props} >= {KEY_PRECISION}
    assert [i.name for i in fast.graph.input] == [i.name for i in model.graph.input]
    assert [o.name for o in fast.graph.output] == ["image"]
    for value in list(fast.graph.input) + list(fast.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == BATCH_AXIS
    strided = [
        n
        for n in fast.graph.node
        if n.op_type == "ConvTranspose"
        and list(helper.get_attribute_value(a) for a in n.attribute if a.name == "strides") == [[2, 2]]
    ]
    if rewrite == "to_subpixel":
        assert not strided  # every upsampling layer is a Conv, which quantizes to QLinearConv
    assert "Gemm" in {n.op_type for n in fast.graph.node}  # the first layer
    for batch in BATCHES:
        z = np.random.default_rng(batch).standard_normal((batch, contract.nz)).astype(np.float32)
        feeds = {"z": z}
        labels = None
        if contract.conditional:
            labels = np.arange(batch, dtype=np.int64) % contract.num_classes
            feeds["label"] = labels
        expected = _run(model, feeds)
        got = _run(fast, feeds)
        assert got.shape == (batch, contract.channels, contract.height, contract.width)
        assert np.abs(got - expected).max() <= TOL
        with torch.no_grad():
            ref = G(torch.from_numpy(z), None if labels is None else torch.from_numpy(labels)).numpy()
        assert np.abs(got - ref).max() <= 1e-4  # the verify tolerance for fp32 vs PyTorch


def test_rewrites_do_not_modify_their_input(exported_models):
    model, _, _ = exported_models["dcgan28_cond"]
    before = model.SerializeToString()
    gf.optimize_fp32(model)
    gf.to_subpixel(model, "phases", "nhwc")
    assert model.SerializeToString() == before


def test_older_opsets_get_forms_they_can_express():
    model = _convtranspose_model(4, 8, 5, 5, bias=True, act="Relu")
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 5)).astype(np.float32)
    for opset, expect in ((12, "DepthToSpace"), (9, "ConvTranspose")):
        old = onnx.ModelProto()
        old.CopyFrom(model)
        old.opset_import[0].version = opset
        rewritten = gf.convtranspose_to_subpixel(old, "phases", "nhwc")
        onnx.checker.check_model(rewritten, full_check=True)
        assert expect in {n.op_type for n in rewritten.graph.node}
        assert np.abs(_run(rewritten, {"x": x}) - _run(old, {"x": x})).max() <= TOL


def test_mlp_generator_passes_through(mlp_cond_ckpt):
    model, _, contract = _exported(mlp_cond_ckpt)
    fast = gf.optimize_fp32(model)
    feeds = {
        "z": np.random.default_rng(0).standard_normal((3, contract.nz)).astype(np.float32),
        "label": np.arange(3, dtype=np.int64) % contract.num_classes,
    }
    assert np.abs(_run(fast, feeds) - _run(model, feeds)).max() <= TOL


# Output of optimize_fp32 before its plumbing moved to export/graph_edit.py (and BatchNorm folding to
# torch.nn.utils.fusion): image[:, -1, H // 2, 8:14] for draw_latents(3, nz, 0) by the numpy rule of the time
# (+ default_labels), and the ops.
OLD_OPTIMIZED = {
    "dcgan28_cond": (
        [
            [-0.451483, -0.714387, -0.422669, -0.406883, -0.506908, -0.433104],
            [-0.792013, -0.253694, -0.361318, 0.854254, -0.377607, 0.14269],
            [-0.368505, -0.186822, 0.031241, 0.364757, -0.052768, 0.587117],
        ],
        {
            "Gather": 1,
            "Concat": 4,
            "Gemm": 1,
            "Relu": 5,
            "Reshape": 2,
            "Conv": 4,
            "Transpose": 5,
            "Unsqueeze": 4,
            "ConvTranspose": 1,
            "Tanh": 1,
        },
    ),
    "dcgan32_rgb": (
        [
            [-0.101057, -0.551471, 0.451153, -0.593499, 0.562248, 0.587241],
            [-0.05973, 0.55004, 0.174336, -0.015324, 0.723829, 0.204986],
            [0.048566, -0.100308, 0.518595, -0.315962, -0.063781, -0.001618],
        ],
        {
            "Gemm": 1,
            "Relu": 9,
            "Reshape": 3,
            "Conv": 8,
            "Transpose": 10,
            "Unsqueeze": 8,
            "Concat": 6,
            "ConvTranspose": 1,
            "Tanh": 1,
        },
    ),
}


@pytest.mark.parametrize("name", sorted(OLD_OPTIMIZED))
def test_optimized_graph_is_the_one_we_shipped(exported_models, name):
    model, _, contract = exported_models[name]
    fast = gf.optimize_fp32(model)
    pixels, ops = OLD_OPTIMIZED[name]
    feeds = {"z": draw_latents(3, contract.nz, 0, rule=LATENT_RULE_NUMPY)}
    if contract.conditional:
        feeds["label"] = default_labels(3, contract.num_classes)
    got = _run(fast, feeds)[:, -1, contract.height // 2, 8:14]
    assert np.abs(got - np.array(pixels, np.float32)).max() <= TOL
    assert Counter(n.op_type for n in fast.graph.node) == ops
