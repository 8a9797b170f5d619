"""The folder and .npz datasets (edgegan.runtime.evaluation.folders, .npz_files) read through load_images: class
subfolders, grey detection, test splits, array layouts and dtypes, and the errors for broken input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgegan.runtime.evaluation.datasets import DataError, load_images


# ----------------------------------------------------------------------------------------------------- folder
def save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_folder_with_classes(tmp_path):
    rng = np.random.default_rng(0)
    save(tmp_path / "dogs" / "a.png", rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    save(tmp_path / "dogs" / "deep" / "b.jpg", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    save(tmp_path / "cats" / "c.bmp", rng.integers(0, 256, (16, 16), dtype=np.uint8))  # grey, mixed in
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_images("folder", data_dir=tmp_path, image_size=16)
    assert data.images.shape == (3, 16, 16, 3) and data.images.dtype == np.uint8
    assert data.class_names == ["cats", "dogs"]
    np.testing.assert_array_equal(data.labels, [0, 1, 1])
    grey = load_images("folder", data_dir=tmp_path, image_size=8, channels=1)
    assert grey.images.shape == (3, 8, 8, 1)


def test_folder_flat_grey_and_test_split(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        save(tmp_path / f"{i}.png", rng.integers(0, 256, (12, 10), dtype=np.uint8))
    data = load_images("folder", data_dir=tmp_path)  # all 12x10 and grey: kept as they are
    assert data.images.shape == (4, 12, 10, 1) and data.labels is None and data.class_names == []
    with pytest.raises(DataError, match="no test split.*test"):
        load_images("folder", "test", data_dir=tmp_path)
    save(tmp_path / "test" / "t.png", rng.integers(0, 256, (12, 10), dtype=np.uint8))
    assert load_images("folder", "test", data_dir=tmp_path).images.shape == (1, 12, 10, 1)
    assert len(load_images("folder", data_dir=tmp_path)) == 4  # test/ is not a training class


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="needs --data-dir"):
        load_images("folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_images("folder", data_dir=tmp_path / "empty")
    sizes = tmp_path / "sizes"
    save(sizes / "a.png", np.zeros((8, 8), np.uint8))
    save(sizes / "b.png", np.zeros((9, 8), np.uint8))
    with pytest.raises(DataError, match="--image-size"):
        load_images("folder", data_dir=sizes)
    broken = tmp_path / "broken"
    save(broken / "ok.png", np.zeros((8, 8), np.uint8))
    (broken / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="bad.png"):
        load_images("folder", data_dir=broken)
    mixed = tmp_path / "mixed"
    save(mixed / "loose.png", np.zeros((8, 8), np.uint8))
    save(mixed / "cls" / "x.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="loose"):
        load_images("folder", data_dir=mixed)


# ----------------------------------------------------------------------------------------------------- npz
def test_npz_variants(tmp_path):
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "u8.npz", images=u8)
    data = load_images("npz", data_dir=tmp_path / "u8.npz")
    assert data.images.shape == (5, 8, 8, 1) and data.labels is None and data.class_names == []
    np.testing.assert_array_equal(data.images[..., 0], u8)

    unit = rng.random((4, 3, 6, 6)).astype(np.float32)  # [N, C, H, W] in [0, 1]
    np.savez(
        tmp_path / "unit.npz",
        images=unit,
        labels=np.array([0, 2, 1, 2]),
        class_names=np.array(["a", "b", "c"]),
        test_images=unit[:2],
    )
    data = load_images("npz", data_dir=tmp_path / "unit.npz")
    assert data.images.shape == (4, 6, 6, 3) and data.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(data.images, np.rint(unit.transpose(0, 2, 3, 1) * 255).astype(np.uint8))
    assert data.labels.dtype == np.int64 and data.labels.tolist() == [0, 2, 1, 2]
    test = load_images("npz", "test", data_dir=tmp_path / "unit.npz")
    assert test.images.shape == (2, 6, 6, 3) and test.labels is None

    signed = np.array([-1.0, 0.0, 1.0], np.float32).reshape(1, 1, 3, 1).repeat(2, 0)  # [N, H, W, C] in [-1, 1]
    folder = tmp_path / "one"
    folder.mkdir()
    np.savez(folder / "s.npz", images=signed, labels=np.array([3, 0]))
    data = load_images("npz", data_dir=folder)  # a folder holding exactly one .npz
    assert data.images[0, 0, :, 0].tolist() == [0, 128, 255]
    assert data.class_names == ["0", "1", "2", "3"]


def test_npz_bad(tmp_path):
    def bad(match, **arrays):
        path = tmp_path / "bad.npz"
        np.savez(path, **arrays)
        with pytest.raises(DataError, match=match):
            load_images("npz", data_dir=path)

    ok = np.zeros((3, 8, 8), np.uint8)
    bad("no 'images' array.*pictures", pictures=ok)
    bad("shape", images=np.zeros((3, 5, 8, 8), np.uint8))
    bad("shape", images=np.zeros((3, 8), np.uint8))
    bad("one label per image", images=ok, labels=np.array([0, 1]))
    bad("negative labels", images=ok, labels=np.array([0, -1, 1]))
    bad("integers", images=ok, labels=np.array([0.0, 1.0, 1.0]))
    bad(r"\[0, 1\] or \[-1, 1\]", images=np.full((3, 8, 8), 2.0))
    bad("NaN", images=np.full((3, 8, 8), np.nan))
    bad("label 5 but only 2 class_names", images=ok, labels=np.array([0, 5, 1]), class_names=np.array(["a", "b"]))
    bad("without pickle", images=ok, labels=np.array([0, 1, 1]), class_names=np.array(["a", 1], dtype=object))
    with pytest.raises(DataError, match="no test split"):
        np.savez(tmp_path / "bad.npz", images=ok)
        load_images("npz", "test", data_dir=tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"definitely not a zip")
    with pytest.raises(DataError, match="not an .npz"):
        load_images("npz", data_dir=tmp_path / "junk.npz")
    with pytest.raises(DataError, match="2 .npz files"):
        load_images("npz", data_dir=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_images("npz", data_dir=tmp_path / "missing.npz")
