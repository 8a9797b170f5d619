"""trainer/step.py: the EMA G's standing BatchNorm statistics and the MLP G's output bias from the data's mean."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.trainer.checkpoint import load_checkpoint
from edgegan.trainer.config import ModelConfig, TrainConfig
from edgegan.trainer.step import EMA, GANStep


def test_standing_statistics_are_the_averaged_weights_own():
    """After standing_statistics the EMA G's BatchNorm mean is its own activations' mean, not the copied one."""
    torch.manual_seed(0)
    g = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    ema = EMA(g, decay=0.5)
    with torch.no_grad():
        ema.model[0].weight.mul_(3.0)  # the average drifts away from G's weights; buffers still G's
    batches = [torch.randn(64, 4) for _ in range(5)]
    it = iter(batches)
    ema.standing_statistics(lambda: (next(it),), len(batches))
    with torch.no_grad():
        h = ema.model[0](torch.cat(batches))  # [320, 3]: the pre-BatchNorm activations it saw
    bn = ema.model[1]
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-5)
    assert not ema.model.training and bn.momentum == 0.1  # eval mode and the momentum restored


def test_prepare_sample_model_leaves_training_untouched():
    """Standing statistics draw from their own generator: the training noise stream and G do not move."""
    cfg = TrainConfig(model=ModelConfig(nz=8, width=4), batch_size=8, amp="off", channels_last=False)
    engine = GANStep(cfg, torch.device("cpu"), adam="foreach")
    noise, weights = engine.noise.get_state(), [p.clone() for p in engine.G.parameters()]
    before = [b.clone() for b in engine.sample_model.buffers()]
    engine.prepare_sample_model(step=5, batches=2, batch=16)
    assert torch.equal(engine.noise.get_state(), noise)
    assert all(torch.equal(a, b) for a, b in zip(weights, engine.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before, engine.sample_model.buffers()))


def test_mlp_generator_starts_at_the_data_mean(tmp_path):
    """A fresh MLP G draws the data's mean image (MNIST: a black background), not mid-grey everywhere."""
    from tests.trainer.conftest import write_npz

    data = write_npz(tmp_path / "d.npz", n=64)
    mean = np.load(data)["images"].astype(np.float32).mean(0) / 127.5 - 1  # [H, W, C]
    cfg = TrainConfig(model=ModelConfig(arch="gan", nz=8, width=4), amp="off")
    engine = GANStep(cfg, torch.device("cpu"), adam="foreach")
    assert engine.has_output_bias
    engine.init_output_bias(torch.from_numpy(mean).permute(2, 0, 1))
    for model in (engine.G, engine.sample_model):
        out = model.net[-2]  # the output Linear (then Tanh)
        assert torch.allclose(
            torch.tanh(out.bias), torch.from_numpy(mean.clip(-0.98, 0.98)).permute(2, 0, 1).reshape(-1), atol=1e-5
        )
    dcgan = GANStep(TrainConfig(model=ModelConfig(nz=8, width=4), amp="off"), torch.device("cpu"))
    assert not dcgan.has_output_bias  # no per-pixel bias in a ConvTranspose G


def test_train_ships_standing_statistics(tmp_path, tiny_npz):
    args = [
        "train",
        "--arch",
        "gan",
        "--dataset",
        "npz",
        "--data-dir",
        str(tiny_npz),
        "--width",
        "4",
        "--nz",
        "8",
        "--batch-size",
        "16",
        "--log-every",
        "1",
        "-q",
    ]
    out = tmp_path / "run"
    assert CliRunner().invoke(main, [*args, "--max-steps", "3", "--out", str(out)]).exit_code == 0
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt", map_location="cpu")
    ema_bn = [k for k in ckpt["G_ema"] if k.endswith("running_mean")]
    assert ema_bn and any(not torch.equal(ckpt["G_ema"][k], ckpt["G"][k]) for k in ema_bn)
    assert json.loads((out / "config.json").read_text())["recipe"]["name"] == "gan-unconditional"


@pytest.mark.parametrize("arch", ["dcgan", "gan"])
def test_the_ema_setting_never_feeds_back_into_training(arch):
    """What benchmarks/probes/ema_settings.py stands on: two runs that differ only in EMA decay and start train the
    same G and D, and an EMA with the second run's setting, updated next to the first run, is the second's EMA."""
    base = dict(model=ModelConfig(arch=arch, nz=8, width=4), batch_size=4, fake_multiple=2, r1=1.0, amp="off")
    runs = [
        GANStep(TrainConfig(**base, ema_decay=0.99, ema_start=0, seed=3), torch.device("cpu"), adam="foreach"),
        GANStep(TrainConfig(**base, ema_decay=0.9, ema_start=2, seed=3), torch.device("cpu"), adam="foreach"),
    ]
    shadow = EMA(runs[0].ema.model, decay=0.9, start=2)
    gen = torch.Generator().manual_seed(0)
    for t in range(6):
        x = torch.rand(4, 1, 28, 28, generator=gen) * 2 - 1  # [4, 1, 28, 28] in [-1, 1]
        for engine in runs:
            engine.step(x, None, t)
        shadow.update(runs[0].G, t)
    for a, b in ((runs[0].G, runs[1].G), (runs[0].D, runs[1].D), (shadow.model, runs[1].ema.model)):
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    # and the settings do differ in what they ship
    assert any(not torch.equal(p, q) for p, q in zip(runs[0].ema.model.parameters(), shadow.model.parameters()))


@pytest.mark.parametrize("conditional", [False, True])
def test_fake_multiple_feeds_d_that_many_fakes_per_real(conditional):
    """fake_multiple 3: D's real half sees the batch, its fake half and G's loss 3x the batch (conditional: the
    mode-seeking pairs span the fakes, and G trains); the data per step, and so an epoch, is unchanged."""
    cfg = TrainConfig(
        model=ModelConfig(nz=8, width=4, num_classes=3 if conditional else 0),
        conditional=conditional,
        batch_size=4,
        fake_multiple=3,
        amp="off",
        channels_last=False,
    )
    engine = GANStep(cfg, torch.device("cpu"), adam="foreach")
    seen: list[int] = []
    engine.D.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    before = [p.clone() for p in engine.G.parameters()]
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    y = torch.tensor([0, 1, 2, 0]) if conditional else None
    stats = engine.step(x, y, 0)
    assert seen == [4, 12, 12]  # D on the reals, on the fakes (D step), on the same fakes (G step)
    assert torch.isfinite(stats).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, engine.G.parameters()))


@pytest.mark.parametrize("arch, conditional", [("dcgan", False), ("dcgan", True), ("gan", False), ("gan", True)])
def test_out_decay_shrinks_only_the_layer_that_writes_the_pixels(arch, conditional):
    """out_decay W: Adam's step shrinks G's output layer weights by lr x W (decoupled: with no gradient at all they
    still shrink), and nothing else; the layer is the one whose outputs are the C x H x W pixels."""
    from edgegan.trainer.step import output_layer

    cfg = TrainConfig(
        model=ModelConfig(arch=arch, nz=8, width=4, num_classes=3 if conditional else 0),
        conditional=conditional,
        lr=1e-2,
        out_decay=5.0,
        amp="off",
        channels_last=False,
    )
    engine = GANStep(cfg, torch.device("cpu"), adam="foreach")
    layer = output_layer(engine.G)
    pixels = layer.out_features if isinstance(layer, torch.nn.Linear) else layer.out_channels
    assert pixels == (28 * 28 if arch == "gan" else 1)
    before = {name: p.detach().clone() for name, p in engine.G.named_parameters()}
    for p in engine.G.parameters():
        p.grad = torch.zeros_like(p)
    engine.opt_G.step()
    for name, p in engine.G.named_parameters():
        if p is layer.weight:
            torch.testing.assert_close(p.detach(), before[name] * (1 - 1e-2 * 5.0))
        else:
            assert torch.equal(p.detach(), before[name]), name
