"""Hostile inputs to the runtime and the `edgegan` command (issue 10): models that read files outside their folder,
a corrupt generator.onnx beside a valid .ort, a model that lies about its output shape, outputs that cannot be
written, and more images than memory holds. Each answer is a one-line message and exit status != 0, checked
before the work, never a traceback and never a partial set of outputs."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import edgegan.runtime.bench.harness
import edgegan.runtime.generator
import edgegan.runtime.memory
from edgegan.cli import main
from edgegan.runtime import Generator
from edgegan.runtime.contract import ContractError
from edgegan.runtime.generator import ModelFileError
from tests.runtime.conftest import build_generator_onnx

EXTERNAL_CASES = ("relative", "absolute", "symlink", "hardlink", "inside", "sparse")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_message(result, *needles):
    """Exit status != 0 through click's one-line "Error: ..." (SystemExit), never an exception's traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "Error: " in result.output, result.output
    for needle in needles:
        assert needle in result.output, result.output


def _set_external(tensor: TensorProto, location: str, length: int) -> None:
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    tensor.data_location = TensorProto.EXTERNAL


def external_model(root: Path, case: str) -> Path:
    """A tiny generator whose weight W is read from another file: ../secret.bin, an absolute path, a symlink or a
    hard link to a file outside the model's folder, a plain file inside it, or a sparse initializer's values."""
    folder = root / case / "model"
    path = build_generator_onnx(folder / "generator.onnx")
    model = onnx.load(str(path))
    weight = next(t for t in model.graph.initializer if t.name == "W")
    array = numpy_helper.to_array(weight)  # [nz, C*H*W]
    data = array.tobytes()
    secret = root / case / "secret.bin"  # outside the model's folder
    secret.write_bytes(data)
    location = {"relative": "../secret.bin", "absolute": str(secret)}.get(case, "w.bin")
    if case == "symlink":
        os.symlink(secret, folder / "w.bin")
    elif case == "hardlink":
        os.link(secret, folder / "w.bin")
    elif case == "inside":
        (folder / "w.bin").write_bytes(data)
    if case == "sparse":  # GraphProto.sparse_initializer: onnxruntime < 1.27 never checked these paths
        model.graph.initializer.remove(weight)
        sparse = onnx.SparseTensorProto()
        sparse.dims.extend(array.shape)
        sparse.values.name, sparse.values.data_type = "W", TensorProto.FLOAT
        sparse.values.dims.append(array.size)
        _set_external(sparse.values, "../secret.bin", len(data))
        sparse.indices.CopyFrom(numpy_helper.from_array(np.arange(array.size, dtype=np.int64), "W_indices"))
        model.graph.sparse_initializer.append(sparse)
    else:
        _set_external(weight, location, len(data))
    path.write_bytes(model.SerializeToString())  # not onnx.save: it would try to write the external data
    return path


@pytest.fixture
def no_onnxruntime_load(monkeypatch):
    """Records every InferenceSession onnxruntime is asked to create (the refusal must come before it)."""
    import onnxruntime

    calls = []
    real = onnxruntime.InferenceSession

    def spy(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    return calls


@pytest.mark.parametrize("case", EXTERNAL_CASES)
def test_generator_refuses_external_data_before_onnxruntime_sees_it(case, tmp_path, no_onnxruntime_load):
    from edgegan.runtime.external_data import ExternalDataError

    path = external_model(tmp_path, case)
    with pytest.raises(ExternalDataError, match="refusing .*external data") as info:
        Generator(path)
    assert isinstance(info.value, ModelFileError) and "\n" not in str(info.value)
    assert no_onnxruntime_load == []


def test_external_data_messages_say_where(tmp_path):
    from edgegan.runtime.external_data import check_model_file, find_external_data

    words = {
        "relative": "outside the model's folder",
        "absolute": "absolute path",
        "symlink": "symlink",
        "hardlink": "hard link",
    }
    for case, word in words.items():
        with pytest.raises(ModelFileError, match=word):
            check_model_file(external_model(tmp_path, case))
    assert [t.name for t in find_external_data(external_model(tmp_path, "sparse"))] == ["W"]


def test_clean_models_pass_the_scan(float_model, cond_model, uint8_model, make_model, tmp_path):
    import onnxruntime as ort

    from edgegan.runtime.external_data import find_external_data

    fp16, int8 = make_model("scan/fp16.onnx", precision="fp16"), make_model("scan/int8.onnx", precision="int8")
    ort_file = tmp_path / "generator.ort"  # ORT format: a flatbuffer, not scanned
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(ort_file)
    options.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(float_model), options, providers=["CPUExecutionProvider"])
    for path in (float_model, cond_model, uint8_model, fp16, int8, ort_file):
        assert find_external_data(path) == []
    assert Generator(ort_file).sample(2, seed=1).shape == (2, 4, 5, 1)


def test_truncated_protobuf_is_a_load_error(float_model, tmp_path):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(float_model.read_bytes()[:-7])
    with pytest.raises(ModelFileError, match="cannot load"):
        Generator(cut)


@pytest.mark.parametrize("case", ["relative", "absolute", "symlink", "hardlink", "sparse"])
def test_sample_and_bench_refuse_external_data(case, tmp_path, monkeypatch, no_onnxruntime_load):
    monkeypatch.chdir(tmp_path)
    path = external_model(tmp_path, case)
    assert_message(invoke("sample", path, "-n", 2, "-o", tmp_path / "g.png"), str(path), "refusing")
    assert not (tmp_path / "g.png").exists()
    result = invoke("bench", path, "--batch-sizes", 1, "--iters", 1, "--rounds", 1, "--warmup", 0, "--no-peak", "-q")
    assert_message(result, str(path), "refusing")
    assert str(path) not in no_onnxruntime_load  # refused before onnxruntime opened it, whatever its version


def _no_timing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the timing work started")

    monkeypatch.setattr(edgegan.runtime.bench.harness, "_first_calls", refuse)


def _ort_copy(source: Path, folder: Path) -> Path:
    import onnxruntime as ort

    folder.mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(folder / "generator.ort")
    options.add_session_config_entry("session.save_model_format", "ORT")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return folder / "generator.ort"


def test_bench_corrupt_onnx_beside_valid_ort_fails_before_timing(float_model, tmp_path, monkeypatch):
    ort_file = _ort_copy(float_model, tmp_path / "m")
    (tmp_path / "m" / "generator.onnx").write_bytes(float_model.read_bytes()[:200])  # truncated
    _no_timing(monkeypatch)
    result = invoke(
        "bench", ort_file, "--batch-sizes", 1, "--iters", 1, "--rounds", 1, "--warmup", 0, "--no-peak", "-q"
    )
    assert_message(result, str(tmp_path / "m" / "generator.onnx"))


def test_bench_hardlinked_external_data_fails_before_timing(tmp_path, monkeypatch):
    path = external_model(tmp_path, "hardlink")
    _no_timing(monkeypatch)
    result = invoke("bench", path, "--batch-sizes", 1, "--iters", 1, "--rounds", 1, "--warmup", 0, "--no-peak", "-q")
    assert_message(result, "hard link")


def lying_model(root: Path) -> Path:
    """Declares image [batch, 1, 28, 28] (output and metadata) but reshapes to [batch, 1, 10, 10]; the 10 is
    computed from the input (10 + 0 * max(z)), so no shape inference can see through the declared 28."""
    path = build_generator_onnx(
        root / "liar" / "generator.onnx",
        height=10,
        width=10,
        metadata={"edgegan.image": '{"channels": 1, "height": 28, "width": 28}'},
    )
    model = onnx.load(str(path))
    model.graph.initializer.remove(next(t for t in model.graph.initializer if t.name == "shape"))
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([-1, 1], np.int64), "lead"),
            numpy_helper.from_array(np.array([0.0], np.float32), "zero"),
            numpy_helper.from_array(np.array([10.0], np.float32), "ten"),
        ]
    )
    nodes = [
        helper.make_node("ReduceMax", ["z"], ["zmax"], keepdims=0),
        helper.make_node("Mul", ["zmax", "zero"], ["z0"]),
        helper.make_node("Add", ["z0", "ten"], ["side_f"]),
        helper.make_node("Cast", ["side_f"], ["side"], to=TensorProto.INT64),
        helper.make_node("Concat", ["lead", "side", "side"], ["shape"], axis=0),
    ]  # [-1, 1, 10, 10]
    for i, node in enumerate(nodes):
        model.graph.node.insert(i, node)
    dims = model.graph.output[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = 28, 28
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def test_output_shape_is_checked_at_run_time(tmp_path):
    from edgegan.runtime.generator import ModelOutputError

    generator = Generator(lying_model(tmp_path))  # the declared signature follows the contract
    with pytest.raises(ModelOutputError, match=r"\[2, 1, 10, 10\].*\[2, 1, 28, 28\]") as info:
        generator.sample(2, seed=0)
    assert isinstance(info.value, ContractError)
    result = invoke("sample", generator.path, "-n", 2, "-o", tmp_path / "g.png")
    assert_message(result, "[2, 1, 28, 28]")
    assert not (tmp_path / "g.png").exists()


def test_output_dtype_is_checked_at_run_time(float_model, monkeypatch):
    from edgegan.runtime.generator import ModelOutputError

    generator = Generator(float_model)
    monkeypatch.setattr(generator._runner, "run", lambda feeds: np.zeros((len(feeds["z"]), 1, 4, 5), np.float64))
    with pytest.raises(ModelOutputError, match="float64"):
        generator.sample(3)


# ------------------------------------------------------------------------------------------- outputs
def test_atomic_write_errors_name_the_target_not_the_temp_file(tmp_path):
    from edgegan.runtime.files import atomic_write

    with pytest.raises(OSError) as info:
        atomic_write("/proc/edgegan-test.bin", lambda f: f.write(b"x"))
    assert info.value.filename == "/proc/edgegan-test.bin"

    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        atomic_write(tmp_path / "x.bin", full)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "x.bin")
    assert list(tmp_path.iterdir()) == []  # no temp file left


@pytest.mark.parametrize("where", ["proc", "under_a_file", "missing_folder", "a_folder"])
def test_sample_unwritable_output_is_a_message_before_the_work(where, float_model, tmp_path, monkeypatch):
    (tmp_path / "plain").write_text("a file, not a folder")
    (tmp_path / "dir.png").mkdir()
    target = {
        "proc": Path("/proc/edgegan-x.png"),
        "under_a_file": tmp_path / "plain" / "x.png",
        "missing_folder": tmp_path / "nope" / "x.png",
        "a_folder": tmp_path / "dir.png",
    }[where]
    monkeypatch.setattr(Generator, "sample", lambda *a, **k: pytest.fail("sampled before checking the output"))
    monkeypatch.setattr(
        Generator, "iter_sample", lambda *a, **k: pytest.fail("sampled before checking the output"), raising=False
    )
    result = invoke("sample", float_model, "-n", 2, "-o", target)
    assert_message(result, str(target))
    assert ".tmp" not in result.output
    assert not (tmp_path / "nope").exists()  # no folder created behind the user's back


def test_sample_unwritable_npy_writes_nothing(float_model, tmp_path):
    grid = tmp_path / "g.png"
    result = invoke("sample", float_model, "-n", 2, "-o", grid, "--npy", "/proc/edgegan-x.npy")
    assert_message(result, "/proc/edgegan-x.npy")
    assert not grid.exists()


def test_disk_full_while_writing_names_the_target(float_model, tmp_path, monkeypatch):
    from PIL import Image

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    result = invoke("sample", float_model, "-n", 2, "-o", tmp_path / "g.png")
    assert_message(result, "No space left on device", str(tmp_path / "g.png"))
    assert ".tmp" not in result.output and list(tmp_path.iterdir()) == []


def test_read_only_filesystem_is_a_message(float_model, tmp_path, monkeypatch):
    import tempfile

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", os.path.join(str(dir), ".g.png.abcd.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = invoke("sample", float_model, "-n", 2, "-o", tmp_path / "g.png")
    assert_message(result, "Read-only file system", str(tmp_path / "g.png"))
    assert ".tmp" not in result.output


@pytest.mark.parametrize("option", ["--json", "--markdown", "--plot"])
def test_bench_unwritable_output_fails_before_timing(option, float_model, monkeypatch):
    _no_timing(monkeypatch)
    result = invoke(
        "bench",
        float_model,
        "--batch-sizes",
        1,
        "--iters",
        1,
        "--rounds",
        1,
        "--no-peak",
        "-q",
        option,
        "/proc/edgegan-bench.out",
    )
    assert_message(result, "/proc/edgegan-bench.out")


def test_eval_unwritable_json_fails_before_the_work(float_model, tmp_path, monkeypatch):
    import edgegan.runtime.evaluation.quality

    monkeypatch.setattr(
        edgegan.runtime.evaluation.quality, "evaluate", lambda *a, **k: pytest.fail("evaluated before the check")
    )
    result = invoke("eval", float_model, "--dataset", "mnist", "-n", 10, "--json", tmp_path / "nope" / "r.json")
    assert_message(result, str(tmp_path / "nope" / "r.json"))


def test_os_errors_anywhere_are_one_line(float_model, monkeypatch):
    def denied(*args, **kwargs):
        raise OSError(errno.EACCES, "Permission denied", "/models/x")

    monkeypatch.setattr(edgegan.runtime.generator.Generator, "__init__", denied)
    assert_message(
        invoke("sample", float_model, "-n", 1, "-o", "/tmp/edgegan-unused.png"), "Permission denied", "/models/x"
    )

    def oom(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(edgegan.runtime.generator.Generator, "__init__", oom)
    assert_message(invoke("sample", float_model, "-n", 1, "-o", "/tmp/edgegan-unused.png"), "memory")


# ------------------------------------------------------------------------------------------- memory
def test_sample_n_beyond_memory_is_refused_up_front(float_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("sample", float_model, "-n", 10**12)  # 20 TB of pixels
    assert_message(result, "memory", "--npy")
    assert not (tmp_path / "grid.png").exists()
    with pytest.raises(edgegan.runtime.generator.GeneratorInputError, match="memory"):
        Generator(float_model).sample(10**12)


def test_npy_streams_when_memory_is_short(float_model, tmp_path, monkeypatch):
    n = 10_000  # 200 kB of 4x5x1 pixels
    expected = Generator(float_model, batch_size=64).sample(n, seed=5)
    monkeypatch.setattr(edgegan.runtime.memory, "available_memory", lambda: 150_000)  # holds one batch and a 1024 grid
    assert_message(invoke("sample", float_model, "-n", n, "-o", tmp_path / "g.png"), "memory")
    npy, grid = tmp_path / "x.npy", tmp_path / "g.png"
    result = invoke("sample", float_model, "-n", n, "--seed", 5, "--npy", npy, "-o", grid, "--batch-size", 64)
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(npy), expected)
    assert grid.is_file() and "first 1024" in result.output
    reference = tmp_path / "ref.npy"
    np.save(reference, expected)
    assert npy.read_bytes() == reference.read_bytes()  # the streamed file is exactly np.save's


def test_npy_larger_than_the_free_disk_is_refused(float_model, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**6, 10**6 - 100, 100))
    result = invoke("sample", float_model, "-n", 100, "--npy", tmp_path / "x.npy")
    assert_message(result, str(tmp_path / "x.npy"), "free")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("labels", [None, "Trouser", [2, 0, 1, 1, 0, 2, 2]])
@pytest.mark.parametrize("truncation", [None, 0.8])
def test_iter_sample_is_sample_a_batch_at_a_time(labels, truncation, cond_model):
    generator = Generator(cond_model, batch_size=3)
    parts = list(generator.iter_sample(7, seed=11, labels=labels, truncation=truncation))
    assert [len(p) for p in parts] == [3, 3, 1]
    whole = Generator(cond_model, batch_size=64).sample(7, seed=11, labels=labels, truncation=truncation)
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    with pytest.raises(edgegan.runtime.generator.GeneratorInputError, match="out of range"):
        generator.iter_sample(2, labels=5)  # checked on the call, not at the first batch
