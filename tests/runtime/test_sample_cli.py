"""`edgegan sample` through click's CliRunner on the real group: outputs written, and every bad input answered
with exit status != 0 and a message (never a traceback)."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgegan.cli import main
from edgegan.runtime import Generator


def run(*args: str):
    return CliRunner().invoke(main, ["sample", *map(str, args)])


def test_help():
    result = run("--help")
    assert result.exit_code == 0
    for option in ("--seed", "--label", "--truncation", "--provider", "--threads", "--allow-fallback", "--npy"):
        assert option in result.output


def test_writes_grid_and_npy(cond_model, tmp_path):
    grid, npy = tmp_path / "out" / "grid.png", tmp_path / "x.npy"
    (tmp_path / "out").mkdir()  # a missing output folder is an error, never created behind the user's back
    result = run(cond_model, "-n", 6, "--seed", 3, "--label", "pullover", "-o", grid, "--npy", npy, "--nrow", 3)
    assert result.exit_code == 0, result.output
    assert "6 images 4x5x3" in result.output and "CPUExecutionProvider" in result.output
    images = np.load(npy)
    assert images.dtype == np.uint8 and images.shape == (6, 4, 5, 3)
    np.testing.assert_array_equal(images, Generator(cond_model).sample(6, seed=3, labels=2))
    picture = np.asarray(Image.open(grid))
    assert picture.shape == (2 * (4 + 2) + 2, 3 * (5 + 2) + 2, 3)  # 2 rows x 3 columns, padding 2
    np.testing.assert_array_equal(picture[2:6, 2:7], images[0])
    assert not list(tmp_path.glob(".*tmp*")) and not list((tmp_path / "out").glob(".*tmp*"))  # atomic writes


def test_labels_per_image_truncation_and_default_grid(float_model, cond_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(cond_model, "-n", 3, "--label", 0, "--label", "Trouser", "--label", 2, "--npy", "a.npy")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load("a.npy"), Generator(cond_model).sample(3, seed=0, labels=[0, 1, 2]))
    assert not (tmp_path / "grid.png").exists()  # only what was asked for
    result = run(float_model, "-n", 4, "--truncation", 0.7, "--threads", 1, "--batch-size", 3)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "grid.png").is_file()  # neither -o nor --npy: grid.png


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}"], "not found"),
        (["{text}"], "not an ONNX model"),
        (["{junk}"], "cannot load"),
        (["{plain}"], "not an edgegan generator"),
        (["{cond}", "-n", "0"], "positive integer"),
        (["{cond}", "-n", "-2"], "positive integer"),
        (["{cond}", "--label", "3"], "out of range"),
        (["{cond}", "--label", "sneaker"], "unknown class name 'sneaker'"),
        (["{cond}", "-n", "4", "--label", "0", "--label", "1"], "2 labels for 4 images"),
        (["{float}", "--label", "0"], "unconditional"),
        (["{float}", "--truncation", "0"], "truncation"),
        (["{float}", "--threads", "0"], "threads"),
        (["{float}", "--batch-size", "0"], "batch size"),
        (["{float}", "--seed", "-1"], "seed"),
        (["{float}", "--provider", "gpu"], "Invalid value for '--provider'"),
        (["{float}", "-n", "many"], "Invalid value for '-n'"),
    ],
)
def test_bad_input_gives_a_message_not_a_traceback(args, message, float_model, cond_model, make_model, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk" * 8)
    plain = make_model("cli_plain/generator.onnx", metadata={"edgegan.format": None})
    paths = {"missing": tmp_path / "none.onnx", "text": tmp_path / "notes.txt", "junk": tmp_path / "junk.onnx",
             "plain": plain, "cond": cond_model, "float": float_model}
    result = run(*[a.format(**paths) for a in args], "-o", tmp_path / "g.png")
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "g.png").exists()


def test_missing_provider_without_and_with_fallback(float_model, tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here; the refusal needs a machine without it")
    result = run(float_model, "--provider", "cuda", "-o", tmp_path / "g.png")
    assert result.exit_code == 1 and "CUDAExecutionProvider" in result.output and "--allow-fallback" in result.output
    result = run(float_model, "--provider", "cuda", "--allow-fallback", "-o", tmp_path / "g.png")
    assert result.exit_code == 0 and "provider CPUExecutionProvider" in result.output
    assert "Warning: provider fallback CUDAExecutionProvider -> CPUExecutionProvider" in result.output
