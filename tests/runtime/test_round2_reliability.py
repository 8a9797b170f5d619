"""Issue 19, items 9 and 10 on the runtime side: a full disk part-way through `sample`'s outputs, a read-only cache
under `eval`, an explicit --data-dir that does not exist, and a gzip bomb as a dataset file."""

from __future__ import annotations

import errno
import gzip
import os
import struct
import tracemalloc

import numpy as np
import pytest

from edgegan.runtime.evaluation.idx import read_idx
from edgegan.runtime.evaluation.image_data import DataError
from tests.cli_helpers import one_error_line
from tests.cli_helpers import run as invoke


def test_full_disk_on_the_grid_says_which_output_failed_and_which_was_written(float_model, tmp_path, monkeypatch):
    from PIL import Image

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    grid, npy = tmp_path / "g.png", tmp_path / "i.npy"
    result = invoke("sample", float_model, "-n", 3, "-o", grid, "--npy", npy, "-q")
    one_error_line(result, f"cannot write {grid}: No space left on device", f"{npy} was written completely")
    assert np.load(npy).shape == (3, 4, 5, 1) and not grid.exists()


def test_eval_with_a_read_only_cache_points_at_no_cache(
    make_model, evaluator_onnx, shapes_npz, cache_home, monkeypatch
):
    import edgegan.runtime.evaluation.features as features

    def read_only(path, write, binary=True):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(features, "atomic_write", read_only)
    model = make_model("ro16/generator.onnx", nz=8, channels=1, height=16, width=16)
    base = ["eval", model, "--dataset", "npz", "--data-dir", shapes_npz, "--evaluator", evaluator_onnx, "-n", 20, "-q"]
    one_error_line(invoke(*base), "Read-only file system", "--no-cache", str(cache_home))
    assert invoke(*base, "--no-cache").exit_code == 0


def test_eval_with_a_data_dir_that_does_not_exist(float_model, tmp_path):
    one_error_line(
        invoke("eval", float_model, "--dataset", "mnist", "--data-dir", tmp_path / "nope"),
        f"--data-dir {tmp_path / 'nope'} does not exist",
    )


def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    """Header: 1 image of 28x28; the gzip holds 256 MiB more zeros (~256 KiB on disk)."""
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(struct.pack(">BBBB3I", 0, 0, 0x08, 3, 1, 28, 28))
        zeros = bytes(1 << 20)
        for _ in range(256):
            f.write(zeros)
    assert bomb.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="longer than its header says"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # read up to the header's 784 bytes + 1, never the 256 MiB


def test_a_header_declaring_more_than_a_dataset_holds_is_refused_before_reading(tmp_path):
    huge = tmp_path / "t10k-images-idx3-ubyte"
    huge.write_bytes(struct.pack(">BBBB3I", 0, 0, 0x08, 3, 4_000_000_000, 4096, 4096) + b"\0" * 64)
    with pytest.raises(DataError, match="not a dataset file"):
        read_idx(huge)
    good = tmp_path / "ok.gz"
    with gzip.open(good, "wb") as f:
        f.write(struct.pack(">BBBB3I", 0, 0, 0x08, 3, 2, 2, 2) + bytes(range(8)))
    assert read_idx(good).tolist() == [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    assert os.path.getsize(good) > 0


def test_bench_torch_with_an_unrelated_checkpoint_warns_before_timing(float_model, tmp_path):
    pytest.importorskip("torch")
    from tests.runtime.test_bench import _tiny_export

    run, model = _tiny_export(tmp_path / "pair")
    args = [
        "--batch-sizes",
        1,
        "--iters",
        1,
        "--rounds",
        1,
        "--warmup",
        0,
        "--no-peak",
        "--torch",
        run,
        "--no-torch-compile",
        "-q",
    ]
    unrelated = invoke("bench", float_model, *args)
    assert unrelated.exit_code == 0, unrelated.output
    warning = [line for line in unrelated.output.splitlines() if "is not the generator" in line]
    assert len(warning) == 1 and warning[0].startswith("Warning: --torch"), unrelated.output
    assert "arch dcgan vs tiny" in warning[0] and "nz 8 vs 8" not in warning[0]
    same = invoke("bench", model, *args)
    assert same.exit_code == 0 and "is not the generator" not in same.output, same.output
