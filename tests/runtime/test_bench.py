"""`edgegan bench` and edgegan.runtime.bench.harness on tiny models: every field, grid counts, ordered percentiles, the provider,
multiply-adds on hand-built graphs, JSON/markdown/PNG outputs, the torch baseline's rows and ratios, and clear
errors for bad input. No test asserts a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from edgegan.cli import main
from edgegan.export.ir_version import cap_ir_version
from edgegan.runtime.bench.harness import BenchError, matmul_model, parse_int_list, parse_setup, pinned, run_bench
from edgegan.runtime.bench.macs import count_macs

REPO = Path(__file__).resolve().parents[2]
FAST = dict(warmup=1, iters=4, rounds=2, peak_size=64)  # a few calls each; the peak product is 64^3
ROW_FIELDS = (
    "model",
    "engine",
    "setup",
    "provider",
    "threads",
    "batch",
    "precision",
    "output",
    "iters",
    "rounds",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "min_ms",
    "images_per_s",
    "cold_create_s",
    "cold_first_run_s",
    "mem_load_mib",
    "mem_first_run_mib",
    "rss_peak_mib",
    "macs",
    "gflops",
    "peak_gflops",
    "peak_share",
    "peak_share_cpu",
    "cpu_ms",
    "spread",
    "ratio",
    "ratio_compile",
    "error",
)


def _check_row(row: dict) -> None:
    missing = [k for k in ROW_FIELDS if k not in row]
    assert not missing, missing
    assert row["error"] is None
    assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
    assert row["min_ms"] <= row["p50_ms"] and row["mean_ms"] > 0
    assert row["images_per_s"] == pytest.approx(row["batch"] / (row["p50_ms"] / 1e3))
    assert row["cold_create_s"] > 0 and row["cold_first_run_s"] > 0
    assert row["rss_peak_mib"] > 0
    assert row["iters"] >= 1 and row["rounds"] >= 1


# ----------------------------------------------------------------------------------------- the harness
def test_rows_cover_the_grid_with_every_field(float_model, uint8_model):
    result = run_bench([float_model, uint8_model], batches=(1, 3), threads=(1, 2), **FAST)
    rows = result["rows"]
    assert len(rows) == 2 * 2 * 2  # models x threads x batches
    assert {(Path(r["model"]).parent.name, r["threads"], r["batch"]) for r in rows} == {
        (m, t, b) for m in ("uncond", "uint8") for t in (1, 2) for b in (1, 3)
    }
    for row in rows:
        _check_row(row)
        assert row["engine"] == "onnxruntime" and row["provider"] == "CPUExecutionProvider"
        assert row["precision"] == "fp32" and row["setup"] == "default"
        # tiny generator: one MatMul [b, 8] x [8, 1*4*5] -> 8 * 20 multiply-adds per image
        assert row["macs"] == 8 * 20 * row["batch"]
        assert row["gflops"] == pytest.approx(2 * row["macs"] / (row["p50_ms"] / 1e3) / 1e9)
        assert row["peak_share"] == pytest.approx(row["gflops"] / row["peak_gflops"])
        assert 0 < row["peak_share"] <= 1 and row["peak_source"]  # an upper bound, and which one
        assert row["ratio"] is None  # no --torch
        assert row["iters"] == 4
    assert {r["output"] for r in rows} == {"float_nchw", "uint8_nhwc"}
    # an fp32 MatMul and a u8 x s8 MatMulInteger per thread count
    assert sorted((p["precision"], p["threads"]) for p in result["peak"]) == [
        ("fp32", 1),
        ("fp32", 2),
        ("int8", 1),
        ("int8", 2),
    ]
    assert all(p["gflops"] > 0 and p["size"] == 64 for p in result["peak"])
    machine = result["machine"]
    assert machine["cpu"] and machine["logical_cpus"] >= 1 and machine["versions"]["onnxruntime"]
    assert isinstance(machine["flags"], list)
    assert result["settings"]["batches"] == [1, 3] and result["settings"]["rounds"] == 2


def test_session_setups_split_and_preopt(tmp_path, make_model):
    model = make_model("setups/generator.onnx", num_classes=3)  # conditional: labels are split too
    result = run_bench(
        [model], batches=(1, 4), threads=(2,), setups=["default", "split=2", "preopt=on,spin=on"], **FAST
    )
    assert [r["setup"] for r in result["rows"]] == ["default"] * 2 + ["split=2"] * 2 + ["spin=on,preopt=on"] * 2
    for row in result["rows"]:
        _check_row(row)
    assert list(model.parent.glob("generator.ortopt-*.onnx"))  # the offline-optimized copy, beside the model
    assert parse_setup("opt=basic,mode=parallel").label == "opt=basic,mode=parallel"
    with pytest.raises(BenchError, match="bad --ort item"):
        parse_setup("split=0")


def test_duration_plans_iterations(float_model):
    result = run_bench([float_model], batches=(2,), warmup=1, duration=0.05, rounds=3, peak=False)
    row = result["rows"][0]
    assert row["iters"] >= 10 and row["rounds"] == 3  # at least 10 calls, spread over the rounds
    assert row["peak_gflops"] is None and row["peak_share"] is None and result["peak"] == []


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU pinning needs os.sched_setaffinity (Linux)")
def test_pin_core_runs_on_one_core_and_restores(float_model):
    before = os.sched_getaffinity(0)
    core = min(before)
    with pinned(core):
        assert os.sched_getaffinity(0) == {core}
    assert os.sched_getaffinity(0) == before
    result = run_bench([float_model], batches=(1,), pin_core=core, **FAST)
    assert result["settings"]["pin_core"] == core and result["machine"]["usable_cpus"] == 1
    assert os.sched_getaffinity(0) == before
    with pytest.raises(BenchError, match="--pin-core"):
        run_bench([float_model], batches=(1,), pin_core=max(before) + 1000, **FAST)


# ------------------------------------------------------------------------------------------ multiply-adds
def _init(name: str, shape: tuple, dtype=np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.zeros(shape, dtype), name)


def test_count_macs_on_a_hand_built_graph(tmp_path):
    """x [B, 4, 6, 6] -> Conv 3x3 (8 out, pad 1) -> ConvTranspose 4x4 s2 p1 (2 out) -> Reshape [B, 288]
    -> Gemm (288 -> 10) -> MatMul (10 -> 5); batch is dynamic."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["c1", "w2"], ["c2"], kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["c2", "flat"], ["r"]),
        helper.make_node("Gemm", ["r", "w3"], ["g"], transB=1),
        helper.make_node("MatMul", ["g", "w4"], ["y"]),
    ]
    inits = [
        _init("w1", (8, 4, 3, 3)),
        _init("w2", (8, 2, 4, 4)),
        _init("w3", (10, 288)),
        _init("w4", (10, 5)),
        numpy_helper.from_array(np.array([-1, 288], np.int64), "flat"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 5])],
        inits,
    )
    path = tmp_path / "known.onnx"
    onnx.save(cap_ir_version(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])), str(path))
    conv = 8 * 6 * 6 * (4 * 3 * 3)  # outputs x (Cin * k * k)          = 10368
    convt = 8 * 6 * 6 * (2 * 4 * 4)  # inputs x (Cout * k * k)          = 9216 -> [2, 12, 12]
    gemm = 288 * 10
    matmul = 10 * 5
    for batch in (1, 7):
        count = count_macs(path, batch)
        assert count.batch == batch and count.uncounted == []
        assert count.by_op == {
            "Conv": conv * batch,
            "ConvTranspose": convt * batch,
            "Gemm": gemm * batch,
            "MatMul": matmul * batch,
        }
        assert count.total == (conv + convt + gemm + matmul) * batch


def test_count_macs_int8_ops(tmp_path):
    """QLinearConv and MatMulInteger, as a static int8 export has them: x [B, 3, 5, 5] -> 1x1 conv to 6 channels."""
    scalar = lambda name, value, dtype: numpy_helper.from_array(np.array(value, dtype), name)  # noqa: E731
    nodes = [
        helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["c"]),
        helper.make_node("Reshape", ["c", "flat"], ["r"]),
        helper.make_node("MatMulInteger", ["r", "m"], ["y"]),
    ]
    inits = [
        scalar("xs", 0.1, np.float32),
        scalar("xz", 0, np.uint8),
        _init("w", (6, 3, 1, 1), np.uint8),
        scalar("ws", 0.1, np.float32),
        scalar("wz", 0, np.uint8),
        scalar("ys", 0.1, np.float32),
        scalar("yz", 0, np.uint8),
        numpy_helper.from_array(np.array([-1, 150], np.int64), "flat"),
        _init("m", (150, 4), np.uint8),
    ]
    graph = helper.make_graph(
        nodes,
        "q",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["batch", 3, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["batch", 4])],
        inits,
    )
    path = tmp_path / "int8.onnx"
    onnx.save(cap_ir_version(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])), str(path))
    count = count_macs(path, 3)
    assert count.by_op == {"QLinearConv": 3 * 6 * 25 * 3, "MatMulInteger": 3 * 150 * 4}


def test_peak_model_is_valid_onnx():
    model = onnx.load_from_string(matmul_model(16))  # the hand-serialized protobuf
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["MatMul"]
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [16, 16]


# ------------------------------------------------------------------------------------- CLI and outputs
def test_cli_writes_table_json_markdown_and_plot(float_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # outputs are checked writable before timing; a missing folder is an error
    result = CliRunner().invoke(
        main,
        [
            "bench",
            str(float_model),
            "--batch",
            "1,2",
            "--threads",
            "1",
            "--iters",
            "3",
            "--rounds",
            "1",
            "--warmup",
            "0",
            "--peak-size",
            "32",
            "-q",
            "--json",
            str(out / "b.json"),
            "--markdown",
            str(out / "b.md"),
            "--plot",
            str(out / "b.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "machine:" in result.output and "p50 ms" in result.output and "peak (fp32 matmul 32^3" in result.output
    data = json.loads((out / "b.json").read_text())
    assert len(data["rows"]) == 2 and data["machine"]["versions"]["numpy"] == np.__version__
    assert data["rows"][0]["provider"] == "CPUExecutionProvider"
    markdown = (out / "b.md").read_text()
    assert markdown.count("| uncond/generator.onnx |") == 2 and "| p50 ms |" in markdown
    assert (out / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Option values click checks while parsing are usage errors (exit 2, "Usage: ..." then the one-line error); what
# only the run can find (a missing file, a bad combination) exits 1. Neither prints a traceback.
@pytest.mark.parametrize(
    "args, message, code",
    [
        (["missing/generator.onnx"], "model file not found", 1),
        (["MODEL", "--batch-sizes", "1,x"], "--batch-sizes takes positive integers", 2),
        (["MODEL", "--batch-sizes", "0"], "--batch-sizes", 2),
        (["MODEL", "--threads", ""], "--threads", 2),
        (["MODEL", "--provider", "gpu"], "unknown provider gpu", 2),
        (["MODEL", "--ort", "spin=maybe"], "bad --ort item", 1),
        (["MODEL", "--iters", "5", "--duration", "1"], "--iters or --duration", 1),
        (["MODEL", "--iters", "0"], "--iters must be a positive", 1),
    ],
)
def test_cli_bad_input_is_a_clear_error(float_model, tmp_path, args, message, code):
    args = [str(float_model) if a == "MODEL" else str(tmp_path / a) if a.startswith("missing") else a for a in args]
    result = CliRunner().invoke(main, ["bench", *args, "-q", "--peak-size", "32"])
    assert result.exit_code == code, result.output
    assert "Error: " in result.output and message in result.output
    assert "Traceback" not in result.output


def test_parse_int_list():
    assert parse_int_list("1, 8,64,8", "batch") == (1, 8, 64)
    with pytest.raises(BenchError):
        parse_int_list("-1", "batch")


# ------------------------------------------------------------------------------------- the torch baseline
def _tiny_export(root: Path) -> tuple[Path, Path]:
    """A conditional width-8 DCGAN 28x28 run with warmed BatchNorm statistics, exported with export_checkpoint."""
    import torch

    from edgegan.export.pipeline import export_checkpoint
    from edgegan.trainer.checkpoint import save_weights_checkpoint
    from edgegan.trainer.config import ModelConfig, TrainConfig
    from edgegan.trainer.models import build_discriminator, build_generator

    torch.manual_seed(0)
    cfg = TrainConfig(
        model=ModelConfig(arch="dcgan", nz=8, image_size=28, channels=1, num_classes=3, width=8),
        dataset="npz",
        class_names=["a", "b", "c"],
    )
    G, D = build_generator(cfg.model), build_discriminator(cfg.model)
    with torch.no_grad():
        for _ in range(3):
            G(torch.randn(16, 8), torch.randint(0, 3, (16,)))
    run = root / "run"
    save_weights_checkpoint(
        cfg, G.state_dict(), run / "checkpoints" / "last.pt", D=D.state_dict(), class_names=["a", "b", "c"]
    )
    export_checkpoint(run, root / "model", progress=False)
    return run, root / "model" / "generator.onnx"


@pytest.fixture(scope="module")
def tiny_torch_pair(tmp_path_factory) -> tuple[Path, Path]:
    pytest.importorskip("torch")
    return _tiny_export(tmp_path_factory.mktemp("torch_pair"))


# width-8 conditional DCGAN 28x28, nz 8 + 50 label dims: ConvT 58->32 k7 on 1x1, ConvT 32->16 k4 s2 on 7x7,
# ConvT 16->1 k4 s2 on 14x14
TINY_MACS = 58 * 32 * 49 + 7 * 7 * 32 * 16 * 16 + 14 * 14 * 16 * 1 * 16


def test_torch_passive_is_an_extra_labelled_row_and_never_the_ratio_base(tiny_torch_pair):
    run, model = tiny_torch_pair
    out = model.parent / "passive.json"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            str(model),
            "--batch-sizes",
            "2",
            "--threads",
            "1",
            "--iters",
            "3",
            "--rounds",
            "1",
            "--warmup",
            "1",
            "--no-peak",
            "--torch",
            str(run),
            "--no-torch-compile",
            "--torch-passive",
            "-q",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {r["engine"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"onnxruntime", "torch eager", "torch eager (OMP passive)"}
    assert rows["torch eager (OMP passive)"]["p50_ms"] > 0
    ort = rows["onnxruntime"]
    assert ort["ratio"] == pytest.approx(ort["p50_ms"] / rows["torch eager"]["p50_ms"])


def test_torch_rows_and_ratios(tiny_torch_pair):
    run, model = tiny_torch_pair
    result = CliRunner().invoke(
        main,
        [
            "bench",
            str(model),
            "--batch",
            "1,4",
            "--threads",
            "1,2",
            "--iters",
            "4",
            "--rounds",
            "2",
            "--warmup",
            "1",
            "--peak-size",
            "64",
            "--torch",
            str(run),
            "--no-torch-compile",
            "-q",
            "--json",
            str(model.parent / "b.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((model.parent / "b.json").read_text())["rows"]
    assert len(rows) == 2 * 2 * 2  # (onnxruntime + torch eager) x threads x batches
    ort_rows = [r for r in rows if r["engine"] == "onnxruntime"]
    torch_rows = [r for r in rows if r["engine"] == "torch eager"]
    assert len(ort_rows) == len(torch_rows) == 4
    for row in rows:
        _check_row(row)
    for row in torch_rows:
        assert row["provider"] == "torch cpu" and row["ratio"] is None
        assert row["macs"] == TINY_MACS * row["batch"]  # counted by forward hooks in trainer/torch_bench.py
    for row in ort_rows:
        base = next(t for t in torch_rows if (t["threads"], t["batch"]) == (row["threads"], row["batch"]))
        assert row["ratio"] == pytest.approx(row["p50_ms"] / base["p50_ms"])
        low, high = row["ratio_rounds"]
        assert 0 < low <= high
        assert row["useful_gflops"] == pytest.approx(2 * base["macs"] / (row["p50_ms"] / 1e3) / 1e9)
        assert row["macs"] >= base["macs"]  # the graph's own count; equal for the ConvTranspose form
    assert "/ torch" in result.output


def test_torch_compile_row_is_timed_or_says_why(tiny_torch_pair):
    """torch.compile where it works; where it does not (no C++ compiler), its row carries the error instead."""
    run, model = tiny_torch_pair
    result = run_bench([model], batches=(2,), threads=(1,), torch=run, torch_compile=True, **FAST)
    compiled = next(r for r in result["rows"] if r["engine"] == "torch compile")
    ort_row = next(r for r in result["rows"] if r["engine"] == "onnxruntime")
    if compiled["error"] is None:
        _check_row(compiled)
        assert ort_row["ratio_compile"] == pytest.approx(ort_row["p50_ms"] / compiled["p50_ms"])
    else:
        assert compiled["error"] and "p50_ms" not in compiled
        assert ort_row["ratio_compile"] is None


def _timed(engine: str, p50: float, threads: int = 1, batch: int = 2):
    """A result row and its TimedConfig, as config_rows makes them, for the ratio logic alone."""
    from edgegan.runtime.bench.rows import TimedConfig

    config = TimedConfig(runner=None, batch=batch, rounds=[[p50 / 1e3], [p50 / 1e3]])
    return {"engine": engine, "threads": threads, "batch": batch, "p50_ms": p50, "macs": 100}, config


def test_ratio_uses_the_default_policy_row_never_a_labelled_one():
    from edgegan.runtime.bench.rows import add_ratios

    pairs = [
        _timed("onnxruntime", 1.0),
        _timed("torch eager (OMP passive)", 2.0),
        _timed("torch eager", 4.0),
        _timed("onnxruntime", 3.0, batch=8),
        _timed("torch eager (OMP passive)", 6.0, batch=8),
    ]
    rows, configs = [r for r, _ in pairs], [c for _, c in pairs]
    add_ratios(rows, configs)
    assert rows[0]["ratio"] == pytest.approx(1.0 / 4.0) and rows[0]["ratio_rounds"] == pytest.approx([0.25, 0.25])
    assert rows[1]["ratio"] is None and rows[2]["ratio"] is None  # baseline rows get no ratio
    assert rows[3]["ratio"] is None  # only a passive row at batch 8: no base, rather than the wrong one


def test_torch_rows_default_policy_in_process_and_passive_row_in_a_child(tiny_torch_pair, monkeypatch):
    """make_runners(policies=("default", "passive")): the default rows run here with the environment's policy and
    are the ratio's base; the passive row is labelled, runs in its own process (so this process sees none of its CPU
    time or memory) and computes the same model."""
    from functools import partial

    from edgegan.runtime.bench import harness
    from edgegan.trainer import torch_bench

    run, model = tiny_torch_pair
    monkeypatch.setitem(harness._REGISTRY, "torch", partial(torch_bench.make_runners, policies=("default", "passive")))
    result = run_bench([model], batches=(1, 3), threads=(1,), torch=run, torch_compile=False, **FAST)
    rows = {(r["engine"], r["batch"]): r for r in result["rows"]}
    assert sorted({e for e, _ in rows}) == ["onnxruntime", "torch eager", "torch eager (OMP passive)"]
    for batch in (1, 3):
        default, passive = rows["torch eager", batch], rows["torch eager (OMP passive)", batch]
        assert default["setup"] == f"omp_wait={torch_bench.WAIT_POLICY}" and default["cpu_ms"] > 0
        assert passive["setup"] == "omp_wait=passive, own process" and passive["error"] is None
        assert passive["p50_ms"] > 0 and passive["cpu_ms"] is None and passive["rss_peak_mib"] is None
        assert passive["macs"] == default["macs"] == TINY_MACS * batch  # counted in the child by the same hooks
        ort_row = rows["onnxruntime", batch]
        assert ort_row["ratio"] == pytest.approx(ort_row["p50_ms"] / default["p50_ms"])


def test_make_runners_rejects_an_unknown_policy(tiny_torch_pair):
    from edgegan.trainer.torch_bench import make_runners

    with pytest.raises(ValueError, match="passive"):
        make_runners(tiny_torch_pair[0], 1, policies=("spin",))


NO_TORCH = r"""
import json, sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
from click.testing import CliRunner
from edgegan.cli import main
model, run = sys.argv[1], sys.argv[2]
plain = CliRunner().invoke(main, ["bench", model, "--batch", "1", "--iters", "2", "--rounds", "1", "--peak-size", "32", "-q"])
heavy = sorted(m for m in ("torch", "edgegan.trainer", "edgegan.export") if sys.modules.get(m) is not None)
with_torch = CliRunner().invoke(main, ["bench", model, "--batch", "1", "--iters", "2", "--torch", run, "-q"])
print(json.dumps({"plain": [plain.exit_code, plain.output], "torch": [with_torch.exit_code, with_torch.output],
                  "heavy": heavy}))
"""


def test_bench_runs_without_torch_and_says_what_torch_needs(float_model, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(float_model), str(tmp_path / "run")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["plain"][0] == 0, report["plain"][1]
    code, output = report["torch"]
    assert code == 1 and "pip install 'edgegan[train]'" in output and "Traceback" not in output
    assert report["heavy"] == []  # the harness itself imported neither torch nor trainer/export


def test_peak_is_per_precision_and_an_upper_bound():
    """An fp32 row that beats the float MatMul is its own bound; int8 is divided by the integer MatMul, fp16 by fp32."""
    from edgegan.runtime.bench.peaks import apply_peaks

    def peak(precision, gflops):
        return {
            "model": f"{precision} kernel",
            "precision": precision,
            "threads": 1,
            "provider_asked": "cpu",
            "gflops": gflops,
            "gflops_per_cpu_s": gflops,
        }

    def row(precision, gflops):
        return {
            "model": f"g.{precision}",
            "batch": 64,
            "precision": precision,
            "threads": 1,
            "provider_asked": "cpu",
            "gflops": gflops,
            "gflops_per_cpu_s": gflops,
        }

    rows = [row("fp32", 100.0), row("fp16", 50.0), row("int8", 200.0), {**row("fp32", 10.0), "threads": 2}]
    apply_peaks(rows, [peak("fp32", 80.0), peak("int8", 300.0)])
    fp32, fp16, int8, other_threads = rows
    assert fp32["peak_share"] == 1 and fp32["peak_source"] == "best fp32 row measured (g.fp32, batch 64)"
    assert fp16["peak_share"] == pytest.approx(0.5) and fp16["peak_gflops"] == 100
    assert int8["peak_share"] == pytest.approx(200 / 300) and int8["peak_source"] == "int8 kernel"
    assert int8["peak_share_cpu"] == pytest.approx(200 / 300)
    assert other_threads["peak_share"] is None  # no peak measured at 2 threads: no share rather than a wrong one


def test_integer_matmul_peak_runs_on_the_cpu():
    from edgegan.runtime.bench.peaks import IntegerMatmulRunner

    runner = IntegerMatmulRunner("cpu", 1, 32)
    runner.load()
    runner.run()
    assert runner.precision == "int8" and runner.macs == 32**3 and runner.provider == "CPUExecutionProvider"
