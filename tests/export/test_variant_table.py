"""The variant table (edgegan.export.variants.VARIANTS): one row per file an export can add beside generator.onnx,
each switched on by the export_checkpoint option the row names; the CLI's flags and the options dataclass derive
from it, so a new variant is one module (tests/export/toy_variant.py) plus one row."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.export import variants
from edgegan.export.check_records import TOLERANCES
from edgegan.export.cli import export as export_command
from edgegan.export.pipeline import FP32_NAME, export_checkpoint
from edgegan.export.variants import VARIANTS, Variant, VariantOptions, VariantParam, options_type
from edgegan.runtime.contract import PRECISIONS
from tests.export import toy_variant

TOY = Variant(
    "toy",
    "generator.toy.txt",
    "fp32",
    "tests.export.toy_variant",
    option="toy",
    tolerance=None,
    has_opset=False,
    help="Also write generator.toy.txt (a toy variant).",
    step="writing the toy (level {toy_level})",
    params=(VariantParam("toy_level", 1, "The toy's level.", metavar="N", cli_default="1", parse="builtins:int"),),
)


def test_rows_follow_the_report_order():
    assert [v.name for v in VARIANTS] == ["fp16", "int8", "ort", "tensorrt", "triton", "cuda", "web"]


def test_every_row_is_switched_on_by_an_export_option():
    fields = {f.name: f for f in dataclasses.fields(VariantOptions)}
    flags = {p.name: p for p in export_command.params}
    for variant in VARIANTS:
        assert variant.option in fields and fields[variant.option].default is False, variant.name
        assert variant.enabled(VariantOptions(**{variant.option: True}))
        assert not variant.enabled(VariantOptions())
        assert flags[variant.option].opts == [variant.flag] and flags[variant.option].is_flag
        for param in variant.params:
            assert fields[param.name].default == param.default and flags[param.name].opts == [param.flag]
    with pytest.raises(TypeError, match="unexpected keyword argument 'fp17'"):
        export_checkpoint("run", "out", fp17=True)


def test_the_flags_keep_their_names_defaults_and_help():
    """Derived from the table, the CLI's variant flags read as they did when written by hand."""
    help_text = " ".join(CliRunner().invoke(main, ["export", "--help"]).output.split())
    for flag in ("--fp16", "--int8", "--ort-format", "--tensorrt", "--triton", "--cuda", "--web"):
        assert f" {flag} Also " in help_text
    assert (
        "--trt-batch MIN,OPT,MAX TensorRT optimization profile batch sizes; MAX is also Triton's "
        "max_batch_size. [default: 1,16,64]" in help_text
    )
    assert "--web-runtime DIR onnxruntime-web's dist folder" in help_text
    assert (
        help_text.index("--opset")
        < help_text.index("--fp16")
        < help_text.index("--web-runtime")
        < help_text.index("--pixels")
    )
    assert VariantOptions().trt_batch == (1, 16, 64) and VariantOptions().web_runtime is None


def test_a_new_variant_is_one_module_and_one_row(mlp_ckpt, tmp_path, monkeypatch):
    """A toy row added to the table: its flag and parameter appear in `edgegan export --help`, the options
    dataclass gains its fields, and the values given on the command line reach its build function."""
    monkeypatch.setattr(variants, "VARIANTS", (*VARIANTS, TOY))
    toy_variant.PREFLIGHTS.clear()
    fields = {f.name: f.default for f in dataclasses.fields(options_type(variants.VARIANTS))}
    assert fields["toy"] is False and fields["toy_level"] == 1
    help_text = " ".join(CliRunner().invoke(main, ["export", "--help"]).output.split())
    assert "--toy Also write generator.toy.txt (a toy variant)." in help_text
    assert "--toy-level N The toy's level. [default: 1]" in help_text
    bad = CliRunner().invoke(main, ["export", str(mlp_ckpt), "--out", str(tmp_path / "bad"), "--toy-level", "x"])
    assert bad.exit_code == 2 and "--toy-level" in bad.output  # its parse refuses: a usage error

    out = tmp_path / "m"
    result = CliRunner().invoke(
        main, ["export", str(mlp_ckpt), "--out", str(out), "--toy", "--toy-level", "7", "--no-quality-gate", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "generator.toy.txt").read_text() == "toy level 7\n" and toy_variant.PREFLIGHTS == ["toy"]
    report = json.loads((out / "export_report.json").read_text())
    assert list(report["variants"]) == ["fp32", "toy"]
    entry = report["variants"]["toy"]
    assert entry["passed"] and entry["toy_level"] == 7 and entry["checks"][0]["name"] == "toy_written"
    assert report["options"]["toy"] is True and report["options"]["toy_level"] == 7

    monkeypatch.setattr(variants, "VARIANTS", VARIANTS)  # the row gone, its flag goes with it
    assert "--toy" not in CliRunner().invoke(main, ["export", "--help"]).output


def test_rows_write_distinct_files_and_name_known_precisions():
    files = [name for v in VARIANTS for name in v.files("edgegan_model")]
    assert len(set(files)) == len(files) and FP32_NAME not in files
    assert "triton/edgegan_model" in files and "generator.plan.sha256" in files
    for variant in VARIANTS:
        assert variant.precision in PRECISIONS
        assert variant.tolerance is None or variant.tolerance in TOLERANCES
