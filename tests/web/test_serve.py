"""`edgegan serve` (the headers WASM threads need, 127.0.0.1 by default, one-line errors) and the `--web` export
flags' checks; plain HTTP, no browser."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from urllib.request import urlopen

import pytest
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.export.variants.web import write_web
from edgegan.runtime.serve import ISOLATION_HEADERS
from tests.runtime.conftest import build_generator_onnx


@pytest.fixture
def page(tmp_path):
    write_web(tmp_path / "m" / "web", {"fp32": build_generator_onnx(tmp_path / "m" / "generator.onnx")})
    return tmp_path / "m" / "web"


def test_serve_sends_isolation_headers_on_127_0_0_1(page, tmp_path):
    where = tmp_path / "where.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgegan", "serve", str(page), "--port", "0", "--json", str(where), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        end = time.monotonic() + 60
        while not where.exists() and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.05)
        info = json.loads(where.read_text())
        assert info["host"] == "127.0.0.1" and info["url"] == f"http://127.0.0.1:{info['port']}/"
        for path, kind in (
            ("", "text/html"),
            ("app.js", "text/javascript"),
            ("generator.onnx", "application/octet-stream"),
        ):
            with urlopen(info["url"] + path, timeout=10) as response:
                assert response.headers["Content-Type"].startswith(kind)
                for key, value in ISOLATION_HEADERS.items():
                    assert response.headers[key] == value
        with urlopen(info["url"] + "manifest.json", timeout=10) as response:
            assert json.load(response)["models"][0]["file"] == "generator.onnx"
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_refuses_a_folder_that_is_not_a_page(tmp_path):
    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 1 and "is not an edgegan web page (no index.html, manifest.json)" in result.output
    assert "edgegan export RUN --out OUT --web" in result.output and "Traceback" not in result.output


def test_web_runtime_flag_is_checked_before_any_export_work(tmp_path):
    ckpt = tmp_path / "none.pt"
    ckpt.write_bytes(b"")
    alone = CliRunner().invoke(
        main, ["export", str(ckpt), "--out", str(tmp_path / "o"), "--web-runtime", str(tmp_path)]
    )
    assert alone.exit_code == 2 and "--web-runtime needs --web" in alone.output
    empty = CliRunner().invoke(
        main, ["export", str(ckpt), "--out", str(tmp_path / "o"), "--web", "--web-runtime", str(tmp_path)]
    )
    assert empty.exit_code == 2 and "missing ort.min.js, ort-wasm-simd-threaded.mjs" in empty.output
    assert "npm install onnxruntime-web@1.31.1" in empty.output and not (tmp_path / "o").exists()
