"""Data-parallel training through PyTorch's launcher: two CPU processes over gloo, as `torchrun` runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from edgegan.trainer.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="this torch build has no gloo backend"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_npz(path: Path, n: int = 256, classes: int = 3) -> Path:
    """Labelled 28x28 images: class k is a bright band at row 7(k+1), plus noise."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    images = rng.integers(0, 40, (n, 28, 28, 1), dtype=np.uint8)
    for i, k in enumerate(labels):
        images[i, 7 * (k + 1) - 2 : 7 * (k + 1) + 2] = 220
    np.savez(path, images=images, labels=labels)
    return path


def _torchrun(out: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node 2 -m edgegan train ...` on CPU: 256 images, batch 16 -> 8 steps per epoch per rank."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "edgegan",
        "train",
        "--dataset",
        "npz",
        "--data-dir",
        str(data),
        "--width",
        "8",
        "--nz",
        "16",
        "--batch-size",
        "16",
        "--log-every",
        "2",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"torchrun exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _replicas(out: Path) -> list[dict]:
    """The last `replicas {...}` record rank 0 wrote to train.log: each rank's parameter digests."""
    lines = [line for line in (out / "train.log").read_text().splitlines() if " replicas " in line]
    assert lines, "no replica record in train.log"
    return json.loads(lines[-1].split(" replicas ", 1)[1])


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """A two-rank run of 6 steps (conditional, so labels are sharded with their images)."""
    root = tmp_path_factory.mktemp("ddp")
    data = _write_npz(root / "tiny.npz")
    _torchrun(root / "straight", data, "--max-steps", "6", "--conditional")
    return root, data


def test_two_ranks_train_in_step_and_only_rank_0_writes(straight):
    root, _ = straight
    out = root / "straight"
    record = _replicas(out)
    assert len(record["ranks"]) == 2
    assert record["identical"] and record["ranks"][0] == record["ranks"][1]  # G, D, G_ema parameters
    assert set(record["ranks"][0]) == {"G", "D", "G_ema"}

    # Rank 0 alone writes: one metrics row per logging step, one checkpoint, one grid.
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.pt"]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_0000006.png"]
    assert (
        sum(" start at step 0/6 " in line and " x2," in line for line in (out / "train.log").read_text().splitlines())
        == 1
    )

    ckpt = load_checkpoint(out)
    assert ckpt["step"] == 6
    assert {"noise_rank0", "noise_rank1"} <= ckpt["rng"].keys()  # both ranks' latent streams, for exact resume


def test_two_rank_resume_is_exact(straight):
    root, data = straight
    split = root / "split"
    _torchrun(split, data, "--max-steps", "3", "--conditional")
    _torchrun(split, data, "--max-steps", "6", "--resume")
    assert _replicas(split)["identical"]
    a, b = load_checkpoint(root / "straight"), load_checkpoint(split)
    for key in ("G", "D", "G_ema"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert a["step"] == b["step"] == 6
