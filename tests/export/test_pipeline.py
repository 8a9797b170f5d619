"""export_checkpoint end to end: files, report, contract, atomicity, --force, and refusal of bad sources."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import edgegan.export.variants.fp16 as fp16_variant
import edgegan.export.variants.ort as ort_variant
from edgegan.export.pipeline import ExportOptionError, export_checkpoint
from edgegan.export.report import REPORT_NAME, format_table
from edgegan.export.variants import VariantOptions
from edgegan.export.verify import AtolError
from edgegan.runtime.contract import GeneratorContract, draw_latents, to_uint8_nhwc
from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.files import file_sha256
from edgegan.trainer.checkpoint import CheckpointError, save_checkpoint
from edgegan.trainer.sample import generate_images, load_generator
from tests.export.conftest import CLASS_NAMES, make_checkpoint


def _listing(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under folder."""
    return {str(p.relative_to(folder)): file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_leftovers(parent: Path) -> None:
    assert not [p.name for p in parent.iterdir() if ".export-" in p.name], "staging folder left behind"


def test_full_export_writes_verified_files_and_report(full_export, dcgan_cond_ckpt):
    out, report = full_export
    assert sorted(_listing(out)) == [
        "export_report.json",
        "generator.fp16.onnx",
        "generator.onnx",
        "generator.ort",
        "generator.required_operators.config",
        "triton/edgegan_fashion/1/model.onnx",
        "triton/edgegan_fashion/config.pbtxt",
    ]
    assert json.loads((out / REPORT_NAME).read_text()) == report
    assert report["passed"] is True
    assert report["source"] == str(dcgan_cond_ckpt)
    assert report["exporter"]["exporter"] == "dynamo" and report["exporter"]["opset"] == 18
    assert report["batchnorm_folded"] == 2
    assert {"torch", "onnx", "onnxruntime", "python"} <= set(report["versions"])
    assert list(report["variants"]) == ["fp32", "fp16", "ort", "triton"]
    for name, entry in report["variants"].items():
        assert entry["passed"] and all(c["passed"] for c in entry["checks"]), name
        assert entry["size_bytes"] > 0
    fp32 = report["variants"]["fp32"]
    assert fp32["file"] == "generator.onnx" and fp32["precision"] == "fp32" and fp32["output"] == "float_nchw"
    assert fp32["size_bytes"] == (out / "generator.onnx").stat().st_size
    assert fp32["sha256"] == file_sha256(out / "generator.onnx")
    assert 0 <= fp32["mean_err"] <= fp32["max_err"] <= 1e-4
    model = onnx.load(out / "generator.onnx")
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    assert fp32["ops"] == counts and fp32["opset"] == 18
    names = [c["name"] for c in fp32["checks"]]
    assert names[0] == "batchnorm_fold" and "reference_evaluator" in names and "batch_invariance" in names
    for check in fp32["checks"]:
        assert set(check) >= {"name", "passed", "max_err", "mean_err", "tolerance", "detail"}
    assert report["variants"]["fp16"]["max_err"] <= 1e-2
    assert report["tolerances"]["fp32"]["vs_torch_max"] == 1e-4


def test_generator_onnx_carries_the_full_contract(full_export):
    out, report = full_export
    meta = {p.key: p.value for p in onnx.load(out / "generator.onnx").metadata_props}
    contract = GeneratorContract.from_metadata(meta)
    assert contract.to_dict() == report["contract"]
    assert (contract.arch, contract.nz, contract.num_classes) == ("dcgan", 16, 3)
    assert contract.class_names == CLASS_NAMES
    assert (contract.channels, contract.height, contract.width) == (1, 28, 28)
    assert contract.output == "float_nchw" and contract.precision == "fp32" and contract.dataset == "npz"
    assert contract.train == {
        "step": 7,
        "epoch": 1,
        "ema": True,
        "seed": 0,
        "config_digest": contract.train["config_digest"],
    }
    assert len(contract.train["config_digest"]) == 16
    meta16 = {p.key: p.value for p in onnx.load(out / "generator.fp16.onnx").metadata_props}
    assert meta16 == {**meta, "edgegan.precision": "fp16"}


def test_exported_images_equal_trainer_sampling(full_export, dcgan_cond_ckpt):
    """One seed, one picture: edgegan.trainer.sample.generate_images and generator.onnx agree (the contract rule)."""
    import onnxruntime as ort

    out, _ = full_export
    G, _, _ = load_generator(dcgan_cond_ckpt)
    expected = generate_images(G, 6, seed=42)
    session = ort.InferenceSession(str(out / "generator.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"z": draw_latents(6, 16, 42), "label": np.arange(6, dtype=np.int64) % 3})[0]
    assert np.abs(got - expected).max() <= 1e-4


def test_uint8_rgb_export(uint8_export, rgb32_ckpt):
    import onnxruntime as ort

    out, report = uint8_export
    assert report["contract"]["output"] == "uint8_nhwc"
    for name in ("fp32", "fp16"):
        entry = report["variants"][name]
        assert entry["output"] == "uint8_nhwc" and entry["error_unit"] == "levels" and entry["max_err"] <= 1
    assert report["variants"]["fp32"]["ops"]["Round"] == 1
    session = ort.InferenceSession(str(out / "generator.onnx"), providers=["CPUExecutionProvider"])
    (output,) = session.get_outputs()
    assert output.type == "tensor(uint8)" and output.shape == ["batch", 32, 32, 3]
    G, _, _ = load_generator(rgb32_ckpt)
    pixels = session.run(None, {"z": draw_latents(5, 16, 9)})[0]
    expected = to_uint8_nhwc(generate_images(G, 5, seed=9))
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 1
    assert (pixels != expected).mean() < 0.01


def test_run_folder_and_no_ema(dcgan_ckpt, tmp_path):
    report = export_checkpoint(dcgan_ckpt, tmp_path / "raw", use_ema=False, progress=False)
    assert report["source"] == str(dcgan_ckpt / "checkpoints" / "last.pt")
    assert report["contract"]["train"]["ema"] is False
    ema = export_checkpoint(dcgan_ckpt, tmp_path / "ema", progress=False)
    assert ema["contract"]["train"]["ema"] is True
    assert file_sha256(tmp_path / "raw" / "generator.onnx") != file_sha256(tmp_path / "ema" / "generator.onnx")


def test_mlp_without_ema_records_raw_weights(mlp_ckpt, tmp_path):
    report = export_checkpoint(mlp_ckpt, tmp_path / "mlp", opset=17, progress=False)
    assert report["contract"]["arch"] == "gan" and report["contract"]["num_classes"] == 0
    assert report["contract"]["class_names"] == []
    assert report["contract"]["train"]["ema"] is False  # the checkpoint had no EMA: the raw G is exported
    assert report["variants"]["fp32"]["opset"] == 17
    assert "Gemm" in report["variants"]["fp32"]["ops"]


def test_table_has_one_row_per_variant(full_export):
    _, report = full_export
    table = format_table(report)
    lines = table.splitlines()
    assert [cell.strip() for cell in lines[0].split(" | ")] == [
        "variant",
        "file",
        "checks",
        "max err",
        "mean err",
        "size",
        "ops",
    ]
    assert [line.split(" | ")[0].strip() for line in lines[2:6]] == ["fp32", "fp16", "ort", "triton"]
    # generator.onnx ships the phase-convolution form: the two stride-2 ConvTransposes became 4 phase Convs.
    assert "11/11 ok" in lines[2] and "Conv 4" in lines[2]
    assert report["graph_form"] == "edgegan.export.graph_forms.optimize_fp32"
    assert "dynamo" in table


def test_existing_export_is_not_overwritten_without_force(full_export, dcgan_cond_ckpt, tmp_path):
    out = tmp_path / "model"
    export_checkpoint(dcgan_cond_ckpt, out, fp16=True, progress=False)
    before = _listing(out)
    with pytest.raises(ExportOptionError, match="--force"):
        export_checkpoint(dcgan_cond_ckpt, out, progress=False)
    assert _listing(out) == before
    # --force replaces it; the fp16 file this export does not rebuild is removed, not left stale.
    report = export_checkpoint(dcgan_cond_ckpt, out, force=True, pixels="uint8", progress=False)
    assert sorted(_listing(out)) == ["export_report.json", "generator.onnx"]
    assert report["contract"]["output"] == "uint8_nhwc"
    _no_leftovers(tmp_path)


@pytest.mark.parametrize("exc", [RuntimeError("injected failure"), KeyboardInterrupt()])
def test_failure_mid_export_leaves_no_partial_files(dcgan_cond_ckpt, tmp_path, monkeypatch, exc):
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(ort_variant, "convert_to_ort", fail)  # fp32 and fp16 are already written when it fires
    out = tmp_path / "model"
    with pytest.raises(type(exc)):
        export_checkpoint(dcgan_cond_ckpt, out, fp16=True, ort_format=True, progress=False)
    assert not out.exists()
    _no_leftovers(tmp_path)


def test_failure_during_forced_reexport_keeps_the_old_export(dcgan_cond_ckpt, tmp_path, monkeypatch):
    out = tmp_path / "model"
    export_checkpoint(dcgan_cond_ckpt, out, progress=False)
    before = _listing(out)

    def fail(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(fp16_variant, "convert_fp16", fail)
    with pytest.raises(RuntimeError, match="injected"):
        export_checkpoint(dcgan_cond_ckpt, out, force=True, fp16=True, progress=False)
    assert _listing(out) == before
    _no_leftovers(tmp_path)


def test_failed_verification_writes_nothing(dcgan_cond_ckpt, tmp_path, monkeypatch):
    import edgegan.export.verify as verify

    monkeypatch.setitem(verify.TOLERANCES, "fp32", verify.Tolerance(0.0, None, 0.0, 0.0, 0.0))
    with pytest.raises(AtolError) as info:
        export_checkpoint(dcgan_cond_ckpt, tmp_path / "model", progress=False)
    failed = [r.name for r in info.value.records if not r.passed]
    assert "vs_torch_batch17" in failed and len(failed) >= 3  # every failing check is reported, not the first
    assert not (tmp_path / "model").exists()
    _no_leftovers(tmp_path)


class Payload:
    """Stands in for an arbitrary pickled object inside a checkpoint."""

    def __reduce__(self):
        return (os.getcwd, ())


def _bad_sources(tmp_path: Path, good: Path) -> dict[str, Path]:
    text = tmp_path / "notes.pt"
    text.write_text("this is not a checkpoint\n")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    pickled = tmp_path / "pickled.pt"
    torch.save(
        {"kind": "edgegan-checkpoint", "format": 1, "config": {}, "G": Payload(), "step": 0, "epoch": 0}, pickled
    )
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    mismatched = tmp_path / "mismatched.pt"
    state = torch.load(good, weights_only=True)
    state["config"]["model"]["width"] = 16  # config no longer matches the saved weights
    for key in ("format", "kind", "sha256"):
        state.pop(key, None)
    save_checkpoint(state, mismatched)  # a valid checksum: refused for the mismatch, not as corrupt
    empty_run = tmp_path / "empty_run"
    empty_run.mkdir()
    return {
        "text": text,
        "truncated": truncated,
        "pickled": pickled,
        "foreign": foreign,
        "mismatched": mismatched,
        "empty_run": empty_run,
    }


@pytest.mark.parametrize(
    "kind, message",
    [
        ("text", "not a readable checkpoint"),
        ("truncated", "not a readable checkpoint"),
        ("pickled", "never loaded"),
        ("foreign", "not an edgegan checkpoint"),
        ("mismatched", "cannot be rebuilt"),
        ("empty_run", "no checkpoints/last.pt"),
    ],
)
def test_bad_sources_are_refused_and_nothing_is_written(dcgan_cond_ckpt, tmp_path, kind, message):
    source = _bad_sources(tmp_path, dcgan_cond_ckpt)[kind]
    out = tmp_path / "out" / "model"
    with pytest.raises(CheckpointError, match=message) as info:
        export_checkpoint(source, out, progress=False)
    assert isinstance(info.value, EdgeganError)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"opset": 5}, "--opset 5"),
        ({"pixels": "rgb"}, "--pixels"),
        ({"trt_batch": (4, 2, 8)}, "min <= opt <= max"),
    ],
)
def test_bad_options_are_refused(dcgan_cond_ckpt, tmp_path, kwargs, message):
    with pytest.raises(ExportOptionError, match=message):
        export_checkpoint(dcgan_cond_ckpt, tmp_path / "m", progress=False, **kwargs)
    assert not (tmp_path / "m").exists()


def test_out_dir_that_is_a_file_is_refused(dcgan_cond_ckpt, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ExportOptionError, match="is a file"):
        export_checkpoint(dcgan_cond_ckpt, target, progress=False)


def test_int8_variant_is_built_by_export_int8_and_verified(tmp_path, monkeypatch):
    """Wiring: edgegan.export.int8_quantize.build_int8 quantizes the float graph; the uint8 tail and the contract are added after.

    int8 error depends on the weights: this random generator is no trained one, so its numeric budget is widened
    here (structure, metadata, batch invariance and the reference evaluator keep their own checks). int8 quality
    on trained generators is export/int8_quantize.py's to test.
    """
    import edgegan.export.verify as verify

    monkeypatch.setitem(verify.TOLERANCES, "int8", verify.Tolerance(0.25, 0.05, 1e-2, 5e-2, 8e-3))
    ckpt = make_checkpoint(tmp_path / "q.pt", arch="dcgan", seed=1, weight_scale=8.0)
    out = tmp_path / "q"
    report = export_checkpoint(ckpt, out, int8=True, pixels="uint8", progress=False)
    entry = report["variants"]["int8"]
    assert entry["file"] == "generator.int8.onnx" and entry["precision"] == "int8" and entry["passed"]
    assert entry["int8"]["quantized_ops"]  # build_int8's own account of what it quantized
    assert entry["ops"]["QuantizeLinear"] >= 1 and entry["ops"]["Round"] == 1  # Q/DQ body, float32 pixel tail
    meta = {p.key: p.value for p in onnx.load(out / "generator.int8.onnx").metadata_props}
    fp32_meta = {p.key: p.value for p in onnx.load(out / "generator.onnx").metadata_props}
    assert meta == {**fp32_meta, "edgegan.precision": "int8"}
    assert "reference_evaluator" in [c["name"] for c in entry["checks"]]


def test_report_options_record_every_option_as_given(mlp_ckpt, tmp_path):
    """`options` holds each keyword of export_checkpoint (progress aside) with the value passed, never a result:
    the gate's result once overwrote options.quality_gate."""
    import inspect

    given = {
        "opset": 17,
        "pixels": "uint8",
        "use_ema": False,
        "optimize": False,
        "gate_n": 128,
        "quality_gate": False,
        "trt_batch": (1, 2, 4),
    }  # the gate off: its limits must stay unset
    report = export_checkpoint(mlp_ckpt, tmp_path / "m", progress=False, **given)
    options = report["options"]
    parameters = inspect.signature(export_checkpoint).parameters.values()
    table = dataclasses.fields(VariantOptions)  # the variant keywords (**variant_options) come from the table
    keywords = [p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.name != "progress"]
    keywords += [f.name for f in table]
    assert sorted(options) == sorted(keywords)
    defaults = {**{p.name: p.default for p in parameters}, **{f.name: f.default for f in table}}
    for name in keywords:
        want = given.get(name, defaults[name])
        want = list(want) if isinstance(want, tuple) else want
        assert options[name] == want, name
    assert isinstance(report["quality_gate"], dict)  # the gate's result has its own key
