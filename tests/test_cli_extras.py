from __future__ import annotations

import subprocess
import sys

import pytest

# Run the CLI in a child where importing torch or onnx fails, as in an install without the extras.
CHILD = """
import sys
sys.modules["torch"] = None
sys.modules["onnx"] = None
from edgegan.cli import main
main(sys.argv[1:], prog_name="edgegan")
"""


@pytest.mark.parametrize(
    "args,extra",
    [
        (["train", "--max-steps", "1", "--out", "OUT"], "train"),
        (["export", "RUN", "--out", "OUT"], "export"),
        (["evaluator", "train", "--dataset", "fashion-mnist"], "train"),
    ],
)
def test_missing_extra_is_a_message_not_a_traceback(tmp_path, args, extra):
    args = [str(tmp_path / a) if a in ("OUT", "RUN") else a for a in args]
    (tmp_path / "RUN").mkdir()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"pip install 'edgegan[{extra}]'" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--help"],
        ["evaluator", "--help"],
        ["evaluator", "train", "--help"],
        ["export", "--help"],
        ["sample", "--help"],
        ["serve", "--help"],
    ],
)
def test_every_help_works_without_torch_or_onnx(args):
    """--help is the first thing a runtime-only user types: the architecture names come from a torch-free table."""
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: edgegan ") and "Traceback" not in done.stderr
    if args[0] == "train":
        assert "[gan|dcgan]" in done.stdout  # the --arch choices, without importing the models
