"""Issue 19, items 3 (train/export), 4 and 8 (symlinked checkpoints/): one writer per run folder, and a run
writes only inside itself.

Before: two `train --out r` at once both exited 0 with metrics.jsonl, train.log and last.pt mixed from both; two
concurrent `--resume`s likewise; `--resume` followed a symlinked checkpoints/ into another run and overwrote
its last.pt; `--json` replaced a FIFO or symlink with a regular file.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import quality_helpers
from tests.cli_helpers import one_line, run, tiny_args
from tests.trainer.conftest import write_npz

REPO = Path(__file__).resolve().parents[2]


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_a_second_writer_into_a_training_run_is_refused_naming_the_holder(tmp_path):
    """A real `edgegan train` runs in another process; a second train and a --resume into its --out exit 1 with
    one line naming its pid, and write nothing. kill -9 of the holder leaves no lock behind."""
    npz = write_npz(tmp_path / "tiny.npz", n=64)
    out = tmp_path / "r"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgegan",
            *map(str, tiny_args(npz, out, "--max-steps", "100000", "--checkpoint-every", "1")),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(out / "checkpoints" / "last.pt", holder)
        metrics_before = (out / "metrics.jsonl").stat().st_size
        for extra in ((), ("--resume",)):
            one_line(
                run(*tiny_args(npz, out, "--max-steps", "1000001", "--seed", "2", *extra)),
                f"--out {out} is in use by another training (pid {holder.pid})",
            )
        assert holder.poll() is None  # the holder was never disturbed
        assert (out / "metrics.jsonl").stat().st_size >= metrics_before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    # the kernel dropped the dead holder's lock: the run is resumable at once
    from edgegan.trainer.run_folder import hold_run

    with hold_run(out, resume=True) as resume_from:
        assert resume_from == out / "checkpoints" / "last.pt"


def test_the_lock_is_per_process_and_released_after_the_run(tmp_path):
    npz = write_npz(tmp_path / "tiny.npz", n=32)
    out = tmp_path / "r"
    from edgegan.trainer.run_folder import LOCK_NAME, hold_run

    with hold_run(out, resume=False):
        one_line(run(*tiny_args(npz, out, "--max-steps", "1")), f"(pid {os.getpid()})")
        assert not (out / "checkpoints").exists()  # the refused run wrote nothing
    assert run(*tiny_args(npz, out, "--max-steps", "1")).exit_code == 0
    assert not (out / LOCK_NAME).exists()
    assert run(*tiny_args(npz, out, "--max-steps", "2", "--resume")).exit_code == 0


def test_resume_refuses_a_symlinked_checkpoints_folder(tmp_path):
    """r/checkpoints -> other/checkpoints: --resume used to write the other run's last.pt."""
    npz = write_npz(tmp_path / "tiny.npz", n=32)
    other = tmp_path / "other"
    assert run(*tiny_args(npz, other, "--max-steps", "1")).exit_code == 0
    before = (other / "checkpoints" / "last.pt").read_bytes()
    r = tmp_path / "r"
    r.mkdir()
    os.symlink(other / "checkpoints", r / "checkpoints")
    result = run(*tiny_args(npz, r, "--max-steps", "3", "--resume"))
    one_line(result, "checkpoints is a symlink", str(other / "checkpoints"))
    assert (other / "checkpoints" / "last.pt").read_bytes() == before


@pytest.mark.parametrize("kind", ["FIFO", "symlink"])
def test_train_and_export_json_refuse_what_is_not_a_regular_file(kind, tmp_path):
    npz = write_npz(tmp_path / "tiny.npz", n=32)
    target = tmp_path / "out.json"
    if kind == "FIFO":
        os.mkfifo(target)
    else:
        (tmp_path / "mine.json").write_text("kept")
        os.symlink(tmp_path / "mine.json", target)
    word = {"FIFO": "FIFO", "symlink": "symlink"}[kind]
    one_line(run(*tiny_args(npz, tmp_path / "r", "--max-steps", "1", "--json", target)), str(target), word)
    assert not (tmp_path / "r").exists()  # refused before the run folder was made
    ckpt = quality_helpers.make_checkpoint(tmp_path / "g.pt")
    result = run("export", ckpt, "--out", tmp_path / "m", "--json", target, "--no-quality-gate", "-q")
    one_line(result, str(target), word)
    assert not (tmp_path / "m").exists()
    mode = os.lstat(target).st_mode
    assert (
        stat.S_ISFIFO(mode)
        if kind == "FIFO"
        else (stat.S_ISLNK(mode) and (tmp_path / "mine.json").read_text() == "kept")
    )
