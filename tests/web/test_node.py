"""JavaScript in node: runtime/web/latents.js gives Python's latents bit for bit, and examples/node/sample.mjs
(onnxruntime-node + that rule) writes exactly the uint8 images `edgegan sample --npy` writes for the same seed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.runtime.contract import KEY_LATENT_RULE
from edgegan.runtime.latent_rule import _ppnd7, rule_normals, rule_truncated
from tests.runtime.conftest import build_generator_onnx
from tests.web.conftest import REPO

LATENTS_JS = (REPO / "runtime" / "web" / "latents.js").as_uri()
EXAMPLE = REPO / "examples" / "node" / "sample.mjs"


def _node(node: str, script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [node, "--input-type=module", "-e", script, "--", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_js_normal_equals_python_for_every_24_bit_uniform(node, tmp_path):
    """The whole float part of the rule, all 2**24 inputs: same float32 bits (so the rule is bit-identical)."""
    out = tmp_path / "all.f32"
    _node(
        node,
        f"""
        import {{ ppnd7 }} from "{LATENTS_JS}";
        import {{ writeFileSync }} from "node:fs";
        const n = 1 << 24, z = new Float32Array(n);
        for (let u = 0; u < n; u++) z[u] = ppnd7(u);
        writeFileSync(process.argv[1], Buffer.from(z.buffer));""",
        str(out),
    )
    js = np.fromfile(out, np.uint32)
    assert np.array_equal(js, _ppnd7(np.arange(2**24, dtype=np.uint32)).view(np.uint32))


@pytest.mark.parametrize(
    "seed, start, stop, nz, truncation",
    [
        (0, 0, 64, 100, None),
        (42, 5, 37, 17, None),
        (2**64 - 1, 0, 20, 64, None),
        (7, 0, 40, 32, 0.5),
        (123456789, 3, 9, 100, 0.05),
    ],
)
def test_js_latents_equal_pythons_bits(node, tmp_path, seed, start, stop, nz, truncation):
    out = tmp_path / "z.f32"
    _node(
        node,
        f"""
        import {{ latents }} from "{LATENTS_JS}";
        import {{ writeFileSync }} from "node:fs";
        const z = latents(BigInt(process.argv[2]), {start}, {stop}, {nz}, {truncation if truncation else "null"});
        writeFileSync(process.argv[1], Buffer.from(z.buffer));""",
        str(out),
        str(seed),
    )
    js = np.fromfile(out, np.float32).reshape(stop - start, nz)
    py = (
        rule_normals(seed, start, stop, nz) if truncation is None else rule_truncated(seed, start, stop, nz, truncation)
    )
    assert np.array_equal(js.view(np.uint32), py.view(np.uint32))


def _python_sample(model: Path, npy: Path, *args: str) -> np.ndarray:
    result = CliRunner().invoke(main, ["sample", str(model), "--npy", str(npy), "-q", *args])
    assert result.exit_code == 0, result.output
    return np.load(npy)


def _node_sample(node: str, model: Path, npy: Path, *args: str) -> tuple[np.ndarray, str]:
    result = subprocess.run(
        [node, str(EXAMPLE), str(model), "--npy", str(npy), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return np.load(npy), result.stderr


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("node")
    return {
        "cond28": build_generator_onnx(root / "cond28.onnx", nz=16, num_classes=3, height=28, width=28),
        "rgb32": build_generator_onnx(root / "rgb32.onnx", nz=12, channels=3, height=32, width=32, output="uint8_nhwc"),
        "legacy": build_generator_onnx(root / "legacy.onnx", nz=8, metadata={KEY_LATENT_RULE: None}),
    }


@pytest.mark.parametrize(
    "name, args",
    [
        ("cond28", ["--seed", "3", "-n", "8", "--label", "2"]),
        ("cond28", ["--seed", "0", "-n", "7"]),
        ("cond28", ["--seed", "11", "-n", "5", "--truncation", "0.7"]),
        ("rgb32", ["--seed", "1", "-n", "6"]),
    ],
)
def test_node_example_writes_edgegan_samples_images(node, models, tmp_path, name, args):
    py = _python_sample(models[name], tmp_path / "py.npy", *args)
    js, _ = _node_sample(node, models[name], tmp_path / "js.npy", *args, "--png", str(tmp_path / "grid.png"))
    assert js.dtype == np.uint8 and np.array_equal(js, py)
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_node_example_on_a_real_export(node, tmp_path):
    """A tiny DCGAN through `edgegan export` (the phase-convolution graph users ship): the same uint8 array."""
    pytest.importorskip("torch", reason="`edgegan export` needs torch")
    from tests.runtime.test_seed_parity import _checkpoint

    result = CliRunner().invoke(
        main,
        ["export", str(_checkpoint(tmp_path / "c.pt", 3)), "--out", str(tmp_path / "m"), "--no-quality-gate", "-q"],
    )
    assert result.exit_code == 0, result.output
    model = tmp_path / "m" / "generator.onnx"
    for seed in range(4):
        args = ["--seed", str(seed), "-n", "16", "--label", "1"]
        js, _ = _node_sample(node, model, tmp_path / "js.npy", *args)
        assert np.array_equal(js, _python_sample(model, tmp_path / "py.npy", *args)), seed


def test_node_example_on_an_old_model_says_seeds_differ(node, models, tmp_path):
    js, note = _node_sample(node, models["legacy"], tmp_path / "js.npy", "--seed", "4", "-n", "3")
    assert js.shape == (3, 4, 5, 1) and "numpy-pcg64-ziggurat" in note and "not Python's" in note


def test_node_example_refuses_a_file_that_is_not_a_generator(node, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07" + b"plain bytes")
    result = subprocess.run([node, str(EXAMPLE), str(bad)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    assert "not an edgegan generator" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
