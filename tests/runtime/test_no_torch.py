"""Proof of lightness: with `torch` blocked, the runtime imports, samples, and `edgegan sample` runs; the base
install does not depend on torch; `edgegan sample --help` does not even import onnxruntime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import tomllib

REPO = Path(__file__).resolve().parents[2]

BLOCKED_SCRIPT = r"""
import json, sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import numpy as np
import edgegan.runtime
from edgegan.runtime import Generator
from click.testing import CliRunner
from edgegan.cli import main

model, npy = sys.argv[1], sys.argv[2]
g = Generator(model)
images = g.sample(5, seed=7, labels="trouser", truncation=0.8)
result = CliRunner().invoke(main, ["sample", model, "-n", "5", "--seed", "7", "--npy", npy, "-o", npy + ".png"])
heavy = sorted(m for m in ("torch", "edgegan.trainer", "edgegan.export", "onnx") if sys.modules.get(m) is not None)
print(json.dumps({"shape": list(images.shape), "sum": int(images.sum()), "exit": result.exit_code,
                  "output": result.output, "heavy": heavy}))
"""

HELP_SCRIPT = r"""
import json, sys
sys.modules["torch"] = None
from click.testing import CliRunner
from edgegan.cli import main
result = CliRunner().invoke(main, ["sample", "--help"])
print(json.dumps({"exit": result.exit_code, "loaded": sorted(m for m in ("onnxruntime", "PIL", "torch") if sys.modules.get(m))}))
"""


def _run(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_runtime_samples_with_torch_blocked(cond_model, tmp_path):
    npy = tmp_path / "x.npy"
    report = _run(BLOCKED_SCRIPT, str(cond_model), str(npy))
    assert report["shape"] == [5, 4, 5, 3] and report["sum"] > 0
    assert report["exit"] == 0, report["output"]
    assert report["heavy"] == []  # neither torch nor trainer/export nor onnx got imported
    images = np.load(npy)
    assert images.shape == (5, 4, 5, 3) and images.dtype == np.uint8


def test_sample_help_imports_nothing_heavy():
    report = _run(HELP_SCRIPT)
    assert report["exit"] == 0
    assert report["loaded"] == []  # neither onnxruntime nor Pillow: help is instant


def test_base_install_has_no_torch():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = [
        dep.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        for dep in project["dependencies"]
    ]
    assert "torch" not in base and "onnx" not in base
    assert {"numpy", "onnxruntime"} <= set(base)
