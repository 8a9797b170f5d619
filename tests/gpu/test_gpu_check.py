"""benchmarks/gpu_check.py on a machine without CUDA: its --help documents the H200 run, it fails loudly (one line,
exit 1) instead of skipping, and its CPU-runnable parts (the export forms it times, the timing loop, the targets'
judgement) work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = [sys.executable, "-m", "benchmarks.gpu_check"]  # as users run it, from the repository root


def _load():
    from benchmarks import gpu_check

    return gpu_check


def test_help_documents_the_run():
    result = subprocess.run([*SCRIPT, "--help"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0
    for words in (
        "preload_dlls",
        "make_carry.sh",
        "on_device.sh",
        "/tmp/ortgpu",
        "docs/gpu_machine.md",
        "FAILS LOUDLY",
        "<= 0.5x at",
        "gpu_check.json",
    ):
        assert words in result.stdout, words


def test_without_cuda_it_fails_loudly_in_one_line(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is here: the loud failure needs a machine without it")
    result = subprocess.run([*SCRIPT, "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"gpu_check: FAILED: torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)"
    ]
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_missing_cuda_provider_is_named(monkeypatch):
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    gpu_check = _load()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # torch's side passes; onnxruntime's is real
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(gpu_check.CheckFailed, match="has no CUDAExecutionProvider .* install onnxruntime-gpu"):
        gpu_check.check_cuda()


def test_bad_options_are_one_line(tmp_path):
    result = subprocess.run([*SCRIPT, "--batches", "0,64"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2 and result.stderr.strip() == (
        "gpu_check: --batches '0,64': give positive integers joined by commas"
    )


def test_the_forms_it_times_load_and_agree(tmp_path):
    """The export step of the check, on the CPU: the cuda form and its fp16 conversion are generators of the
    same contract (their CUDA timings are the H200's)."""
    from edgegan.runtime import Generator
    from tests.export.conftest import make_checkpoint

    gpu_check = _load()
    ckpt = make_checkpoint(tmp_path / "g.pt")
    forms = gpu_check.export_forms(ckpt, tmp_path)
    base = Generator(forms["phase fp32"]).sample(16, seed=0).astype(int)
    assert np.abs(Generator(forms["cuda fp32"]).sample(16, seed=0).astype(int) - base).max() <= 1
    half = Generator(forms["cuda fp16"])
    assert half.precision == "fp16" and np.abs(half.sample(16, seed=0).astype(int) - base).mean() < 1


def test_targets_are_judged_and_a_failed_configuration_is_not_met():
    gpu_check = _load()
    rows = [
        {"engine": "Generator fp32 (default: cuda form)", "batch": b, "ratio": r, "p50_ms": r}
        for b, r in ((1, 0.9), (64, 0.9), (1024, 0.4))
    ]
    rows += [{"engine": "Generator fp16 cuda form", "batch": 64, "ratio": 0.5, "p50_ms": 0.5}]
    train = [{"engine": "edgegan CUDA-graph step (amp auto)", "vs_plain": 3.5}]
    met = {t["target"]: t["met"] for t in gpu_check.judge(rows, train, [1, 64, 1024])}
    assert met == {
        "Generator numpy in/out / torch eager fp32, batch 1": True,
        "Generator numpy in/out / torch eager fp32, batch 64": False,
        "Generator numpy in/out / torch eager fp32, batch 1024": True,
        "device output / torch eager fp32, batch 1024": False,  # its configuration produced no figure
        "fp16 / fp32 latency (cuda form), batch 64": True,
        "fp16 / fp32 latency (cuda form), batch 1024": False,
        "CUDA training / plain loop, batch 64": True,
    }
    table = gpu_check.markdown(
        {
            "created": "now",
            "model": "m",
            "notes": [],
            "machine": {"gpu": "H200", "torch": "2.11", "cuda": "13", "onnxruntime": "1.31.1"},
            "targets": gpu_check.judge(rows, train, [1, 64, 1024]),
            "inference": [
                {
                    "batch": 1,
                    "engine": "Generator fp32 cuda form + CUDA graph",
                    "output": None,
                    "p50_ms": None,
                    "ratio": None,
                    "error": "RuntimeError: capture failed",
                }
            ],
            "training": [{"engine": "training", "images_per_s": None, "vs_plain": None, "error": "OSError: x"}],
        }
    )
    assert "| device output / torch eager fp32, batch 1024 | <= 0.3 | - | NO |" in table
    assert "| 1 | Generator fp32 cuda form + CUDA graph | - | - | failed: RuntimeError: capture failed |" in table


def test_the_timing_loop_interleaves_and_takes_medians():
    gpu_check = _load()
    order = []
    figures = gpu_check.interleaved(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, rounds=2, min_s=0.0, warmup=1
    )
    assert order[:2] == ["a", "b"] and set(figures) == {"a", "b"}
    assert all(f["calls"] >= 6 and f["p50_ms"] >= 0 for f in figures.values())
    assert order[2:5] == ["a"] * 3 and order[8:11] == ["b"] * 3  # round 2 starts with the other engine
