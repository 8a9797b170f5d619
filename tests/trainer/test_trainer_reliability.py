"""The trainer's hostile cases (issue 10): NaN weights, corrupt or unsafe checkpoints, what killed runs leave,
a full disk, and option values that must be refused before anything is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import tomllib
import torch

from edgegan.trainer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from edgegan.trainer.train import TrainingDiverged, train
from tests.cli_helpers import FullDisk, run, tiny_args

REPO = Path(__file__).resolve().parents[2]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def assert_clean_error(result, *fragments, one_line: bool = True):
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    if one_line:
        assert len(result.output.strip().splitlines()) == 1, result.output


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --- finding 3: the NaN guard checks the weights that are saved ---------------------------------------------------


def test_exploding_lr_saves_no_checkpoint_and_names_the_step(tiny_npz, tmp_path):
    out = tmp_path / "nan1"
    result = run(*tiny_args(tiny_npz, out, "--max-steps", "1", "--lr", "1e14"))
    assert_clean_error(result, "diverged", "NaN/Inf by step 1", "no checkpoint had been written yet")
    assert not (out / "checkpoints" / "last.pt").exists()
    assert not list((out / "samples").glob("*.png"))  # no grid of a NaN model either


@pytest.mark.parametrize("log_every,caught_at", [(100, 8), (2, 6)])  # at the save itself; at the next log step
def test_nan_weights_with_finite_losses_keep_the_last_good_checkpoint(
    tiny_cfg, tmp_path, monkeypatch, log_every, caught_at
):
    out = tmp_path / "run"
    train(tiny_cfg, out, progress=False)  # good checkpoint and grid at step 4
    checkpoints, samples = folder_bytes(out / "checkpoints"), folder_bytes(out / "samples")

    from edgegan.trainer.step import GANStep

    real_step = GANStep.step

    def poisoned(self, x, y, t):  # from the 6th step on, one EMA weight is NaN; the losses (from G, D) stay finite
        stats = real_step(self, x, y, t)
        if t >= 5:
            next(self.ema.model.parameters()).data.fill_(float("nan"))
        return stats

    monkeypatch.setattr(GANStep, "step", poisoned)
    with pytest.raises(TrainingDiverged, match=rf"G_ema \S+ became NaN/Inf by step {caught_at}.*\(step 4\)"):
        train(replace(tiny_cfg, max_steps=8, log_every=log_every), out, resume=True, progress=False)
    assert folder_bytes(out / "checkpoints") == checkpoints
    assert folder_bytes(out / "samples") == samples


def test_resume_refuses_a_checkpoint_with_nan_weights(tiny_cfg, tmp_path):
    out = tmp_path / "run"
    train(tiny_cfg, out, progress=False)
    state = load_checkpoint(out)
    next(iter(state["G_ema"].values())).fill_(float("nan"))  # what the old guard let through
    save_checkpoint(
        {k: v for k, v in state.items() if k not in ("format", "kind", "sha256")}, out / "checkpoints" / "last.pt"
    )
    with pytest.raises(CheckpointError, match="holds NaN/Inf weights .*G_ema.* cannot be resumed"):
        train(replace(tiny_cfg, max_steps=8), out, resume=True, progress=False)


# --- finding 8: checksum and torch version -------------------------------------------------------------------------


def test_bytes_corrupted_inside_a_tensor_fail_the_checksum(tiny_npz, tmp_path):
    out = tmp_path / "run"
    assert run(*tiny_args(tiny_npz, out, "--max-steps", "2")).exit_code == 0
    last = out / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    weight = state["D"][next(k for k, v in state["D"].items() if v.numel() > 256)]
    data = bytearray(last.read_bytes())
    stored = torch.empty(0, dtype=torch.uint8).set_(weight.untyped_storage()).numpy().tobytes()  # as on disk
    at = data.find(stored)
    assert at > 0
    data[at + len(stored) // 2] ^= 0x40  # one bit in the middle of D's weights: the zip still reads
    last.write_bytes(bytes(data))
    torch.load(last, weights_only=True)  # still a readable zip and pickle: only the checksum can tell
    with pytest.raises(CheckpointError, match="checksum does not match"):
        load_checkpoint(last)
    result = run(*tiny_args(tiny_npz, out, "--max-steps", "4", "--resume"))
    assert_clean_error(result, "last.pt is corrupt", "checksum")


def test_checkpoint_without_checksum_still_loads_and_says_so(tiny_cfg, tmp_path):
    old = tmp_path / "old.pt"
    torch.save(
        {
            "format": 1,
            "kind": "edgegan-checkpoint",
            "config": tiny_cfg.to_dict(),
            "G": {"w": torch.ones(2)},
            "step": 3,
            "epoch": 0,
        },
        old,
    )
    with pytest.warns(UserWarning, match="no checksum .* loaded unverified"):
        assert load_checkpoint(old)["step"] == 3


def test_torch_with_a_known_weights_only_bypass_is_refused(tiny_cfg, tmp_path, monkeypatch):
    from edgegan.trainer.checkpoint import check_torch_version

    path = tmp_path / "ok.pt"
    save_checkpoint({"config": tiny_cfg.to_dict(), "G": {"w": torch.ones(2)}, "step": 1, "epoch": 0}, path)
    assert load_checkpoint(path)["step"] == 1
    for safe in ("2.10.0", "2.13.0+cpu", "3.0.0"):
        check_torch_version(safe)
    monkeypatch.setattr(torch, "__version__", "2.9.1+cu121")
    with pytest.raises(CheckpointError, match=r"torch 2\.9\.1\+cu121 is too old .*CVE-2026-24747.*torch>=2\.10"):
        load_checkpoint(path)
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in ("train", "export"):
        assert "torch>=2.10" in extras[extra], extras[extra]


# --- finding 5: leftovers ------------------------------------------------------------------------------------------

KILLED_DURING_SAVE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import torch
    from edgegan.trainer.config import TrainConfig
    from edgegan.trainer.train import train

    out, ready, cfg = Path(sys.argv[1]), Path(sys.argv[2]), TrainConfig.from_dict(json.loads(sys.argv[3]))

    def stalled_save(obj, f, *args, **kwargs):  # part of a checkpoint on disk, then wait for SIGKILL
        f.write(b"PK" + bytes(4096))
        f.flush()
        ready.write_text("saving")
        time.sleep(600)

    torch.save = stalled_save
    train(cfg, out, resume=True, progress=False)
""")


def test_kill_9_during_a_save_keeps_last_pt_and_the_next_run_cleans_up(tiny_cfg, tmp_path):
    out, ready = tmp_path / "run", tmp_path / "ready"
    train(tiny_cfg, out, progress=False)
    before = (out / "checkpoints" / "last.pt").read_bytes()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    cfg = json.dumps(replace(tiny_cfg, max_steps=8).to_dict())
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_DURING_SAVE, str(out), str(ready), cfg],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 600  # a hang guard, not a timing assertion
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the child never reached the save: {proc.communicate()[0].decode()[-2000:]}")
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert leftovers(out / "checkpoints"), "the kill should have left a temp file to clean"
    assert (out / "checkpoints" / "last.pt").read_bytes() == before

    result = train(replace(tiny_cfg, max_steps=8), out, resume=True, progress=False)  # resumes from step 4
    assert result.step == 8
    assert leftovers(out / "checkpoints") == []
    assert "leftover temp file" in (out / "train.log").read_text()


def test_resume_drops_metrics_rows_past_the_checkpoint(tiny_cfg, tmp_path):
    out = tmp_path / "run"
    train(tiny_cfg, out, progress=False)  # rows at steps 2 and 4, checkpoint at 4
    metrics = out / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    with metrics.open("a") as f:  # a run killed after logging steps 6 and 8 but before its checkpoint
        for step in (6, 8):
            f.write(json.dumps({**rows[-1], "step": step}) + "\n")
        f.write('{"step": 10, "loss')  # and a line cut short
    train(replace(tiny_cfg, max_steps=8), out, resume=True, progress=False)
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [2, 4, 6, 8]


def _unlabelled(tmp_path):
    import numpy as np

    path = tmp_path / "unlabelled.npz"
    np.savez(path, images=np.zeros((64, 28, 28), np.uint8))
    return ("--dataset", "npz", "--data-dir", path, "--conditional")


FAILED_STARTS = {
    "missing dataset": (lambda tmp: ("--dataset", "npz", "--data-dir", tmp / "missing.npz"), ["missing.npz"]),
    "no labels for --conditional": (_unlabelled, ["--conditional needs labels"]),
    "--amp fp16 on CPU": (lambda tmp: ("--amp", "fp16", "--device", "cpu"), ["--amp fp16 needs CUDA"]),
    "--device cuda without CUDA": (lambda tmp: ("--device", "cuda"), ["--device cuda", "not available"]),
}


@NO_CUDA
@pytest.mark.parametrize("case", list(FAILED_STARTS))
def test_a_failed_start_leaves_nothing_on_disk(tiny_npz, tmp_path, case):
    make_args, fragments = FAILED_STARTS[case]
    out = tmp_path / "runs" / "r"
    args = tiny_args(tiny_npz, out, "--max-steps", "1", *make_args(tmp_path))
    assert_clean_error(run(*args), *fragments)
    assert not (tmp_path / "runs").exists()


# --- finding 6: option values refused up front, and a full disk ---------------------------------------------------


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--lr", "nan", "--lr must be a finite number > 0"),
        ("--lr", "inf", "--lr must be a finite number > 0"),
        ("--lr", "0", "--lr must be a finite number > 0"),
        ("--beta1", "1.0", "--beta1 must be in [0, 1)"),
        ("--beta1", "-0.1", "--beta1 must be in [0, 1)"),
        ("--beta2", "1.0", "--beta2 must be in [0, 1)"),
        ("--ema-decay", "2", "--ema-decay must be in [0, 1)"),
        ("--ema-decay", "-1", "--ema-decay must be in [0, 1)"),
    ],
)
def test_option_values_no_run_can_use_are_refused_before_any_write(tiny_npz, tmp_path, option, value, message):
    out = tmp_path / "runs" / "r"
    result = run(*tiny_args(tiny_npz, out, "--max-steps", "1", option, value))
    assert_clean_error(result, message, one_line=False)  # a usage error: usage line, hint, message
    assert result.exit_code == 2
    assert not (tmp_path / "runs").exists()


def test_disk_full_during_a_checkpoint_save_is_one_line_naming_the_checkpoint(tiny_npz, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert run(*tiny_args(tiny_npz, out, "--max-steps", "2")).exit_code == 0
    before = (out / "checkpoints" / "last.pt").read_bytes()

    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: real_save(obj, FullDisk(f, 4096), *a, **k))
    result = run(*tiny_args(tiny_npz, out, "--max-steps", "4", "--resume"))
    assert_clean_error(
        result, f"cannot write checkpoint {out / 'checkpoints' / 'last.pt'}", "No space left on device", "left intact"
    )
    assert ".tmp" not in result.output
    assert (out / "checkpoints" / "last.pt").read_bytes() == before
    assert leftovers(out / "checkpoints") == []
