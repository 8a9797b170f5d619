"""float16 and .ort variants: structure, and verification against the fp32 PyTorch generator."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

from edgegan.export.onnx import TAIL_PREFIX, append_uint8_tail, export_generator, op_counts, set_contract_metadata
from edgegan.export.pipeline import _torch_reference
from edgegan.export.variants import VariantError, convert_fp16, convert_to_ort
from edgegan.export.verify import CachedReference, make_session, verify_variant
from edgegan.runtime.contract import (
    OUTPUT_FLOAT_NCHW,
    OUTPUT_UINT8_NHWC,
    GeneratorContract,
    default_labels,
    draw_latents,
)
from edgegan.trainer.contract import checkpoint_contract
from edgegan.trainer.sample import load_generator


def _setup(ckpt, output):
    G, cfg, state = load_generator(ckpt)
    contract = checkpoint_contract(cfg, state, ema=True, output=output)
    core_contract = GeneratorContract(**{**contract.to_dict(), "output": OUTPUT_FLOAT_NCHW})
    model, _ = export_generator(G, core_contract)
    if output == OUTPUT_UINT8_NHWC:
        model = append_uint8_tail(model)
        set_contract_metadata(model, contract)
    return model, contract, CachedReference(_torch_reference(G))


@pytest.mark.parametrize(
    "fixture, output", [("dcgan_cond_ckpt", OUTPUT_FLOAT_NCHW), ("mlp_cond_ckpt", OUTPUT_UINT8_NHWC)]
)
def test_fp16_keeps_float32_io_and_passes_fp16_verification(request, tmp_path, fixture, output):
    model, contract, reference = _setup(request.getfixturevalue(fixture), output)
    model16 = convert_fp16(model)
    c16 = GeneratorContract(**{**contract.to_dict(), "precision": "fp16"})
    set_contract_metadata(model16, c16)
    onnx.checker.check_model(model16, full_check=True)
    types = {v.name: v.type.tensor_type.elem_type for v in [*model16.graph.input, *model16.graph.output]}
    assert types["z"] == TensorProto.FLOAT and types["label"] == TensorProto.INT64
    assert types["image"] == (TensorProto.UINT8 if output == OUTPUT_UINT8_NHWC else TensorProto.FLOAT)
    body = [t for t in model16.graph.initializer if not t.name.startswith(TAIL_PREFIX)]
    assert body and all(t.data_type != TensorProto.FLOAT for t in body)  # every float weight is float16
    assert any(t.data_type == TensorProto.FLOAT16 for t in body)
    tail = [t for t in model16.graph.initializer if t.name.startswith(TAIL_PREFIX)]
    assert all(t.data_type == TensorProto.FLOAT for t in tail)  # the pixel formula stays float32
    assert op_counts(model16)["Cast"] == op_counts(model).get("Cast", 0) + 2  # one Cast in, one out
    path = tmp_path / "generator.fp16.onnx"
    onnx.save(model16, path)
    assert path.stat().st_size < 0.6 * len(model.SerializeToString())
    result = verify_variant(path, c16, reference)
    assert result.passed, [r for r in result.records if not r.passed]
    max_err, _ = result.error_figures()
    assert max_err > 0  # really computed in float16, not a copy of the fp32 graph


def test_fp16_refuses_weights_beyond_float16_range(dcgan_ckpt):
    model, _, _ = _setup(dcgan_ckpt, OUTPUT_FLOAT_NCHW)
    init = model.graph.initializer[0]
    big = onnx.numpy_helper.to_array(init).copy()
    big.flat[0] = 1e6
    init.CopyFrom(onnx.numpy_helper.from_array(big, init.name))
    with pytest.raises(VariantError, match="float16's range"):
        convert_fp16(model)


def test_fp16_images_equal_onnxruntimes_own_converter_on_float_graphs(dcgan_cond_ckpt):
    """onnxruntime.transformers.float16 (keep_io_types=True) computes the same float images as convert_fp16; why
    we keep our own pass anyway (its graph fails onnx.checker; it rounds the uint8 tail through float16) is in
    export/variants/fp16.py. Measured: max abs difference 0 on the tiny checkpoints (onnxruntime 1.32)."""
    float16 = pytest.importorskip("onnxruntime.transformers.float16")
    model, contract, _ = _setup(dcgan_cond_ckpt, OUTPUT_FLOAT_NCHW)
    ours = convert_fp16(model)
    theirs = float16.convert_float_to_float16(onnx.ModelProto.FromString(model.SerializeToString()), keep_io_types=True)
    feeds = {"z": draw_latents(17, contract.nz, 0), "label": default_labels(17, contract.num_classes)}
    ours_images, theirs_images = (
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(["image"], feeds)[0]
        for m in (ours, theirs)
    )
    assert ours_images.dtype == theirs_images.dtype == np.float32
    assert np.abs(ours_images - theirs_images).max() <= 1e-3  # a tenth of the fp16 tolerance


def test_ort_format_loads_back_and_matches_fp32(dcgan_cond_ckpt, tmp_path):
    model, contract, reference = _setup(dcgan_cond_ckpt, OUTPUT_FLOAT_NCHW)
    onnx_path = tmp_path / "generator.onnx"
    onnx.save(model, onnx_path)
    info = convert_to_ort(onnx_path, tmp_path / "generator.ort")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generator.onnx", "generator.ort"]  # no tool leftovers
    assert info["optimization_style"] == "Runtime"
    assert "ConvTranspose" in op_counts(info["optimized_onnx"])
    session = make_session(tmp_path / "generator.ort")
    assert [i.name for i in session.get_inputs()] == ["z", "label"]
    assert session.get_modelmeta().custom_metadata_map == contract.to_metadata()
    base = verify_variant(onnx_path, contract, reference)
    result = verify_variant(tmp_path / "generator.ort", contract, reference, baseline=base)
    names = [r.name for r in result.records]
    assert "onnx_checker" not in names and "reference_evaluator" not in names  # not applicable to .ort
    assert names[-1] == "vs_fp32_onnx"
    assert result.passed, [r for r in result.records if not r.passed]
    np.testing.assert_allclose(result.outputs[17], base.outputs[17], atol=1e-5)


def test_ort_conversion_failure_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00not onnx")
    with pytest.raises(VariantError, match="could not convert broken.onnx"):
        convert_to_ort(bad, tmp_path / "broken.ort")
    assert not (tmp_path / "broken.ort").exists()


def test_trained_fixture_fp16_and_ort_verify(mnist_gan_checkpoint, tmp_path):
    """A trained MLP GAN (tests/fixtures/) through fp16 and the .ort format: fp16 judged in pixel levels within its
    budget, the .ort on the strict fp32 rule against generator.onnx (the tiny models above check the same on
    width-8 graphs, faster)."""
    from edgegan.export.check_records import TOLERANCES
    from edgegan.export.pipeline import export_checkpoint

    report = export_checkpoint(
        mnist_gan_checkpoint, tmp_path / "out", fp16=True, ort_format=True, progress=False, quality_gate=False
    )
    fp16, ort_entry = report["variants"]["fp16"], report["variants"]["ort"]
    assert report["passed"] and fp16["pixel_levels"]["p999"]["value"] <= TOLERANCES["fp16"].levels.p999
    assert "pixel_levels" not in ort_entry and ort_entry["tolerance"]["levels"] is None
    assert (
        next(c for c in ort_entry["checks"] if c["name"] == "vs_fp32_onnx")["max_err"]
        <= TOLERANCES["fp32"].vs_torch_max
    )
