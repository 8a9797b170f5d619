"""What a cold start pays for, and what it may skip without changing a single pixel.

- `import edgegan.runtime.providers` (every Generator imports it) no longer loads hashlib: its OpenSSL load is a
  few ms of every start and only `optimized_model` needs it.
- The pre-optimized model (`providers.optimized_model`, loaded with graph optimization "disable") skips onnxruntime's
  optimizer at load and gives the same images, byte for byte, and the same contract as the original .onnx.
- benchmarks/cold_start.py: the pair ratios it reports and the environment its children run in.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgegan.runtime import Generator
from edgegan.runtime.providers import optimized_model, session_options


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_providers_import_leaves_hashlib_and_onnxruntime_unloaded():
    loaded = _modules_after("import edgegan.runtime.providers")
    assert "hashlib" not in loaded
    assert "onnxruntime" not in loaded
    assert "edgegan.runtime.files" not in loaded  # the cache root is looked up only where a cache is used


def test_optimized_model_still_builds_its_file_once(float_model, tmp_path):
    first = optimized_model(float_model, tmp_path)
    written = first.stat().st_mtime_ns
    again = optimized_model(float_model, tmp_path)
    assert again == first and again.stat().st_mtime_ns == written  # found, not rebuilt
    assert first.name.startswith("generator.ortopt-") and first.suffix == ".onnx"


@pytest.mark.parametrize("fixture", ["float_model", "cond_model", "uint8_model"])
def test_pre_optimized_model_gives_the_same_images_and_contract(fixture, request, tmp_path):
    model = request.getfixturevalue(fixture)
    plain = Generator(model)
    fast = Generator(optimized_model(model, tmp_path), session_options=session_options(graph_optimization="disable"))
    assert fast.contract == plain.contract
    labels = {"labels": [0, 1, 2, 1]} if plain.conditional else {}
    a, b = plain.sample(4, seed=3, **labels), fast.sample(4, seed=3, **labels)
    assert a.dtype == np.uint8 and a.shape[0] == 4
    assert a.tobytes() == b.tobytes()


def test_cold_start_children_read_cached_bytecode_except_the_no_cache_row(tmp_path, monkeypatch):
    from benchmarks import cold_start

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    cached = cold_start.child_env("runtime", tmp_path)
    assert "PYTHONDONTWRITEBYTECODE" not in cached and cached["PYTHONPYCACHEPREFIX"] == str(tmp_path)
    uncached = cold_start.child_env(cold_start.NO_BYTECODE, tmp_path)
    assert uncached["PYTHONDONTWRITEBYTECODE"] == "1" and "PYTHONPYCACHEPREFIX" not in uncached


def test_cold_start_pair_ratios_take_the_median_of_each_pair():
    from benchmarks import cold_start

    runs = {
        "a": [{"wall_s": 1.0}, {"wall_s": 3.0}, {"wall_s": 2.0}],
        "b": [{"wall_s": 2.0}, {"wall_s": 2.0}, {"wall_s": 4.0}],
    }
    # pairs: 0.5, 1.5, 0.5 -> median 0.50, range 0.50-1.50 (the ratio of medians would be 1.00)
    assert cold_start.pair_ratios(runs, "a", "b", "wall_s") == "0.50x (0.50-1.50 over 3 pairs)"
