"""The runtime core stands alone: `import edgegan.runtime` plus loading and sampling a Generator pull in none of
the sub-packages (bench, evaluation), neither export nor trainer, nor torch, onnx or tensorrt; and edgegan never
imports a top-level `runtime`, `export` or `trainer`, so files of those names in the working folder are harmless.

Each check runs in a fresh interpreter (a subprocess), since this test process has long imported all of those."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CORE_SCRIPT = r"""
import json, sys
import edgegan.runtime
from edgegan.runtime import Generator

images = Generator(sys.argv[1]).sample(3, seed=1, labels="trouser")  # uint8 [3, H, W, C]
# tensorrt too: it is imported only when a .plan engine is opened
off_core = ("edgegan.runtime.bench", "edgegan.runtime.evaluation", "edgegan.export", "edgegan.trainer", "torch", "onnx",
            "tensorrt")
loaded = sorted(m for m, module in sys.modules.items() if module is not None
                and any(m == name or m.startswith(name + ".") for name in off_core))
top_level = sorted(m for m in ("runtime", "export", "trainer") if m in sys.modules)
print(json.dumps({"shape": list(images.shape), "loaded": loaded, "top_level": top_level}))
"""

TOP_LEVEL_NAMES = ("runtime", "export", "trainer")


@pytest.fixture
def hostile_folder(tmp_path) -> Path:
    """A working folder whose runtime.py, export.py and trainer.py refuse to be imported."""
    for name in TOP_LEVEL_NAMES:
        (tmp_path / f"{name}.py").write_text(
            f"raise ImportError('the top-level name {name!r} was imported; edgegan must import edgegan.{name}')\n"
        )
    return tmp_path


def _python(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run this interpreter with `args` in `cwd` (for -c and -m, cwd is first on sys.path)."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_core_samples_without_sub_packages_export_trainer_torch_or_onnx(cond_model, hostile_folder):
    proc = _python(["-c", CORE_SCRIPT, str(cond_model)], hostile_folder)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["shape"] == [3, 4, 5, 3]
    assert report["loaded"] == []
    assert report["top_level"] == []


@pytest.mark.parametrize("args", [["--help"], ["sample", "--help"]])
def test_cli_help_ignores_top_level_files_in_the_working_folder(args, hostile_folder):
    proc = _python(["-m", "edgegan", *args], hostile_folder)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout
    assert "ImportError" not in proc.stderr
