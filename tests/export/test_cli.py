"""`edgegan export` through click's CliRunner on the real `edgegan` group."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from edgegan.cli import main


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_help_lists_every_option():
    result = _run("export", "--help")
    assert result.exit_code == 0
    for option in (
        "--out",
        "--opset",
        "--fp16",
        "--int8",
        "--tensorrt",
        "--ort-format",
        "--triton",
        "--pixels",
        "--no-ema",
        "--force",
        "--trt-batch",
    ):
        assert option in result.output
    assert "export" in _run("--help").output


def test_export_prints_the_table_and_writes_the_report(dcgan_cond_ckpt, tmp_path):
    out = tmp_path / "m"
    result = _run("export", str(dcgan_cond_ckpt), "--out", str(out), "--pixels", "uint8", "-q")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [c.strip() for c in lines[0].split("|")][:3] == ["variant", "file", "checks"]
    assert lines[2].startswith("fp32") and "ok" in lines[2]
    assert lines[3] == "" and "dynamo" in lines[4]  # one variant row, then the exporter line
    report = json.loads((out / "export_report.json").read_text())
    assert report["options"]["pixels"] == "uint8" and report["options"]["fp16"] is False
    assert report["options"]["use_ema"] is True
    # Again without --force: refused with the fix in the message, files untouched.
    before = (out / "generator.onnx").read_bytes()
    again = _run("export", str(dcgan_cond_ckpt), "--out", str(out), "-q")
    assert again.exit_code == 1
    assert "Error:" in again.output and "--force" in again.output and "Traceback" not in again.output
    assert (out / "generator.onnx").read_bytes() == before


def test_json_output_and_no_ema(dcgan_ckpt, tmp_path):
    result = _run("export", str(dcgan_ckpt), "--out", str(tmp_path / "m"), "--no-ema", "--json", "-", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout holds only the JSON
    assert report["contract"]["train"]["ema"] is False and report["options"]["use_ema"] is False
    assert report["variants"]["fp32"]["tolerance"] == {
        **report["tolerances"]["fp32"],
        "row": "fp32",
        "overridden": False,
        "by": [],
    }
    # The old bare flag still prints the report on stdout, with a note on stderr.
    old = _run("export", str(dcgan_ckpt), "--out", str(tmp_path / "m2"), "--no-ema", "--json", "-q")
    assert old.exit_code == 0, old.output
    assert json.loads(old.stdout)["options"]["use_ema"] is False
    assert "bare --json is deprecated" in old.stderr


def test_bad_checkpoint_exits_1_with_a_message_and_writes_nothing(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    result = _run("export", str(bad), "--out", str(tmp_path / "m"), "-q")
    assert result.exit_code == 1
    assert "Error:" in result.output and "not a readable checkpoint" in result.output
    assert not (tmp_path / "m").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.pt"]


def test_bad_options_are_usage_errors(dcgan_cond_ckpt, tmp_path):
    result = _run("export", str(dcgan_cond_ckpt), "--out", str(tmp_path / "m"), "--trt-batch", "8,4,1")
    assert result.exit_code == 2 and "--trt-batch" in result.output
    result = _run("export", str(dcgan_cond_ckpt), "--out", str(tmp_path / "m"), "--pixels", "rgb")
    assert result.exit_code == 2
    result = _run("export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "m"))
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not (tmp_path / "m").exists()


def test_tensorrt_without_tensorrt_is_a_clear_error(dcgan_cond_ckpt, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as on a machine without TensorRT
    result = _run("export", str(dcgan_cond_ckpt), "--out", str(tmp_path / "m"), "--tensorrt", "-q")
    assert result.exit_code == 1
    assert "Error:" in result.output and "pip install tensorrt" in result.output
    assert not (tmp_path / "m").exists()


def test_atol_rtol_no_quality_gate_and_int8_notes(dcgan_ckpt, tmp_path, monkeypatch):
    from edgegan.runtime.evaluation.datasets import DATASETS
    from edgegan.runtime.evaluation.evaluator import default_evaluator_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for dataset in DATASETS:  # a cached "evaluator" for every dataset: --no-quality-gate must not even read it
        default_evaluator_path(dataset).parent.mkdir(parents=True, exist_ok=True)
        default_evaluator_path(dataset).write_bytes(b"not an onnx file")
    out = tmp_path / "m"
    result = _run(
        "export",
        str(dcgan_ckpt),
        "--out",
        str(out),
        "--int8",
        "--atol",
        "0.5",
        "--atol",
        "int8=0.25",
        "--rtol",
        "0.01",
        "--no-quality-gate",
    )
    assert result.exit_code == 0, result.output
    assert "pre-processing" not in result.output  # onnxruntime's advice to quantize_static, caught
    assert "quality gate: skipped (--no-quality-gate)" in result.output
    report = json.loads((out / "export_report.json").read_text())
    assert report["quality_gate"] == {"skipped": True, "reason": "--no-quality-gate", "max_fid_delta": None}
    assert report["options"]["atol"] == {"*": 0.5, "int8": 0.25} and report["options"]["rtol"] == {"*": 0.01}
    fp32, int8 = report["variants"]["fp32"]["tolerance"], report["variants"]["int8"]["tolerance"]
    assert fp32["overridden"] and fp32["by"] == ["--atol", "--rtol"] and fp32["vs_torch_max"] == 0.5
    assert int8["vs_torch_max"] == int8["batch_invariance"] == int8["reference"] == 0.25 and int8["rtol"] == 0.01
    assert report["tolerances"]["int8"]["vs_torch_max"] == 0.05  # the table itself is unchanged
    checks = {c["name"]: c for c in report["variants"]["int8"]["checks"]}
    assert checks["vs_torch_batch17"]["tolerance"] == 0.25


def test_a_tight_atol_fails_the_export(dcgan_ckpt, tmp_path):
    result = _run(
        "export", str(dcgan_ckpt), "--out", str(tmp_path / "m"), "--atol", "fp32=1e-12", "-q", "--no-quality-gate"
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "fp32:" in result.output and "tolerance 1e-12" in result.output
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["--atol", "x"], 2, "give a number >= 0"),
        (["--rtol", "int8=-1"], 2, "give a number >= 0"),
        (["--atol", "int8=0.1"], 1, "'int8' is not one of them"),
        (["--no-quality-gate", "--max-fid-delta", "1"], 1, "give one or the other"),
    ],
)
def test_bad_tolerance_and_gate_options(args, code, fragment, dcgan_ckpt, tmp_path):
    result = _run("export", str(dcgan_ckpt), "--out", str(tmp_path / "m"), "-q", *args)
    assert result.exit_code == code and fragment in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m").exists()
