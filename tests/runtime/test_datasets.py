"""edgegan.runtime.evaluation.datasets: IDX files, the search order, downloads from a local mirror, resizing
(folders and .npz files: test_image_readers.py).

Hermetic: every test gets an empty cache, no $EDGEGAN_DATA, the system dataset folder pointed into tmp_path, and
$EDGEGAN_MIRROR pointing at a closed local port, so nothing here can reach the internet.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgegan.runtime.evaluation import datasets
from edgegan.runtime.evaluation.datasets import DataError, cache_dir, convert, load_images, locate, read_idx
from tests.real_data import missing

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


# ----------------------------------------------------------------------------------------------------- helpers
def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    """Write `arr` as an IDX file (uint8 or int32), gzip-compressed when `gz`."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[arr.dtype]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    blob = header + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(blob) if gz else blob)
    return path


def write_split(folder: Path, split: str = "train", n: int = 12, seed: int = 0, gz: bool = True) -> np.ndarray:
    """A tiny MNIST-shaped split (uint8 [n, 28, 28] images, labels arange % 10) in `folder`; returns the images."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    prefix = "train" if split == "train" else "t10k"
    ext = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images, gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels, gz)
    return images


def dead_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def hermetic(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGEGAN_DATA", raising=False)
    monkeypatch.setenv("EDGEGAN_MIRROR", dead_url())  # a forgotten mirrors= still cannot reach the internet
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")


@pytest.fixture
def server(tmp_path):
    """A local HTTP mirror serving tmp_path/www; yields (base URL, folder, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):  # keep pytest output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", root, requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def trust(monkeypatch, name: str, folder: Path, files=TRAIN_FILES) -> None:
    """Make the served files' real SHA-256 the expected ones."""
    table = {f: (hashlib.sha256((folder / f).read_bytes()).hexdigest(),) for f in files}
    monkeypatch.setitem(datasets.SHA256, name, table)


# ----------------------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, gz):
    images = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    out = read_idx(write_idx(tmp_path / "x.idx", images, gz))
    assert out.dtype == np.uint8 and out.shape == (5, 28, 28) and out.flags.writeable
    np.testing.assert_array_equal(out, images)
    ints = np.array([[1, -2, 70000]], ">i4")  # big-endian on disk, native in memory
    got = read_idx(write_idx(tmp_path / "i.idx", ints, gz))
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, [[1, -2, 70000]])


def test_read_idx_corrupt(tmp_path):
    images = np.zeros((4, 28, 28), np.uint8)
    raw = write_idx(tmp_path / "raw", images, gz=False).read_bytes()
    cases = {
        "truncated": raw[:-10],
        "longer than its header": raw + b"\0" * 3,
        "not an IDX": b"\x01\x02\x03\x04" + raw[4:],
        "header needs": raw[:9],
        "empty": b"",
    }
    for expect, blob in cases.items():
        path = tmp_path / "bad"
        path.write_bytes(blob)
        with pytest.raises(DataError, match=expect):
            read_idx(path)
    gz = gzip.compress(raw)
    (tmp_path / "bad.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as err:
        read_idx(tmp_path / "bad.gz")
    assert "bad.gz" in str(err.value)


def test_idx_images_labels_mismatch(tmp_path):
    write_split(tmp_path, n=6)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="6 images but .* 5 labels"):
        load_images("mnist", data_dir=tmp_path, download=False)


# ----------------------------------------------------------------------------------------------------- search order
def test_search_order(tmp_path, monkeypatch):
    data_dir, env_dir = tmp_path / "mine", tmp_path / "env"
    a = write_split(data_dir / "mnist", seed=1)  # --data-dir/<name>
    b = write_split(env_dir / "mnist", seed=2, gz=False)  # $EDGEGAN_DATA/<name>, raw IDX
    c = write_split(tmp_path / "system" / "mnist", seed=3)
    d = write_split(cache_dir("mnist"), seed=4)
    monkeypatch.setenv("EDGEGAN_DATA", str(env_dir))
    got = load_images("mnist", data_dir=data_dir, download=False)
    np.testing.assert_array_equal(got.images[..., 0], a)
    assert got.source == str(data_dir / "mnist")
    np.testing.assert_array_equal(load_images("mnist", download=False).images[..., 0], b)
    monkeypatch.delenv("EDGEGAN_DATA")
    np.testing.assert_array_equal(load_images("mnist", download=False).images[..., 0], c)
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", tmp_path / "nowhere")
    np.testing.assert_array_equal(load_images("mnist", download=False).images[..., 0], d)
    assert locate("mnist", data_dir)[:2] == [data_dir / "mnist", data_dir]


def test_files_directly_in_edgegan_data(tmp_path, monkeypatch):
    images = write_split(tmp_path / "flat", split="test", n=7)
    monkeypatch.setenv("EDGEGAN_DATA", str(tmp_path / "flat"))
    data = load_images("fashion-mnist", "test", download=False)
    assert data.images.shape == (7, 28, 28, 1) and data.labels.dtype == np.int64
    np.testing.assert_array_equal(data.images[..., 0], images)
    assert data.class_names[0] == "T-shirt/top" and len(data.class_names) == 10


def test_xdg_cache_home(tmp_path, monkeypatch):
    assert cache_dir("mnist") == tmp_path / "cache" / "edgegan" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir("mnist") == Path.home() / ".cache" / "edgegan" / "mnist"


# ----------------------------------------------------------------------------------------------------- download
def test_download_into_cache(server, monkeypatch):
    url, www, requests = server
    images = write_split(www, n=9, seed=5)
    trust(monkeypatch, "mnist", www)
    data = load_images("mnist", mirrors=[dead_url(), url], progress=False)  # the first mirror is down
    np.testing.assert_array_equal(data.images[..., 0], images)
    assert data.class_names == [str(i) for i in range(10)]
    cached = cache_dir("mnist")
    assert sorted(p.name for p in cached.iterdir()) == sorted(TRAIN_FILES)  # no temp files left
    for f in TRAIN_FILES:
        assert (cached / f).read_bytes() == (www / f).read_bytes()
    assert sorted(requests) == sorted("/" + f for f in TRAIN_FILES)
    load_images("mnist", mirrors=[url], progress=False)  # now found in the cache: no new request
    assert len(requests) == 2


def test_download_mirror_from_env(server, monkeypatch):
    url, www, requests = server
    write_split(www, n=3)
    trust(monkeypatch, "fashion-mnist", www)
    monkeypatch.setenv("EDGEGAN_MIRROR", f"{dead_url()},{url}")
    data = load_images("fashion-mnist", progress=False)
    assert data.images.shape == (3, 28, 28, 1) and data.source == str(cache_dir("fashion-mnist"))
    assert len(requests) == 2


def test_checksum_mismatch_leaves_nothing(server, monkeypatch):
    url, www, _ = server
    write_split(www, n=3)
    monkeypatch.setitem(datasets.SHA256, "mnist", {f: ("0" * 64,) for f in TRAIN_FILES})
    with pytest.raises(DataError) as err:
        load_images("mnist", mirrors=[url], progress=False)
    got = hashlib.sha256((www / TRAIN_FILES[0]).read_bytes()).hexdigest()
    message = str(err.value)
    assert "checksum mismatch" in message and url + TRAIN_FILES[0] in message
    assert "0" * 64 in message and got in message
    cached = cache_dir("mnist")
    assert not cached.exists() or list(cached.iterdir()) == []


def test_nothing_found_says_where_it_looked(tmp_path):
    mirror = dead_url()
    with pytest.raises(DataError) as err:
        load_images("fashion-mnist", "test", data_dir=tmp_path / "mine", mirrors=[mirror], progress=False)
    message = str(err.value)
    for place in locate("fashion-mnist", tmp_path / "mine"):
        assert str(place) in message
    assert mirror + "t10k-images-idx3-ubyte.gz" in message
    assert "--data-dir" in message and "EDGEGAN_DATA" in message
    assert "apt-get install dataset-fashion-mnist" in message
    with pytest.raises(DataError, match="download=False"):
        load_images("mnist", download=False)


# ----------------------------------------------------------------------------------------------------- pixels
def test_convert_resize_and_channels():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 28, 28, 3), dtype=np.uint8)
    grey = convert(rgb, channels=1)
    assert grey.shape == (3, 28, 28, 1)
    expected = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb])
    np.testing.assert_array_equal(grey[..., 0], expected)  # exactly Pillow's luminance
    back = convert(grey, channels=3)
    assert back.shape == (3, 28, 28, 3) and (back == grey).all()
    big = convert(grey, image_size=64)
    assert big.shape == (3, 64, 64, 1)
    ref = np.asarray(Image.fromarray(grey[1, ..., 0]).resize((64, 64), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(big[1, ..., 0], ref)
    flat = convert(np.full((2, 28, 28, 1), 77, np.uint8), image_size=16)
    assert flat.shape == (2, 16, 16, 1) and (flat == 77).all()
    wide = np.zeros((1, 10, 30, 1), np.uint8)
    wide[:, :, 10:20] = 255  # the middle third survives a center crop
    cropped = convert(wide, image_size=10)
    assert cropped.shape == (1, 10, 10, 1) and cropped[0, 5, 2:8, 0].min() == 255
    assert convert(grey) is grey


def test_mnist_resized_to_rgb_64(tmp_path):
    write_split(tmp_path, n=4)
    data = load_images("mnist", data_dir=tmp_path, image_size=64, channels=3, download=False)
    assert data.images.shape == (4, 64, 64, 3) and data.images.dtype == np.uint8
    assert (data.images[..., 0] == data.images[..., 2]).all()


def test_bad_requests(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'cifar'.*fashion-mnist"):
        load_images("cifar")
    with pytest.raises(DataError, match="unknown split"):
        load_images("mnist", "valid")
    with pytest.raises(DataError, match="channels"):
        load_images("mnist", channels=4)
    with pytest.raises(DataError, match="image size"):
        load_images("mnist", image_size=0)


# ----------------------------------------------------------------------------------------------------- real data
def test_real_fashion_mnist_test_split(monkeypatch):
    if not (REAL_FASHION / "t10k-images-idx3-ubyte.gz").is_file():
        missing(f"real Fashion-MNIST not installed in {REAL_FASHION} (apt-get install dataset-fashion-mnist)")
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", REAL_FASHION.parent)  # found through the search order
    data = load_images("fashion-mnist", "test", download=False)
    assert data.images.shape == (10000, 28, 28, 1) and data.images.dtype == np.uint8
    assert data.labels.shape == (10000,) and data.labels.dtype == np.int64
    assert data.labels.min() == 0 and data.labels.max() == 9
    assert np.bincount(data.labels).tolist() == [1000] * 10  # the published test split is balanced
    assert data.class_names == [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    assert data.source == str(REAL_FASHION) and 0 < data.images.mean() < 255


def test_download_checks_the_published_table(server, monkeypatch):
    """Serve Debian's real Fashion-MNIST test files with the module's own SHA-256 table (nothing patched)."""
    if not (REAL_FASHION / "t10k-labels-idx1-ubyte.gz").is_file():
        missing(f"real Fashion-MNIST not installed in {REAL_FASHION} (apt-get install dataset-fashion-mnist)")
    url, www, _ = server
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (www / f).write_bytes((REAL_FASHION / f).read_bytes())
    data = load_images("fashion-mnist", "test", mirrors=[url], progress=False)
    assert data.images.shape == (10000, 28, 28, 1) and data.source == str(cache_dir("fashion-mnist"))
