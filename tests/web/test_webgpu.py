"""The page's WebGPU path (onnxruntime-web's WebGPU execution provider), in headless chromium with software WebGPU
(SwiftShader), so it runs in CI without a GPU: the page finds an adapter, the benchmark times a `webgpu` row, and the
images follow Python's for the same seed. A browser of its own (other flags than test_browser's)."""

from __future__ import annotations

import numpy as np
import pytest

from edgegan.export.variants.web import write_web
from edgegan.runtime import Generator
from tests.runtime.conftest import build_generator_onnx
from tests.web.cdp import SOFTWARE_WEBGPU, Browser
from tests.web.conftest import ORT_WEB_DIST


@pytest.fixture(scope="module")
def page(tmp_path_factory, chromium, serve):
    root = tmp_path_factory.mktemp("webgpu")
    model = build_generator_onnx(root / "generator.onnx", nz=16, num_classes=3, height=28, width=28)
    write_web(root / "web", {"fp32": model}, ORT_WEB_DIST)
    browser = Browser(chromium, extra_args=SOFTWARE_WEBGPU)
    page = browser.open(serve(root / "web"))
    page.evaluate("window.edgegan.ready.then(() => true, () => true)")
    yield page, model
    page.close()
    browser.close()


def test_webgpu_runs_and_follows_the_seed(page):
    page, model = page
    if not page.evaluate("edgegan.webgpu()"):
        pytest.skip("this chromium gives no WebGPU adapter, not even SwiftShader's")  # the WASM tests still run
    got = page.evaluate("edgegan.sample(3, 4, 2, null, null, 'webgpu').then(r => Array.from(r.pixels))")
    got = np.array(got, np.uint8).reshape(4, 28, 28, 1)
    want = Generator(model).sample(4, seed=3, labels=2)
    assert np.abs(got.astype(np.int16) - want.astype(np.int16)).max() <= 1
    run = page.evaluate("edgegan.bench({batches: [1], seconds: 0.2})", timeout=300)
    rows = {row["setup"]: row for row in run["rows"]}
    assert set(rows) == {"wasm", "webgpu"} and rows["webgpu"]["error"] is None and rows["webgpu"]["p50_ms"] > 0
