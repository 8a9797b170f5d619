"""Issue 19, item 2: `export --force` must not replace a folder that holds, or lies inside, anything the export
reads: the checkpoint the source resolves to, the run's checkpoints folder, the evaluator, the data folder.

Before: `export r --out r/checkpoints --force` replaced r/checkpoints (every epoch checkpoint gone); `--evaluator
g/evaluator.onnx --out g --force` and `--data-dir h/data --out h --force` deleted what the export had read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.runtime.files import file_sha256
from tests import quality_helpers


def _export(*args) -> object:
    return CliRunner().invoke(main, ["export", *map(str, args), "-q"])


def _listing(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): file_sha256(p) if p.is_file() else "dir" for p in sorted(folder.rglob("*"))}


@pytest.fixture
def run(tmp_path) -> Path:
    """A run folder with last.pt and an epoch checkpoint (a 16x16 MLP generator: the fastest export)."""
    run = tmp_path / "r"
    quality_helpers.make_checkpoint(run / "checkpoints" / "last.pt", seed=1)
    shutil.copy(run / "checkpoints" / "last.pt", run / "checkpoints" / "epoch_0001.pt")
    return run


def _refused(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert result.output.startswith("Error: --force replaces --out") and result.output.count("\n") == 1, result.output
    for needle in needles:
        assert needle in result.output, result.output


@pytest.mark.parametrize("source", ["run", "epoch", "linked run"])
def test_force_into_the_runs_checkpoints_folder_is_refused(source, run, tmp_path):
    if source == "linked run":
        os.symlink(run, tmp_path / "link")  # the guard compares real paths, not the path as typed
    given = {"run": run, "epoch": run / "checkpoints" / "epoch_0001.pt", "linked run": tmp_path / "link"}[source]
    before = _listing(run)
    needle = "epoch_0001.pt" if source == "epoch" else "that this export reads"  # a file source: the old guard
    _refused(_export(given, "--out", run / "checkpoints", "--force", "--no-quality-gate"), needle)
    assert _listing(run) == before


def test_force_into_a_folder_inside_the_checkpoints_folder_is_refused(run):
    (run / "checkpoints" / "old").mkdir()
    (run / "checkpoints" / "old" / "note.txt").write_text("kept")
    before = _listing(run)
    _refused(
        _export(run, "--out", run / "checkpoints" / "old", "--force", "--no-quality-gate"),
        "lies inside the run's checkpoints folder",
    )
    assert _listing(run) == before


def test_force_into_the_evaluators_folder_is_refused(run, evaluator_onnx, tmp_path):
    g = tmp_path / "g"
    g.mkdir()
    shutil.copy(evaluator_onnx, g / "evaluator.onnx")
    before = _listing(g)
    _refused(_export(run, "--out", g, "--force", "--evaluator", g / "evaluator.onnx"), "the evaluator")
    assert _listing(g) == before


def test_force_into_the_default_evaluators_folder_is_refused(run, evaluator_onnx, tmp_path, monkeypatch):
    """The default evaluator is only known once the checkpoint names its dataset; it is protected all the same."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = tmp_path / "xdg" / "edgegan" / "evaluators"
    folder.mkdir(parents=True)
    shutil.copy(evaluator_onnx, folder / "npz.onnx")  # quality_helpers' checkpoints say dataset "npz"
    before = _listing(folder)
    _refused(_export(run, "--out", folder, "--force"), "the evaluator")
    assert _listing(folder) == before


@pytest.mark.parametrize("where", ["data inside out", "out inside data"])
def test_force_and_the_data_folder(where, run, tmp_path):
    h = tmp_path / "h"
    (h / "data").mkdir(parents=True)
    (h / "data" / "train.npz").write_bytes(b"someone's data")
    (h / "data" / "raw").mkdir()
    (h / "data" / "raw" / "train-images.gz").write_bytes(b"more of it")
    out = h if where == "data inside out" else h / "data" / "raw"
    before = _listing(h)
    result = _export(run, "--out", out, "--force", "--data-dir", h / "data", "--no-quality-gate")
    _refused(result, "the data folder", "lies inside" if where == "out inside data" else "it holds")
    assert _listing(h) == before


def test_force_beside_the_checkpoints_still_replaces(run):
    """An --out inside the run but outside checkpoints/ is the export's own to replace."""
    out = run / "export"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    result = _export(run, "--out", out, "--force", "--no-quality-gate")
    assert result.exit_code == 0, result.output
    assert (out / "generator.onnx").is_file() and not (out / "stale.txt").exists()
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "checkpoints" / "epoch_0001.pt").is_file()
