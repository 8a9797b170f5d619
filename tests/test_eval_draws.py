"""benchmarks/probes/eval_draws.py: one row per model over its eval draws; mixed setups and repeated draws refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.probes.eval_draws import main, summarize


def _report(tmp_path: Path, name: str, model: str, seed: int, precision: float, n: int = 5000, sha: str = "e1") -> Path:
    path = tmp_path / f"{name}.json"
    report = {
        "model": {"path": model, "n": n, "seed": seed},
        "evaluator": {"sha256": sha},
        "metrics": {"precision": precision, "recall": 0.8, "fid": 10.0 + seed},
    }
    path.write_text(json.dumps(report))
    return path


def test_summarize_gives_one_row_per_model_with_the_draws_spread(tmp_path):
    paths = [_report(tmp_path, f"a{s}", "m/a.onnx", s, p) for s, p in ((0, 0.74), (1, 0.76), (2, 0.75))]
    paths.append(_report(tmp_path, "b0", "m/b.onnx", 0, 0.70))
    rows = {row["model"]: row for row in summarize(paths)}
    a = rows["m/a.onnx"]
    assert a["seeds"] == [0, 1, 2] and a["precision_seed0"] == 0.74
    assert a["precision_mean"] == pytest.approx(0.75) and a["precision_sd"] == pytest.approx(0.01)
    assert (a["precision_min"], a["precision_max"], a["fid_mean"]) == (0.74, 0.76, pytest.approx(11.0))
    assert rows["m/b.onnx"]["precision_sd"] == 0.0


@pytest.mark.parametrize(
    "second, message",
    [
        ({"seed": 1, "n": 1000}, "mix n / evaluators"),
        ({"seed": 1, "sha": "e2"}, "mix n / evaluators"),
        ({"seed": 0}, "scored twice"),
    ],
)
def test_mixed_setups_and_repeated_draws_are_refused_in_one_line(tmp_path, capsys, second, message):
    first = _report(tmp_path, "a0", "m/a.onnx", 0, 0.74)
    other = _report(tmp_path, "a1", "m/a.onnx", precision=0.75, **second)
    assert main([str(first), str(other)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
