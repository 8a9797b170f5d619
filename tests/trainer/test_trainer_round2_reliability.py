"""Issue 19, items 8 (a lying config's message), 9 (disk full before the first checkpoint; a NaN with no checkpoint
yet) and 10 (bad values: --batch-size beyond the data, a missing --data-dir, an empty --out, a torch
pre-release of the security floor)."""

from __future__ import annotations

import pytest
import torch

from edgegan.trainer.checkpoint import CheckpointError, check_torch_version, save_checkpoint
from tests import quality_helpers
from tests.cli_helpers import FullDisk, one_line, run, tiny_args
from tests.trainer.conftest import write_npz


def lying(path_in, path_out, **model):
    state = torch.load(path_in, weights_only=True)
    state["config"]["model"].update(model)
    save_checkpoint({k: v for k, v in state.items() if k not in ("format", "kind", "sha256")}, path_out)
    return path_out


# --- item 8 --------------------------------------------------------------------------------------------------------


def test_export_of_a_config_that_lies_names_the_mismatched_parameter(tmp_path):
    ckpt = lying(quality_helpers.make_checkpoint(tmp_path / "g.pt"), tmp_path / "lie.pt", nz=12)
    result = run("export", ckpt, "--out", tmp_path / "m", "-q", "--no-quality-gate")
    one_line(result, "cannot be rebuilt", "size mismatch for", "torch.Size")
    assert not (tmp_path / "m").exists()


def test_resume_of_a_config_that_lies_is_one_line_naming_the_parameter(tmp_path):
    npz = write_npz(tmp_path / "tiny.npz", n=32)
    out = tmp_path / "r"
    assert run(*tiny_args(npz, out, "--max-steps", "1")).exit_code == 0
    last = out / "checkpoints" / "last.pt"
    lying(last, last, width=12)
    before = last.read_bytes()
    one_line(run(*tiny_args(npz, out, "--max-steps", "3", "--resume")), "cannot be resumed", "size mismatch for")
    assert last.read_bytes() == before


# --- item 9 --------------------------------------------------------------------------------------------------------


def test_disk_full_at_the_first_checkpoint_does_not_offer_resume_and_leaves_no_skeleton(tmp_path, monkeypatch):
    npz = write_npz(tmp_path / "tiny.npz", n=32)
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: real_save(obj, FullDisk(f, 4096), *a, **k))
    out = tmp_path / "runs" / "r"
    result = run(*tiny_args(npz, out, "--max-steps", "2"))
    one_line(result, "No space left on device", "start the run again", "no earlier checkpoint")
    assert "--resume" not in result.output
    assert not (tmp_path / "runs").exists()  # no config.json / train.log / samples skeleton of a run with no checkpoint


def test_a_nan_loss_before_any_checkpoint_does_not_mention_one(tmp_path, monkeypatch):
    npz = write_npz(tmp_path / "tiny.npz", n=32)
    from edgegan.trainer.step import GANStep, StepStats

    real_add = StepStats.add

    def nan_loss(self, stats, step):  # the step's losses NaN (weights untouched): check_finite's path
        real_add(self, stats, step)
        self.first_bad.fill_(step)

    monkeypatch.setattr(StepStats, "add", nan_loss)
    assert GANStep  # the real step runs
    result = run(*tiny_args(npz, tmp_path / "r", "--max-steps", "2", "--log-every", "1"))
    one_line(result, "a loss became NaN/Inf at step 1", "no checkpoint had been written yet")
    assert "last good checkpoint" not in result.output


# --- item 10 -------------------------------------------------------------------------------------------------------


def test_batch_size_beyond_the_data_is_one_line(tmp_path):
    npz = write_npz(tmp_path / "tiny.npz", n=32)
    result = run(*tiny_args(npz, tmp_path / "runs" / "r", "--max-steps", "1", "--batch-size", "100000"))
    one_line(result, "--batch-size 100000 is larger than the data: 32 images", "--batch-size 32 or less")
    assert not (tmp_path / "runs").exists()


def test_an_explicit_data_dir_that_does_not_exist_is_an_error(tmp_path):
    result = run(
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        tmp_path / "nonexistent",
        "--max-steps",
        "1",
        "--quiet",
        "--out",
        tmp_path / "runs" / "r",
    )
    one_line(result, f"--data-dir {tmp_path / 'nonexistent'} does not exist")
    assert not (tmp_path / "runs").exists()


def test_an_empty_out_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    npz = write_npz(tmp_path / "tiny.npz", n=32)
    one_line(run(*tiny_args(npz, "", "--max-steps", "1")), "--out is empty")
    ckpt = quality_helpers.make_checkpoint(tmp_path / "g.pt")
    one_line(run("export", ckpt, "--out", "", "-q", "--no-quality-gate"), "--out is empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt", "tiny.npz"]  # nothing written in the cwd


@pytest.mark.parametrize("version", ["2.10.0a0", "2.10.0rc1", "2.10.0.dev20260101", "2.10.0a0+git1234", "2.9.9"])
def test_pre_releases_of_the_torch_floor_are_refused(version):
    with pytest.raises(CheckpointError, match="too old to load checkpoints safely"):
        check_torch_version(version)


@pytest.mark.parametrize("version", ["2.10.0", "2.10.1", "2.11.0a0", "2.13.0+cpu"])
def test_the_floor_and_later_pass(version):
    check_torch_version(version)
