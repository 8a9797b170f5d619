"""The cuda variant (export/variants/cuda.py): the plain ConvTranspose form beside generator.onnx, verified, with the
same contract, recorded as a graph form; a folder loaded on cuda opens it (its choice is tested in
tests/runtime/test_io_binding.py with the provider list standing in for a GPU)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgegan.export.pipeline import export_checkpoint
from edgegan.export.variants import cuda
from edgegan.runtime import Generator
from edgegan.runtime.contract import KEY_GRAPH_FORM


@pytest.mark.parametrize("pixels", ["float", "uint8"])
def test_cuda_form_is_plain_convtranspose_with_the_same_contract(dcgan_cond_ckpt, tmp_path, pixels):
    report = export_checkpoint(
        dcgan_cond_ckpt, tmp_path / pixels, cuda=True, pixels=pixels, progress=False, quality_gate=False
    )
    entry = report["variants"]["cuda"]
    assert entry["passed"] and entry["file"] == "generator.cuda.onnx" and entry["precision"] == "fp32"
    assert entry["graph_form"] == "convtranspose" and entry["for_provider"] == "CUDAExecutionProvider"
    assert "vs_fp32_onnx" in {c["name"] for c in entry["checks"]}
    assert entry["ops"]["ConvTranspose"] >= 3 and "Conv" not in entry["ops"]  # no phase convolutions
    shipped = onnx.load(str(tmp_path / pixels / "generator.onnx"))
    form = onnx.load(str(tmp_path / pixels / "generator.cuda.onnx"))
    assert form.doc_string == cuda.DOC
    meta = {p.key: p.value for p in shipped.metadata_props}
    assert {p.key: p.value for p in form.metadata_props} == {**meta, KEY_GRAPH_FORM: "convtranspose"}
    plain, fast = Generator(tmp_path / pixels / "generator.cuda.onnx"), Generator(tmp_path / pixels)
    assert fast.path.name == "generator.onnx"  # the CPU provider keeps the phase form
    assert plain.contract == fast.contract.with_graph_form("convtranspose")  # read back: the same contract, its form
    np.testing.assert_allclose(plain.sample(8, seed=1).astype(int), fast.sample(8, seed=1).astype(int), atol=1)


def test_the_export_is_capped_to_the_ir_version_onnxruntime_loads(dcgan_ckpt, monkeypatch):
    """The H200 image pairs onnx 1.23 (IR 14) with onnxruntime 1.30 (IR 13): the exporter's stamp must come down."""
    from edgegan.export import ir_version
    from edgegan.export.onnx import export_generator
    from edgegan.runtime.contract import OUTPUT_FLOAT_NCHW
    from edgegan.trainer.contract import checkpoint_contract
    from edgegan.trainer.sample import load_generator

    G, cfg, state = load_generator(dcgan_ckpt)
    contract = checkpoint_contract(cfg, state, ema=True, output=OUTPUT_FLOAT_NCHW)
    monkeypatch.setattr(ir_version, "ort_max_ir_version", lambda: 8)  # an older onnxruntime's ceiling
    model, _ = export_generator(G, contract, opset=18)
    assert model.ir_version == 8


def test_the_cuda_forms_contract_is_the_shipped_one_recording_its_form():
    from edgegan.runtime.contract import KEY_GRAPH_FORM, GeneratorContract
    from edgegan.runtime.session import PROVIDER_FORMS

    shipped = GeneratorContract(
        arch="dcgan",
        nz=8,
        num_classes=3,
        channels=1,
        height=28,
        width=28,
        class_names=["a", "b", "c"],
        output="uint8_nhwc",
        dataset="npz",
        train={"step": 5},
    )
    form = cuda.form_contract(shipped)
    assert (cuda.FILE, cuda.GRAPH_FORM) == (PROVIDER_FORMS[cuda.FOR_PROVIDER].file, "convtranspose")
    assert form.io_spec() == shipped.io_spec() and form.with_graph_form(None) == shipped  # nothing else changed
    assert form.to_metadata() == {**shipped.to_metadata(), KEY_GRAPH_FORM: "convtranspose"}


def test_a_variant_recording_another_contract_than_a_form_is_refused(dcgan_ckpt, tmp_path, monkeypatch):
    """A variant may add its graph form to the contract, nothing else: one that would ship another latent size (or
    pixels, classes...) under generator.onnx's name is an export error, and the folder is not written."""
    import dataclasses

    from edgegan.export.variants import VariantError

    built = cuda.build

    def drifting(sources, path):
        out = built(sources, path)
        return dataclasses.replace(out, contract=dataclasses.replace(out.contract, nz=out.contract.nz + 1))

    monkeypatch.setattr(cuda, "build", drifting)
    with pytest.raises(VariantError, match="another contract"):
        export_checkpoint(dcgan_ckpt, tmp_path / "out", cuda=True, progress=False, quality_gate=False)
    assert not (tmp_path / "out").exists()
