"""`edgegan sample` through click's CliRunner on the real group: outputs written, and every bad input answered
with exit status != 0 and a message (never a traceback)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgegan.cli import main
from edgegan.runtime import Generator
from edgegan.runtime.images import make_grid


def run(*args: str):
    return CliRunner().invoke(main, ["sample", *map(str, args)])


def test_help():
    result = run("--help")
    assert result.exit_code == 0
    for option in (
        "--seed",
        "--label",
        "--truncation",
        "--provider",
        "--threads",
        "--allow-fallback",
        "--npy",
        "-o, --output",
        "-q, --quiet",
        "--json FILE",
        "--batch-size",
    ):
        assert option in result.output
    assert "--out " not in result.output  # the old spelling is a hidden alias


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
        (["{float}", "--label", "0"], "unconditional (no classes): labels cannot be used; drop --label"),
        (["{float}", "--truncation", "0"], "truncation"),
        (["{float}", "--threads", "0"], "threads"),
        (["{float}", "--batch-size", "0"], "--batch-size"),
        (["{float}", "--nrow", "0"], "--nrow"),
        (["{float}", "--seed", "-1"], "seed"),
        (["{float}", "--provider", "gpu"], "Invalid value for '--provider'"),
        (["{float}", "-n", "many"], "Invalid value for '-n'"),
    ],
)
def test_bad_input_gives_a_message_not_a_traceback(args, message, float_model, cond_model, make_model, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk" * 8)
    plain = make_model("cli_plain/generator.onnx", metadata={"edgegan.format": None})
    paths = {
        "missing": tmp_path / "none.onnx",
        "text": tmp_path / "notes.txt",
        "junk": tmp_path / "junk.onnx",
        "plain": plain,
        "cond": cond_model,
        "float": float_model,
    }
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


@pytest.mark.parametrize(
    "suffix, pillow_format", [(".png", "PNG"), (".jpg", "JPEG"), (".JPEG", "JPEG"), (".webp", "WEBP")]
)
@pytest.mark.parametrize("model", ["float", "cond"])  # grayscale and RGB
def test_grid_is_written_in_the_format_its_suffix_names(
    suffix, pillow_format, model, float_model, cond_model, tmp_path
):
    path = tmp_path / f"grid{suffix}"
    chosen = {"float": float_model, "cond": cond_model}[model]
    result = run(chosen, "-n", 4, "-o", path)
    assert result.exit_code == 0, result.output
    grid = make_grid(Generator(chosen).sample(4, seed=0))  # uint8 [H, W, C]
    with Image.open(path) as picture:
        assert picture.format == pillow_format
        pixels = np.asarray(picture.convert("RGB"))
    if pillow_format == "JPEG":  # what Pillow itself decodes from its quality-95 JPEG of the grid
        buffer = io.BytesIO()
        Image.fromarray(grid.squeeze(-1) if grid.shape[-1] == 1 else grid).save(buffer, format="JPEG", quality=95)
        grid = np.asarray(Image.open(buffer).convert("RGB"))
    np.testing.assert_array_equal(pixels, np.broadcast_to(grid, pixels.shape))  # PNG, lossless WebP: exact


@pytest.mark.parametrize("name", ["grid.gif", "grid", "grid.png.txt"])
def test_other_suffixes_are_refused_before_any_work(name, float_model, tmp_path):
    result = run(float_model, "-n", 4, "-o", tmp_path / name)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "is not a picture format" in result.output and ".png, .jpg, .jpeg, .webp" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["-o", "--npy", "--json"])
def test_missing_folders_are_refused_not_created(option, float_model, tmp_path):
    target = tmp_path / "no" / "such" / ("x.png" if option == "-o" else "x.npy" if option == "--npy" else "x.json")
    result = run(float_model, "-n", 2, option, target, *(["-o", tmp_path / "g.png"] if option != "-o" else []))
    assert result.exit_code == 1 and "does not exist" in result.output and str(tmp_path / "no") in result.output
    assert not (tmp_path / "no").exists() and not (tmp_path / "g.png").exists()


def test_json_file_and_stdout_and_quiet(float_model, tmp_path):
    import json

    result = run(float_model, "-n", 3, "--seed", 5, "-o", tmp_path / "g.png", "--json", tmp_path / "s.json", "-q")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["n"] == 3 and record["seed"] == 5 and record["files"] == [str(tmp_path / "g.png")]
    assert record["provider"] == "CPUExecutionProvider" and record["image"] == {"height": 4, "width": 5, "channels": 1}
    result = run(float_model, "-n", 3, "-o", tmp_path / "h.png", "--json", "-", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["grid"] == str(tmp_path / "h.png")  # stdout holds only the JSON


def test_old_out_spelling_still_works_with_a_note(float_model, tmp_path):
    result = run(float_model, "-n", 2, "--out", tmp_path / "g.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.png").is_file()
    assert "--out is deprecated" in result.stderr and "-o/--output" in result.stderr
    both = run(float_model, "-n", 2, "--out", tmp_path / "a.png", "-o", tmp_path / "b.png")
    assert both.exit_code == 2 and "give only -o/--output" in both.output
