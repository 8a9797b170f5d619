from __future__ import annotations

import copy
import json
import os
from dataclasses import replace

import pytest
import torch

from edgegan.trainer.checkpoint import CheckpointError, atomic_torch_save, load_checkpoint
from edgegan.trainer.config import ModelConfig
from edgegan.trainer.models import build_generator
from edgegan.trainer.train import RunExists, TrainingDiverged, train


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_one_step_changes_the_weights(tiny_cfg, tmp_path):
    cfg = replace(tiny_cfg, max_steps=1)
    train(cfg, tmp_path / "run", progress=False)
    ckpt = load_checkpoint(tmp_path / "run")
    torch.manual_seed(cfg.seed)
    initial = build_generator(ModelConfig(**{**cfg.model.__dict__}))
    changed = [k for k, v in initial.state_dict().items() if not torch.equal(v, ckpt["G"][k])]
    assert any("weight" in k for k in changed)
    assert ckpt["step"] == 1


def test_run_writes_checkpoint_metrics_and_samples(tiny_cfg, tmp_path):
    out = tmp_path / "run"
    result = train(tiny_cfg, out, progress=False)
    assert result.step == 4
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)  # plain tensors and builtins only
    assert {"format", "kind", "config", "G", "D", "G_ema", "opt_G", "opt_D", "step", "epoch", "rng"} <= ckpt.keys()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert all(k in rows[0] for k in ("loss_d", "loss_g", "d_x", "d_g_z", "images_per_s"))
    assert (out / "samples" / "step_0000004.png").is_file()
    assert json.loads((out / "config.json").read_text())["model"]["arch"] == "dcgan"
    assert (out / "train.log").read_text().strip()


def test_epoch_end_writes_epoch_grid_and_checkpoint(tiny_cfg, tmp_path):
    cfg = replace(tiny_cfg, max_steps=None, epochs=1)  # 256 images / 16 = 16 steps
    out = tmp_path / "run"
    train(cfg, out, progress=False)
    assert (out / "samples" / "epoch_0001.png").is_file()
    assert load_checkpoint(out / "checkpoints" / "epoch_0001.pt")["step"] == 16


@pytest.mark.parametrize("arch,loss", [("dcgan", "hinge"), ("gan", "lsgan"), ("gan", "bce")])
def test_resume_is_exact(tiny_cfg, tmp_path, arch, loss):
    cfg = replace(tiny_cfg, model=replace(tiny_cfg.model, arch=arch), loss=loss, conditional=arch == "gan")
    train(replace(cfg, max_steps=10), tmp_path / "straight", progress=False)
    train(replace(cfg, max_steps=4), tmp_path / "split", progress=False)
    train(replace(cfg, max_steps=10), tmp_path / "split", resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    for key in ("G", "D", "G_ema"):
        assert _states_equal(a[key], b[key]), key
    assert a["step"] == b["step"] == 10


def test_conditional_run_records_classes(tiny_cfg, tmp_path):
    train(replace(tiny_cfg, conditional=True), tmp_path / "run", progress=False)
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["config"]["model"]["num_classes"] == 3
    assert ckpt["class_names"] == ["class0", "class1", "class2"]


def test_existing_run_is_not_clobbered(tiny_cfg, tmp_path):
    train(tiny_cfg, tmp_path / "run", progress=False)
    with pytest.raises(RunExists, match="--resume"):
        train(tiny_cfg, tmp_path / "run", progress=False)


def test_nan_guard_names_the_step_and_keeps_the_last_good_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    out = tmp_path / "run"
    train(tiny_cfg, out, progress=False)  # good checkpoint at step 4
    before = (out / "checkpoints" / "last.pt").read_bytes()

    from edgegan.trainer import data

    real_batch = data.BatchSource.batch

    def poisoned(self, epoch, index):
        x, y = real_batch(self, epoch, index)
        if epoch * self.steps_per_epoch + index >= 5:  # the 6th step sees NaN pixels
            x = torch.full_like(x, float("nan"))
        return x, y

    monkeypatch.setattr(data.BatchSource, "batch", poisoned)
    with pytest.raises(TrainingDiverged, match="step 6"):
        train(replace(tiny_cfg, max_steps=12, log_every=4), out, resume=True, progress=False)
    assert (out / "checkpoints" / "last.pt").read_bytes() == before


def test_interrupted_checkpoint_write_leaves_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_torch_save({"a": torch.ones(3)}, path)

    def crash(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"a": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(3))
    assert os.listdir(tmp_path) == ["last.pt"]  # no temp file left


class Payload:  # a pickled object that weights_only loading must refuse
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoint_loading_refuses_pickles_and_junk(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"kind": "edgegan-checkpoint", "payload": Payload()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(2)}, other)
    with pytest.raises(CheckpointError, match="not an edgegan checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_truncated_checkpoint_is_refused(tiny_cfg, tmp_path):
    train(tiny_cfg, tmp_path / "run", progress=False)
    data = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(cut)


def test_ema_differs_from_raw_generator(tiny_cfg, tmp_path):
    train(replace(tiny_cfg, max_steps=6), tmp_path / "run", progress=False)
    ckpt = load_checkpoint(tmp_path / "run")
    assert not _states_equal(ckpt["G"], ckpt["G_ema"])
    train(replace(tiny_cfg, ema=False), tmp_path / "noema", progress=False)
    assert load_checkpoint(tmp_path / "noema")["G_ema"] is None


def test_sampling_follows_the_contract(tiny_cfg, tmp_path):
    from edgegan.runtime.contract import draw_latents
    from edgegan.trainer.sample import generate_images, load_generator

    train(replace(tiny_cfg, conditional=True), tmp_path / "run", progress=False)
    G, cfg, _ = load_generator(tmp_path / "run")
    images = generate_images(G, 5, seed=7)
    assert images.shape == (5, 1, 28, 28) and images.dtype == "float32"
    z = torch.from_numpy(draw_latents(5, cfg.model.nz, 7))
    with torch.no_grad():
        expected = G(z, torch.arange(5) % 3).numpy()
    assert (images == expected).all()


def test_train_leaves_the_callers_config_unchanged(tiny_cfg, tmp_path):
    cfg = replace(tiny_cfg, conditional=True, amp="auto")
    before = copy.deepcopy(cfg)
    result = train(cfg, tmp_path / "run", progress=False)
    assert cfg == before  # nested ModelConfig and class_names included
    ran = result.config  # fitted to the data, amp resolved: what config.json records
    assert (ran.model.num_classes, ran.class_names, ran.amp) != (0, [], "auto")
    assert ran.model.num_classes == 3 and ran.class_names == ["class0", "class1", "class2"]
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == ran.to_dict()
    assert result.is_main
    more = replace(cfg, max_steps=6)
    again = copy.deepcopy(more)
    assert train(more, tmp_path / "run", resume=True, progress=False).step == 6
    assert more == again


def test_fp16_autocast_on_cpu_is_a_device_error():
    from edgegan.trainer.distributed import DeviceError
    from edgegan.trainer.step import autocast

    with pytest.raises(DeviceError, match="--amp fp16 needs CUDA"):
        autocast("fp16", torch.device("cpu"))


def test_piped_progress_of_a_five_epoch_run_is_a_few_plain_lines(tiny_cfg, tmp_path, capsys, monkeypatch):
    from tests.trainer.conftest import write_npz

    # capsys's stderr is not a TTY: what `edgegan train ... 2>&1 | cat` sees. log_every=1 updates the display on
    # all 40 steps (128 images / 16 per batch x 5 epochs); tqdm wrote a `\r` frame for each.
    monkeypatch.delenv("EDGEGAN_PROGRESS_SECONDS", raising=False)
    data = write_npz(tmp_path / "small.npz", n=128)
    result = train(replace(tiny_cfg, data_dir=str(data), max_steps=None, epochs=5, log_every=1), tmp_path / "run")
    assert result.step == 40
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and 1 <= len(lines) < 50
    assert lines[-1].startswith("train run: done 40/40 step in ") and "loss_g=" in lines[-1] and "img_s=" in lines[-1]


def test_progress_false_prints_nothing_and_a_terminal_gets_the_bar(tiny_cfg, tmp_path, capsys, monkeypatch):
    train(tiny_cfg, tmp_path / "quiet", progress=False)
    assert capsys.readouterr().err == ""

    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    train(tiny_cfg, tmp_path / "tty")
    assert "\r" in term.getvalue() and "train tty" in term.getvalue() and "4/4" in term.getvalue()
