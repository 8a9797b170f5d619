"""export/int8_quantize.py: the sub-pixel form quantized with contract calibration latents, the first layer an exact integer
Gemm (export/int8_gemm.py), written atomically."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from edgegan.export.int8_gemm import MAX_K, integer_gemm
from edgegan.export.int8_quantize import ContractCalibration, Int8Error, build_int8, final_layer_nodes
from edgegan.export.ir_version import cap_ir_version
from edgegan.export.onnx import export_generator
from edgegan.export.verify import TOLERANCES
from edgegan.runtime.contract import (
    KEY_PRECISION,
    OUTPUT_FLOAT_NCHW,
    GeneratorContract,
    default_labels,
    draw_latents,
)
from edgegan.trainer.contract import checkpoint_contract
from edgegan.trainer.sample import load_generator


def _export(ckpt, path):
    G, cfg, state = load_generator(ckpt)
    contract = checkpoint_contract(cfg, state, ema=True, output=OUTPUT_FLOAT_NCHW)
    model, _ = export_generator(G, contract)
    onnx.save(model, path)
    return contract


def _session(path, optimized=None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _feeds(contract: GeneratorContract, n: int, seed: int) -> dict[str, np.ndarray]:
    feeds = {"z": draw_latents(n, contract.nz, seed)}
    if contract.conditional:
        feeds["label"] = default_labels(n, contract.num_classes)
    return feeds


@pytest.fixture(scope="module")
def built(tmp_path_factory, dcgan_cond_ckpt):
    """A conditional DCGAN 28x28 (width 8) exported, then quantized with the defaults."""
    tmp = tmp_path_factory.mktemp("int8")
    fp32 = tmp / "generator.onnx"
    contract = _export(dcgan_cond_ckpt, fp32)
    out = tmp / "generator.int8.onnx"
    info = build_int8(fp32, out, contract, calibration_samples=64)
    return fp32, out, contract, info


def test_int8_runs_close_to_fp32_at_several_batches(built):
    fp32, out, contract, _ = built
    s32, s8 = _session(fp32), _session(out)
    for batch in (1, 3, 17):
        feeds = _feeds(contract, batch, seed=batch)
        ref, got = s32.run(None, feeds)[0], s8.run(None, feeds)[0]
        assert got.shape == ref.shape == (batch, 1, 28, 28)
        err = np.abs(got - ref)
        # u8 activations: a few quantization steps of ~2/255 over three layers. This tiny model has random
        # weights, so a rare pixel may sit on a steep tanh slope: bound the 99.9th percentile tightly, the max loosely.
        # (Per-class gains of the conditional BatchNorm scale some channels after their u8 grid: max 0.24 seen.)
        assert np.quantile(err, 0.999) < 0.1 and err.max() < 0.3 and err.mean() < 0.02, (batch, err.max(), err.mean())


def test_upsampling_runs_as_qlinearconv_on_the_cpu_provider(built, tmp_path):
    _, out, _, info = built
    model = onnx.load(out)
    ops = {n.op_type for n in model.graph.node}
    assert "Conv" in ops  # the upsampling layers' sub-pixel Convs (quantized as QDQ around them)
    floats = " ".join(info["float_ops"])
    # Only the image layer, kept in float, may stay a ConvTranspose; the upsampling layers are Convs now.
    assert all(n.name in floats for n in model.graph.node if n.op_type == "ConvTranspose")
    optimized = tmp_path / "optimized.onnx"
    _session(out, optimized)
    runtime_ops = [n.op_type for n in onnx.load(optimized).graph.node]
    # onnxruntime fused DQ -> Conv -> Q into its int8 kernel, one per phase of the 7x7 -> 14x14 layer
    assert runtime_ops.count("QLinearConv") == 4
    assert info["quantized_ops"] == {"Conv": 4, "Gemm": 1}
    assert info["float_layers"] == ["last"] and "Gemm" not in floats and "ConvTranspose" in floats


def test_weights_are_per_output_channel(built):
    _, out, _, _ = built
    model = onnx.load(out)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dq = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    checked = 0
    for node in model.graph.node:
        if node.op_type != "Conv" or node.input[1] not in dq:
            continue
        deq = dq[node.input[1]]
        weight, scale = inits[deq.input[0]], inits[deq.input[1]]
        axis = next((a.i for a in deq.attribute if a.name == "axis"), 1)
        assert weight.dtype == np.int8 and axis == 0 and scale.shape == (weight.shape[0],)
        checked += 1
    assert checked >= 1


def test_metadata_says_int8_and_keeps_the_contract(built):
    fp32, out, contract, info = built
    meta32 = {p.key: p.value for p in onnx.load(fp32).metadata_props}
    meta8 = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert meta8[KEY_PRECISION] == "int8"
    assert {k: v for k, v in meta8.items() if k != KEY_PRECISION} == {
        k: v for k, v in meta32.items() if k != KEY_PRECISION
    }
    assert GeneratorContract.from_metadata(meta8).num_classes == contract.num_classes
    model = onnx.load(out)
    assert [i.name for i in model.graph.input] == ["z", "label"]
    assert [o.name for o in model.graph.output] == ["image"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert info["calibration"]["samples"] == 64 and info["calibration"]["method"] == "MinMax"
    assert info["form"] and isinstance(info["float_ops"], list)


def test_calibration_follows_the_contract_rule():
    contract = GeneratorContract(arch="dcgan", nz=5, num_classes=3, channels=1, height=28, width=28)
    reader = ContractCalibration(contract, samples=70, seed=9, batch=32)
    batches = list(iter(reader.get_next, None))
    assert [len(b["z"]) for b in batches] == [32, 32, 6]
    assert np.array_equal(np.concatenate([b["z"] for b in batches]), draw_latents(70, 5, 9))
    assert np.array_equal(np.concatenate([b["label"] for b in batches]), default_labels(70, 3))


def test_per_tensor_option_and_unconditional_model(tmp_path, dcgan_ckpt):
    fp32 = tmp_path / "generator.onnx"
    contract = _export(dcgan_ckpt, fp32)
    out = tmp_path / "generator.int8.onnx"
    info = build_int8(fp32, out, contract, calibration_samples=32, per_channel=False)
    model = onnx.load(out)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    scales = [
        inits[n.input[1]]
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) is not None and inits[n.input[0]].dtype == np.int8
    ]
    assert scales and all(s.size == 1 for s in scales)
    assert "per-tensor" in info["format"]
    feeds = _feeds(contract, 4, seed=0)
    assert np.abs(_session(out).run(None, feeds)[0] - _session(fp32).run(None, feeds)[0]).max() < 0.1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_bad_inputs_fail_clearly_and_write_nothing(tmp_path):
    contract = GeneratorContract(arch="dcgan", nz=16, num_classes=0, channels=1, height=28, width=28)
    bad = tmp_path / "not_a_model.onnx"
    bad.write_bytes(b"this is not onnx")
    out = tmp_path / "out" / "generator.int8.onnx"
    with pytest.raises(Int8Error, match="cannot read"):
        build_int8(bad, out, contract)
    with pytest.raises(Int8Error, match="calibration samples"):
        build_int8(bad, out, contract, calibration_samples=0)
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_final_layer_nodes_finds_the_image_layer(built):
    fp32, _, _, _ = built
    from edgegan.export.graph_forms import to_subpixel

    model = to_subpixel(onnx.load(fp32))
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"n{i}"
    names = final_layer_nodes(model)
    assert len(names) == 1
    node = next(n for n in model.graph.node if n.name == names[0])
    assert node.op_type in ("Conv", "ConvTranspose")


def test_everything_quantized_option(tmp_path, built):
    fp32, _, contract, _ = built
    out = tmp_path / "all.int8.onnx"
    info = build_int8(fp32, out, contract, calibration_samples=32, form="crop", layout="nchw", float_layers=())
    assert info["quantized_ops"] == {"Gemm": 1, "Conv": 2} and info["float_ops"] == []
    optimized = tmp_path / "optimized.onnx"
    _session(out, optimized)
    runtime_ops = [n.op_type for n in onnx.load(optimized).graph.node]
    assert "MatMulInteger" in runtime_ops and runtime_ops.count("QLinearConv") == 2
    feeds = _feeds(contract, 5, seed=1)
    err = np.abs(_session(out).run(None, feeds)[0] - _session(fp32).run(None, feeds)[0])
    # Looser than the default int8: z itself is on a u8 grid here, and the conditional BatchNorm's per-class gain
    # and bias act after each quantized convolution (one u8 grid for all classes); the max loosely (random weights).
    assert np.quantile(err, 0.999) < 0.2 and err.max() < 0.3 and err.mean() < 0.03, (err.max(), err.mean())


@pytest.mark.parametrize(
    "option", [{"form": "bogus"}, {"layout": "nchwc"}, {"float_layers": ("middle",)}, {"method": "Magic"}]
)
def test_bad_options_are_refused(tmp_path, built, option):
    fp32, _, contract, _ = built
    with pytest.raises(Int8Error, match="bad int8 option"):
        build_int8(fp32, tmp_path / "x.onnx", contract, **option)
    assert not (tmp_path / "x.onnx").exists()


def test_mlp_generator_quantizes_its_gemms(tmp_path, mlp_ckpt):
    fp32 = tmp_path / "generator.onnx"
    contract = _export(mlp_ckpt, fp32)
    out = tmp_path / "generator.int8.onnx"
    info = build_int8(fp32, out, contract, calibration_samples=32)
    assert info["quantized_ops"] == {"Gemm": 3}  # 4 Gemms, the last (image) in float
    feeds = _feeds(contract, 3, seed=0)
    err = np.abs(_session(out).run(None, feeds)[0] - _session(fp32).run(None, feeds)[0])
    # LeakyRelu outputs keep a signed u8 range (no ReLU to fold away): coarser than the DCGAN's steps
    assert err.max() < 0.25 and err.mean() < 0.03, (err.max(), err.mean())


def test_phase_convs_share_one_range(built):
    """The four phase Convs of a layer are calibrated on their union range: one u8 grid, no requantization."""
    _, out, _, _ = built
    model = onnx.load(out)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    scales = set()
    for node in model.graph.node:
        if node.op_type == "Conv" and node.output[0] in consumers:
            q = next(n for n in consumers[node.output[0]] if n.op_type in ("QuantizeLinear", "Relu"))
            while q.op_type != "QuantizeLinear":  # Relu kept before Q by some quantizer versions
                q = next(n for n in consumers[q.output[0]] if n.op_type == "QuantizeLinear")
            scales.add((float(inits[q.input[1]]), int(inits[q.input[2]])))
    assert len(scales) == 1


def test_interleave_is_one_grid_so_concats_copy(built):
    """Every Q/DQ between the phase Convs and the image layer (the nested Concats' outputs too) uses bitwise the
    same scale and zero point: onnxruntime's QLinearConcat then copies bytes instead of requantizing them."""
    _, out, _, _ = built
    model = onnx.load(out)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    # The Concats fed by the phase Convs (forward through Q/DQ and data movement); a conditional model's
    # z-and-label Concat before the first layer is another matter.
    concats, stack, seen = [], [n.output[0] for n in model.graph.node if n.op_type == "Conv"], set()
    while stack:
        for node in consumers.get(stack.pop(), []):
            if node.name in seen or node.op_type not in (
                "QuantizeLinear",
                "DequantizeLinear",
                "Transpose",
                "Unsqueeze",
                "Reshape",
                "Concat",
            ):
                continue
            seen.add(node.name)
            concats += [node] if node.op_type == "Concat" else []
            stack.extend(node.output)
    assert concats, "the phases form joins its phase Convs with Concat"
    grids = set()
    for concat in concats:
        for name in [*concat.input, concat.output[0]]:
            node = producers.get(name)
            if node is not None and node.op_type == "DequantizeLinear":
                grids.add((inits[node.input[1]].tobytes(), inits[node.input[2]].tobytes()))
        q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == concat.output[0])
        grids.add((inits[q.input[1]].tobytes(), inits[q.input[2]].tobytes()))
    assert len(grids) == 1


# ------------------------------------------------------------------ the first layer: integer Gemm, int8 weights
@pytest.fixture(scope="module")
def wide_z(tmp_path_factory):
    """A DCGAN 28x28 whose first layer dominates, as at full width: nz 128 -> 32 x 7 x 7 holds 96% of the weights."""
    from tests.export.conftest import make_checkpoint

    tmp = tmp_path_factory.mktemp("int8_wide_z")
    fp32 = tmp / "generator.onnx"
    contract = _export(make_checkpoint(tmp / "wide_z.pt", nz=128, seed=3, weight_scale=4.0), fp32)
    out = tmp / "generator.int8.onnx"
    return fp32, out, contract, build_int8(fp32, out, contract, calibration_samples=64)


def test_int8_file_is_under_a_third_of_fp32_when_the_first_layer_dominates(wide_z):
    fp32, out, _, info = wide_z
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(out).graph.initializer}
    first = [a for a in inits.values() if a.dtype == np.int8 and a.ndim == 2]  # the integer Gemm's [K, N] weight
    assert len(first) == 1 and first[0].shape[0] == 128
    assert not [a for a in inits.values() if a.dtype == np.float32 and a.size >= first[0].shape[0] * 16]
    assert out.stat().st_size <= 0.3 * fp32.stat().st_size, (out.stat().st_size, fp32.stat().st_size)
    assert info["first_layer"]["passes"] == 2


def test_first_layer_runs_as_integer_matmuls(wide_z):
    _, out, _, info = wide_z
    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert ops.count("MatMulInteger") == 2 and "Gemm" not in ops  # two passes: z's grid and its rounding residual
    (name,) = info["first_layer"]["nodes"]
    assert info["first_layer"]["nodes"][name]["weights"] == 128 * 32 * 7 * 7


def test_remaining_float_layers_are_reported_with_the_reason(wide_z):
    _, out, _, info = wide_z
    (entry,) = info["float_ops"]
    assert entry.startswith(final_layer_nodes_of(out)[0]) and "(ConvTranspose): image layer (256 weights" in entry
    assert "no int8 ConvTranspose kernel" in entry


def final_layer_nodes_of(path):
    return [n.name for n in onnx.load(path).graph.node if n.op_type == "ConvTranspose"]


def test_outputs_stay_within_the_int8_export_tolerance(wide_z):
    fp32, out, contract, _ = wide_z
    tol = TOLERANCES["int8"]
    s32, s8 = _session(fp32), _session(out)
    for batch in (1, 17):
        feeds = _feeds(contract, batch, seed=batch + 40)
        err = np.abs(s8.run(None, feeds)[0] - s32.run(None, feeds)[0])
        assert err.max() < tol.vs_torch_max and err.mean() < tol.vs_torch_mean, (batch, err.max(), err.mean())


def test_integer_gemm_is_exact_up_to_weight_rounding(tmp_path):
    """Two passes carry z to ~1/126 of its grid step: the result matches x @ dequantized(W) to float rounding,
    including x beyond the calibrated range (clipped) never leaving the 7-bit grid (no kernel saturation)."""
    rng = np.random.default_rng(0)
    k, n = 100, 300
    w = rng.normal(size=(k, n)).astype(np.float32)
    b = rng.normal(size=n).astype(np.float32)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="first")],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", k])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", n])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    # make_model stamps the installed onnx's IR version, which an older onnxruntime refuses (1.30: IR 13 at most)
    model = cap_ir_version(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]))
    assert integer_gemm(model, "first", input_absmax=4.0) == {"weights": k * n, "passes": 2}
    onnx.checker.check_model(model)
    assert not [t for t in model.graph.initializer if t.name == "w"]
    x = rng.normal(size=(64, k)).astype(np.float32)
    x[0, :3] = [7.0, -9.0, 4.0]  # beyond the calibrated +-4: clipped to +-4
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    scale = np.abs(w).max(axis=0) / 127
    w_deq = np.clip(np.rint(w / scale), -127, 127) * scale
    want = np.clip(x, -4.0, 4.0) @ w_deq + b
    step = 4.0 / 63 / 126  # the residual grid: z is exact to half of it
    assert np.abs(got - want).max() <= np.abs(w_deq).sum(axis=0).max() * step, np.abs(got - want).max()
    with pytest.raises(ValueError, match="passes"):
        integer_gemm(model, "first", 4.0, passes=3)
    assert MAX_K > 100_000  # z joined to a label embedding stays far inside int32
