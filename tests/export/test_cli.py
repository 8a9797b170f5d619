"""`edgegan export` through click's CliRunner on the real `edgegan` group."""
from __future__ import annotations

import json
import sys

from click.testing import CliRunner

from edgegan.cli import main


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_help_lists_every_option():
    result = _run("export", "--help")
    assert result.exit_code == 0
    for option in ("--out", "--opset", "--fp16", "--int8", "--tensorrt", "--ort-format", "--triton", "--pixels",
                   "--no-ema", "--force", "--trt-batch"):
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
    result = _run("export", str(dcgan_ckpt), "--out", str(tmp_path / "m"), "--no-ema", "--json", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["contract"]["train"]["ema"] is False and report["options"]["use_ema"] is False


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
