"""Bench beside GPU rows, proven on the CPU: the torch rows a cuda row gets (eager, autocast fp16/bf16,
torch.compile reduce-overhead), ratios taken against torch on the same device, and the harness asking for them
only when a provider runs on a device (with only onnxruntime's provider list standing in for a CUDA build)."""

from __future__ import annotations

import contextlib

import onnxruntime as ort
import pytest

from edgegan.runtime.bench import harness
from edgegan.runtime.bench.rows import TimedConfig, add_ratios
from tests.runtime.test_bench import tiny_torch_pair  # noqa: F401 - the fixture: a tiny run and its export


def _row(engine: str, provider: str, p50: float, batch: int = 4) -> tuple[dict, TimedConfig]:
    config = TimedConfig(runner=None, batch=batch, rounds=[[p50 / 1e3]])
    return {"engine": engine, "provider": provider, "threads": 1, "batch": batch, "p50_ms": p50, "macs": 10}, config


def test_a_gpu_row_is_compared_with_torch_on_the_gpu():
    pairs = [
        _row("onnxruntime", "CPUExecutionProvider", 2.0),
        _row("torch eager", "torch cpu", 4.0),
        _row("onnxruntime", "CUDAExecutionProvider", 0.3),
        _row("torch eager", "torch cuda", 0.6),
        _row("torch compile", "torch cuda", 0.2),
        _row("onnxruntime", "TensorrtExecutionProvider", 0.1),
    ]
    rows, configs = [r for r, _ in pairs], [c for _, c in pairs]
    add_ratios(rows, configs)
    assert rows[0]["ratio"] == pytest.approx(0.5) and rows[0]["ratio_compile"] is None  # no CPU compile row
    assert rows[2]["ratio"] == pytest.approx(0.5) and rows[2]["ratio_compile"] == pytest.approx(1.5)
    assert rows[5]["ratio"] == pytest.approx(0.1 / 0.6)
    assert rows[3]["ratio"] is None  # a baseline row gets none


def test_cuda_torch_rows_sit_beside_the_cpu_ones():
    torch_bench = pytest.importorskip("edgegan.trainer.torch_bench")
    runners = torch_bench.make_runners("run", 2, compile=True, devices=("cpu", "cuda"))
    rows = [(r.name, r.provider, r.provider_asked, r.precision, r.optional) for r in runners]
    assert rows == [
        ("torch eager", "torch cpu", "cpu", "fp32", False),
        ("torch compile", "torch cpu", "cpu", "fp32", True),
        ("torch eager", "torch cuda", "cuda", "fp32", True),
        ("torch autocast fp16", "torch cuda", "cuda", "fp16", True),
        ("torch autocast bf16", "torch cuda", "cuda", "bf16", True),
        ("torch compile", "torch cuda", "cuda", "fp32", True),
    ]
    assert runners[-1].setup == "numpy in/out, mode=reduce-overhead"
    with pytest.raises(ValueError, match="devices must be among cpu, cuda"):
        torch_bench.make_runners("run", 1, devices=("tpu",))
    with pytest.raises(ValueError, match="autocast rows are fp16, bf16 on cuda"):
        torch_bench.TorchRunner("run", 1, autocast="fp16")


def test_a_cuda_row_without_cuda_says_why(tiny_torch_pair):  # noqa: F811 - the imported fixture
    import torch

    from edgegan.trainer.torch_bench import TorchRunner

    if torch.cuda.is_available():
        pytest.skip("CUDA is here: tests/gpu times this row")
    with pytest.raises(RuntimeError, match="torch has no CUDA here"):
        TorchRunner(tiny_torch_pair[0], 1, device="cuda").load()


@pytest.mark.parametrize(
    "listed, asked, devices",
    [
        (["CPUExecutionProvider"], ("cpu",), None),
        (["CPUExecutionProvider"], ("auto",), None),  # auto resolves to the CPU: no GPU rows
        (["CUDAExecutionProvider", "CPUExecutionProvider"], ("auto",), ("cpu", "cuda")),
    ],
)
def test_the_harness_asks_for_torch_gpu_rows_only_beside_a_device_provider(
    float_model, monkeypatch, listed, asked, devices
):
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(listed))
    calls = []
    monkeypatch.setitem(harness._REGISTRY, "torch", lambda source, threads, **kw: calls.append(kw) or [])
    # "auto" with CUDA listed loads on CUDA with fallback accepted: here the real session runs on the CPU.
    with pytest.warns(RuntimeWarning) if devices else contextlib.nullcontext():
        harness.run_bench(
            [float_model],
            batches=(1,),
            threads=(1,),
            providers=asked,
            torch="run",
            peak=False,
            warmup=1,
            iters=2,
            rounds=1,
        )
    assert calls and calls[0].get("devices") == devices
