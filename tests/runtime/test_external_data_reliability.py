"""Issue 19, item 1 (and item 10's wording): a model file must not read other files.

The hostile model is a protobuf .onnx whose bytes 4-8 read "ORTM" (producer_name="ORTM", the ORT-format tag) and
whose weight W is external data in `pw.bin`, a hard link to a file outside the model's folder. onnxruntime parses
a path by its name, so it loads that .onnx as protobuf and reads the linked file; the scan used to skip any file
tagged ORTM. Every location onnxruntime could follow is refused, each with the reason that applies.

Run under other onnxruntime releases (scripts/min_versions.sh does 1.17.3 and 1.23.2 in a plain venv) too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from edgegan.cli import main
from edgegan.runtime import Generator
from edgegan.runtime.external_data import (
    ExternalDataError,
    check_model_file,
    find_external_data,
    parsed_as_ort_format,
)
from tests.runtime.conftest import build_generator_onnx


def _external(tensor: onnx.TensorProto, location: str, length: int) -> None:
    tensor.ClearField("raw_data")
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    tensor.data_location = onnx.TensorProto.EXTERNAL


def ortm_model(root: Path, location: str = "pw.bin", link: str = "hard", name: str = "generator.onnx") -> Path:
    """m/<name>: producer_name "ORTM", W [8, 20] read from `location`; link "hard" makes m/pw.bin a hard link
    to root/private.txt (outside m/), "none" leaves the location to the caller. Returns the model path."""
    folder = root / "m"
    path = build_generator_onnx(folder / name)
    model = onnx.load(str(path))
    model.producer_name = "ORTM"  # ModelProto field 2 right after ir_version: bytes 4-8 of the file
    weight = next(t for t in model.graph.initializer if t.name == "W")
    data = numpy_helper.to_array(weight).tobytes()  # 640 bytes: the "private file" is a valid weight
    private = root / "private.txt"
    private.write_bytes(data)
    if link == "hard":
        os.link(private, folder / location)
    _external(weight, location, len(data))
    path.write_bytes(model.SerializeToString())
    assert path.read_bytes()[4:8] == b"ORTM"
    return path


def test_onnxruntime_really_reads_the_linked_file(tmp_path):
    """The fixture is the real attack: this onnxruntime loads the .onnx as protobuf and reads pw.bin."""
    path = ortm_model(tmp_path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().producer_name == "ORTM"


def test_ortm_tagged_protobuf_is_scanned(tmp_path):
    path = ortm_model(tmp_path)
    assert not parsed_as_ort_format(path)
    assert [t.location for t in find_external_data(path)] == ["pw.bin"]
    with pytest.raises(ExternalDataError, match="through a hard link"):
        check_model_file(path)


def test_sample_of_the_crafted_model_exits_1_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = ortm_model(tmp_path)
    result = CliRunner().invoke(main, ["sample", "m/generator.onnx", "-n", "1", "--npy", "out.npy", "-q"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing" in lines[0] and "hard link" in lines[0], result.output
    assert not (tmp_path / "out.npy").exists() and sorted(os.listdir(tmp_path)) == ["m", "private.txt"]
    assert path.exists()


def test_bench_and_eval_refuse_the_crafted_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ortm_model(tmp_path)
    bench = CliRunner().invoke(
        main,
        [
            "bench",
            "m/generator.onnx",
            "--batch-sizes",
            "1",
            "--iters",
            "1",
            "--rounds",
            "1",
            "--warmup",
            "0",
            "--no-peak",
            "-q",
        ],
    )
    assert bench.exit_code == 1 and "refusing" in bench.output and "Traceback" not in bench.output, bench.output
    direct = pytest.raises(ExternalDataError, match="hard link")
    with direct:
        Generator(tmp_path / "m" / "generator.onnx")  # what `eval` loads the model through


def test_a_format_forced_by_session_options_decides_the_scan(tmp_path):
    """onnxruntime takes session.load_model_format over the name: an .ort name read as ONNX is scanned."""
    path = ortm_model(tmp_path, name="generator.ort")
    assert parsed_as_ort_format(path) and find_external_data(path) == []
    as_onnx = ort.SessionOptions()
    as_onnx.add_session_config_entry("session.load_model_format", "ONNX")
    assert not parsed_as_ort_format(path, as_onnx)
    with pytest.raises(ExternalDataError, match="hard link"):
        check_model_file(path, as_onnx)
    with pytest.raises(ExternalDataError, match="hard link"):
        Generator(path, session_options=as_onnx)
    as_ort = ort.SessionOptions()
    as_ort.add_session_config_entry("session.load_model_format", "ORT")
    assert parsed_as_ort_format(tmp_path / "x.onnx", as_ort)
    assert parsed_as_ort_format(tmp_path / "X.ORT") and not parsed_as_ort_format(tmp_path / "ort")


@pytest.mark.parametrize(
    "case, reason",
    [
        (".", "at the model's folder itself"),
        ("./pw.bin", "'.' or empty path component"),
        ("sub//pw.bin", "'.' or empty path component"),
        ("../private.txt", "outside the model's folder"),
        ("absolute", "at an absolute path"),
        ("linked/private.txt", "through a symlinked folder ('linked')"),
        ("symlink", "through a symlink"),
        ("hard", "through a hard link"),
        ("missing.bin", "in a missing file"),
        ("plain", "in a separate file"),
        ("fifo", "not a regular file"),
    ],
)
def test_each_location_is_refused_with_its_own_reason(case, reason, tmp_path):
    folder = tmp_path / "m"
    location = {
        "absolute": str(tmp_path / "private.txt"),
        "symlink": "pw.bin",
        "hard": "pw.bin",
        "plain": "pw.bin",
        "fifo": "pw.bin",
    }.get(case, case)
    path = ortm_model(tmp_path, location=location, link="none")
    private = tmp_path / "private.txt"
    if case == "linked/private.txt":
        os.symlink(tmp_path, folder / "linked")  # a folder symlink: the file behind it has one link
    elif case == "symlink":
        os.symlink(private, folder / "pw.bin")
    elif case == "hard":
        os.link(private, folder / "pw.bin")
    elif case == "plain":
        (folder / "pw.bin").write_bytes(private.read_bytes())
    elif case == "fifo":
        os.mkfifo(folder / "pw.bin")
    with pytest.raises(ExternalDataError) as info:
        check_model_file(path)
    message = str(info.value)
    assert reason in message and "\n" not in message, message
    if case in (".", "linked/private.txt"):
        assert "hard link" not in message  # issue 19 item 10: both used to be called "a hard link"


def test_clean_models_and_real_ort_files_still_load(tmp_path):
    clean = build_generator_onnx(tmp_path / "c" / "generator.onnx")
    ort_file = tmp_path / "c" / "generator.ort"
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(ort_file)
    options.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(clean), options, providers=["CPUExecutionProvider"])
    for path in (clean, ort_file):
        check_model_file(path)
        images = Generator(path).sample(2, seed=3)
        assert images.shape == (2, 4, 5, 1) and np.isfinite(images.astype(np.float32)).all()
