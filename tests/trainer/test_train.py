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


def _straight_and_resumed(cfg, tmp_path) -> tuple[dict, dict]:
    """Checkpoints of 10 steps in one run, and of 4 steps then a resume to 10."""
    train(replace(cfg, max_steps=10), tmp_path / "straight", progress=False)
    train(replace(cfg, max_steps=4), tmp_path / "split", progress=False)
    train(replace(cfg, max_steps=10), tmp_path / "split", resume=True, progress=False)
    return load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")


@pytest.mark.parametrize("arch,loss", [("dcgan", "hinge"), ("gan", "lsgan"), ("gan", "bce")])
def test_resume_is_exact(tiny_cfg, tmp_path, arch, loss):
    """On the CPU a resumed run equals the straight one bit for bit, whatever the machine's default device.

    On CUDA it does so only with --deterministic (cuDNN picks atomic-add weight-gradient algorithms otherwise:
    the 5th digit differs after 10 steps); test_resume_is_exact_on_cuda_when_deterministic checks that."""
    cfg = replace(
        tiny_cfg, model=replace(tiny_cfg.model, arch=arch), loss=loss, conditional=arch == "gan", device="cpu"
    )
    a, b = _straight_and_resumed(cfg, tmp_path)
    for key in ("G", "D", "G_ema"):
        assert _states_equal(a[key], b[key]), key
    assert a["step"] == b["step"] == 10


@pytest.fixture
def deterministic_mode():
    """trainer/cuda_step.deterministic() for one test; torch's process-wide flags restored after it."""
    from edgegan.trainer.cuda_step import deterministic

    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    )
    yield deterministic
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    (
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    ) = before[2:]


@pytest.mark.gpu
@pytest.mark.parametrize("arch,loss", [("dcgan", "hinge"), ("gan", "bce")])
def test_resume_is_exact_on_cuda_when_deterministic(tiny_cfg, tmp_path, arch, loss, deterministic_mode):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA (torch.cuda.is_available() is False)")
    deterministic_mode()
    cfg = replace(
        tiny_cfg, model=replace(tiny_cfg.model, arch=arch), loss=loss, conditional=arch == "gan", device="cuda"
    )
    a, b = _straight_and_resumed(cfg, tmp_path)
    for key in ("G", "D", "G_ema"):
        assert _states_equal(a[key], b[key]), key


def test_deterministic_flag_sets_the_cuda_switches(tiny_cfg, tmp_path, deterministic_mode, monkeypatch):
    from click.testing import CliRunner

    from edgegan.cli import main

    torch.backends.cudnn.benchmark = True  # as a tuned process would have it
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--dataset",
            "npz",
            "--data-dir",
            tiny_cfg.data_dir,
            "--width",
            "8",
            "--nz",
            "16",
            "--max-steps",
            "2",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--deterministic",
            "-q",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.benchmark and not torch.backends.cudnn.allow_tf32
    assert not torch.backends.cuda.matmul.allow_tf32


def test_the_cuda_graph_step_is_chosen_only_on_cuda(tiny_cfg, monkeypatch):
    from edgegan.trainer.cuda_step import ENV_SWITCH, choose_step, make_step
    from edgegan.trainer.step import GANStep

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert choose_step(tiny_cfg, cuda)[0] == "graph"
    assert choose_step(tiny_cfg, cpu) == ("eager", "CUDA graphs need a CUDA device; this run is on cpu")
    assert "DDP" in choose_step(tiny_cfg, cuda, world_size=2)[1]
    assert "--compile" in choose_step(replace(tiny_cfg, compile=True), cuda)[1]
    assert "fp16" in choose_step(replace(tiny_cfg, amp="fp16"), cuda)[1]
    monkeypatch.setenv(ENV_SWITCH, "0")
    assert choose_step(tiny_cfg, cuda) == ("eager", f"{ENV_SWITCH}=0")
    engine = make_step(replace(tiny_cfg, model=replace(tiny_cfg.model, channels=1)), cpu)
    assert type(engine) is GANStep


def test_a_step_is_its_noise_then_its_batch(tiny_cfg):
    """GANStep.step == draw_noise + train_batch + EMA: the split the CUDA graph captures changes nothing."""
    from edgegan.trainer.step import GANStep

    cfg = replace(tiny_cfg, model=replace(tiny_cfg.model, channels=1, num_classes=3), amp="off", conditional=True)
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    y = torch.arange(16) % 3
    whole, split = GANStep(cfg, torch.device("cpu")), GANStep(cfg, torch.device("cpu"))
    stats = whole.step(x, y, 0)
    z, y_fake = split.draw_noise(16)
    assert torch.equal(y_fake[:8], y_fake[8:])  # mode seeking: the latent pairs share a label
    assert torch.equal(split.train_batch(x, y, z, y_fake), stats)
    split.ema.update(split.G, 0)
    assert _states_equal(whole.G.state_dict(), split.G.state_dict())
    assert _states_equal(whole.ema.model.state_dict(), split.ema.model.state_dict())


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


@pytest.mark.parametrize("resumed", [False, True])
def test_warm_up_before_capture_leaves_no_trace(tiny_cfg, resumed):
    """trainer/cuda_step.warm_up (run before a CUDA graph is captured) trains and then undoes it exactly: the next
    step is the step a fresh engine takes, with fresh or with loaded Adam state (a resume). Proven on the CPU."""
    from edgegan.trainer.cuda_step import warm_up
    from edgegan.trainer.step import GANStep

    cfg = replace(tiny_cfg, model=replace(tiny_cfg.model, channels=1), amp="off")
    cpu = torch.device("cpu")
    gen = torch.Generator().manual_seed(1)
    x, x2 = (torch.rand(16, 1, 28, 28, generator=gen) * 2 - 1 for _ in range(2))
    fresh, warmed = GANStep(cfg, cpu), GANStep(cfg, cpu)
    if resumed:  # a step first, so Adam's moments exist before the warm-up
        for engine in (fresh, warmed):
            engine.step(x2, None, 0)
    z, y_fake = warmed.draw_noise(16)
    warm_up(warmed, [x2, None, torch.randn(16, 16, generator=gen), None], steps=3)
    assert torch.equal(warmed.train_batch(x, None, z, y_fake), fresh.step(x, None, 1))
    for key in ("G", "D"):
        assert _states_equal(fresh.state_dict()[key], warmed.state_dict()[key]), key
    for key in ("opt_G", "opt_D"):
        a, b = (
            [v for state in fresh_or_warm.state_dict()[key]["state"].values() for v in state.values()]
            for fresh_or_warm in (fresh, warmed)
        )
        assert len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b)), key
