"""`edgegan bench-report`: real `edgegan bench --json` runs with different settings merged into one table, plot and
JSON with ratios to a baseline; the machine's description in every run; clear errors for files it cannot merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.runtime.bench import merge
from edgegan.runtime.bench.harness import run_bench
from edgegan.runtime.bench.merge import merge_runs, variant_name
from edgegan.runtime.bench.report import write_json
from edgegan.runtime.bench.runners import BenchError


@pytest.fixture(scope="module")
def two_runs(make_model, tmp_path_factory) -> tuple[Path, Path]:
    """Two real runs of one tiny model, written as `edgegan bench --json` writes them: batch 1,2 at 1 thread, and
    batch 2 at 1 and 2 threads."""
    model = make_model("shared/generator.onnx")
    out = tmp_path_factory.mktemp("runs")
    for name, batches, threads in (("laptop", (1, 2), (1,)), ("board", (2,), (1, 2))):
        result = run_bench([model], batches=batches, threads=threads, iters=3, rounds=1, warmup=0, peak=False)
        write_json(result, out / f"{name}.json")
    return out / "laptop.json", out / "board.json"


def _relabel(path: Path, label: str, to: Path) -> Path:
    """The same run as if another machine had written it (only the label differs)."""
    data = json.loads(path.read_text())
    data["machine"]["label"] = label
    to.write_text(json.dumps(data))
    return to


def test_bench_json_carries_the_machine(two_runs):
    data = json.loads(two_runs[0].read_text())
    assert data["kind"] == "edgegan bench" and data["format"] == 1
    machine = data["machine"]
    for key in (
        "cpu",
        "arch",
        "board",
        "gpus",
        "logical_cpus",
        "usable_cpus",
        "flags",
        "memory_gib",
        "os",
        "loadavg",
        "loadavg_end",
        "providers",
        "versions",
        "label",
    ):
        assert key in machine, key
    assert machine["label"] and machine["label"].endswith(f"{machine['usable_cpus']}cpu")


def test_merge_two_runs_with_ratios_to_the_baseline(two_runs, tmp_path):
    laptop, board = two_runs[0], _relabel(two_runs[1], "raspberry-pi-4-4cpu", tmp_path / "pi.json")
    merged = merge_runs([laptop, board])
    laptop_label = json.loads(laptop.read_text())["machine"]["label"]
    assert merged["kind"] == "edgegan bench-report" and merged["baseline"] == laptop_label
    assert [r["label"] for r in merged["runs"]] == [laptop_label, "raspberry-pi-4-4cpu"]
    rows = {(r["device"], r["threads"], r["batch"]): r for r in merged["rows"]}
    assert len(rows) == len(merged["rows"]) == 4  # laptop t1 b1, t1 b2; pi t1 b2, t2 b2
    assert rows[(laptop_label, 1, 1)]["vs_baseline"] == 1.0
    pi, base = rows[("raspberry-pi-4-4cpu", 1, 2)], rows[(laptop_label, 1, 2)]
    assert pi["vs_baseline"] == pytest.approx(pi["p50_ms"] / base["p50_ms"])
    assert pi["baseline_provider"] == "CPUExecutionProvider"
    assert rows[("raspberry-pi-4-4cpu", 2, 2)]["vs_baseline"] is None  # the laptop ran no 2-thread row
    assert {r["variant"] for r in merged["rows"]} == {"shared/generator.onnx"}
    # The same configuration's rows sit together, the devices in the order given.
    keys = [(r["threads"], r["batch"], r["device"]) for r in merged["rows"]]
    assert keys == [
        (1, 1, laptop_label),
        (1, 2, laptop_label),
        (1, 2, "raspberry-pi-4-4cpu"),
        (2, 2, "raspberry-pi-4-4cpu"),
    ]

    by_label = merge_runs([laptop, board], baseline="raspberry-pi")  # a unique start of a label
    flipped = {(r["device"], r["threads"], r["batch"]): r["vs_baseline"] for r in by_label["rows"]}
    assert by_label["baseline"] == "raspberry-pi-4-4cpu"
    assert flipped[(laptop_label, 1, 2)] == pytest.approx(1 / pi["vs_baseline"])
    assert flipped[(laptop_label, 1, 1)] is None
    assert merge_runs([laptop, board], baseline=str(board))["baseline"] == "raspberry-pi-4-4cpu"


def test_runs_of_one_machine_are_told_apart_by_file(two_runs):
    merged = merge_runs(list(two_runs))
    label = merged["runs"][0]["label"]
    assert label.endswith("(laptop)") and merged["runs"][1]["label"].endswith("(board)")
    assert merge_runs(list(two_runs), baseline=merged["runs"][1]["label"])["baseline"].endswith("(board)")
    assert {r["device"] for r in merged["rows"]} == {label, merged["runs"][1]["label"]}


def test_cli_writes_table_markdown_plot_and_json(two_runs, tmp_path):
    laptop, pi = two_runs[0], _relabel(two_runs[1], "jetson-orin-6cpu", tmp_path / "jetson.json")
    out = {ext: tmp_path / f"merged.{ext}" for ext in ("md", "png", "json")}
    result = CliRunner().invoke(
        main,
        [
            "bench-report",
            str(laptop),
            str(pi),
            "--baseline",
            "jetson-orin-6cpu",
            "--markdown",
            str(out["md"]),
            "--plot",
            str(out["png"]),
            "--json",
            str(out["json"]),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "/ baseline" in result.output and "jetson-orin-6cpu: " in result.output
    assert "the p50 of jetson-orin-6cpu" in result.output
    markdown = out["md"].read_text()
    assert markdown.count("| jetson-orin-6cpu |") == 2 and "| / baseline |" in markdown
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    merged = json.loads(out["json"].read_text())
    assert merged["baseline"] == "jetson-orin-6cpu" and len(merged["rows"]) == 4
    assert f"wrote {out['json']}" in result.stderr and "wrote" not in result.stdout
    quiet = CliRunner().invoke(main, ["bench-report", str(laptop), str(pi), "-q", "--json", str(out["json"])])
    assert quiet.exit_code == 0 and quiet.stderr == "" and "/ baseline" in quiet.stdout
    piped = CliRunner().invoke(main, ["bench-report", str(laptop), str(pi), "--json", "-", "--baseline", str(pi)])
    assert piped.exit_code == 0 and json.loads(piped.stdout)["rows"] == merged["rows"]  # only the JSON there


def _write(path: Path, content) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not JSON (line 1"),
        ({"format": 1, "variants": {}}, "is not an edgegan bench JSON"),
        (
            {"kind": "edgegan bench", "format": 1, "machine": {}, "rows": [{"model": "m"}]},
            "is not an edgegan bench JSON",
        ),
        ({"kind": "edgegan bench-report", "format": 1, "runs": [], "rows": []}, "is a merged `edgegan bench-report`"),
        ({"kind": "edgegan bench", "format": 9, "machine": {}, "rows": []}, "is bench format 9"),
    ],
)
def test_files_it_cannot_merge_are_one_line_errors(two_runs, tmp_path, content, message):
    bad = _write(tmp_path / "bad.json", content)
    result = CliRunner().invoke(main, ["bench-report", str(two_runs[0]), str(bad)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output and "Traceback" not in result.output


def test_unknown_baseline_and_missing_file(two_runs, tmp_path):
    result = CliRunner().invoke(main, ["bench-report", *map(str, two_runs), "--baseline", "nosuch"])
    assert result.exit_code == 1 and "--baseline 'nosuch' is neither one of the files" in result.output
    assert "labels: " in result.output
    missing = CliRunner().invoke(main, ["bench-report", str(tmp_path / "gone.json")])
    assert missing.exit_code == 1 and "gone.json: no such file" in missing.output


def test_runs_of_different_formats_do_not_merge(two_runs, tmp_path, monkeypatch):
    monkeypatch.setattr(merge, "BENCH_FORMAT", 2)  # a future edgegan that reads formats 1 and 2
    newer = json.loads(two_runs[1].read_text())
    newer["format"] = 2
    with pytest.raises(BenchError, match="different bench formats .*laptop.json format 1, newer.json format 2"):
        merge_runs([two_runs[0], _write(tmp_path / "newer.json", newer)])


def test_variant_name_keeps_folder_and_file():
    assert variant_name("/home/pi/models/fashion/generator.int8.onnx") == "fashion/generator.int8.onnx"
    assert variant_name("generator.ort") == "generator.ort"
