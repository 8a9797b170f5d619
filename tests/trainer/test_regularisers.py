"""D's regularisers (trainer/regularisers.py): R1 and balanced consistency regularisation, in the step and the CLI."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from edgegan.trainer.checkpoint import load_checkpoint
from edgegan.trainer.config import ConfigError, ModelConfig, TrainConfig
from edgegan.trainer.regularisers import consistency_penalty, max_shift, r1_penalty, translate
from edgegan.trainer.step import GANStep


def _translate_by_hand(x: torch.Tensor, offsets: torch.Tensor, shift: int) -> torch.Tensor:
    b, c, h, w = x.shape
    out = torch.empty_like(x)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                row = min(max(i + int(offsets[n, 0]) - shift, 0), h - 1)
                col = min(max(j + int(offsets[n, 1]) - shift, 0), w - 1)
                out[n, :, i, j] = x[n, :, row, col]
    return out


def test_translate_moves_each_image_by_its_offsets_with_the_border_repeated():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, 6, generator=gen)
    offsets = torch.tensor([[0, 4], [2, 2], [4, 0], [1, 3]])  # shift 2: [2, 2] leaves the image where it is
    moved = translate(x, offsets, 2)
    assert torch.equal(moved, _translate_by_hand(x, offsets, 2))
    assert torch.equal(moved[1], x[1])
    assert torch.equal(translate(x.to(memory_format=torch.channels_last), offsets, 2), moved)


def test_max_shift_is_an_eighth_of_the_image():
    assert [max_shift(size) for size in (4, 8, 28, 32, 64)] == [1, 1, 3, 4, 8]


def test_r1_penalty_of_a_linear_d_is_half_its_squared_weight():
    """D(x) = <w, x>: its gradient at every image is w, so the penalty is ||w||^2 / 2, and differentiable in w."""
    w = torch.randn(1, 2, 3, 3, requires_grad=True)
    images = torch.randn(5, 2, 3, 3, requires_grad=True)
    logits = (images * w).sum(dim=(1, 2, 3))  # [5]
    penalty = r1_penalty(logits, images)
    torch.testing.assert_close(penalty, 0.5 * w.detach().square().sum())
    (grad_w,) = torch.autograd.grad(penalty, w)
    torch.testing.assert_close(grad_w, w.detach())


def test_consistency_penalty_is_the_mean_squared_difference():
    a, b = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, -1.0, 0.5])
    assert consistency_penalty(a, b).item() == pytest.approx(2.0 / 3.0)


def _engine(**kw) -> GANStep:
    cfg = TrainConfig(model=ModelConfig(nz=8, width=4), batch_size=8, amp="off", channels_last=False, **kw)
    return GANStep(cfg, torch.device("cpu"), adam="foreach")


def _x(seed: int = 3) -> torch.Tensor:
    return torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("loss", ["hinge", "bce", "rahinge"])
def test_the_d_step_minimises_its_loss_plus_the_weighted_penalties(loss):
    """D's gradient in the step is that of loss_D + r1 x R1 + consistency x (CR on reals + CR on fakes), with the
    step's own translations; the statistics report loss_D alone."""
    engine = _engine(loss=loss, r1=0.5, consistency=2.0)
    reference = _engine(loss=loss)
    reference.D.load_state_dict(engine.D.state_dict())
    reference.G.load_state_dict(engine.G.state_dict())
    x = _x()
    engine.begin_step(0)
    z, _ = engine.draw_noise(8)
    offsets = engine._offsets.clone()  # [2, B, 2]
    grads: dict[str, torch.Tensor] = {}
    engine.opt_D.step = lambda *a, **k: grads.update({n: p.grad.clone() for n, p in engine.D.named_parameters()})
    stats = engine.train_batch(x, None, z, None)

    # the same sum by hand, on a copy of D in train mode, each forward its own BatchNorm batch
    d = reference.D
    fake = reference.G(z, None).detach()
    shift = max_shift(28)
    xr = x.clone().requires_grad_(True)
    d_real, d_fake = d(xr, None), d(fake, None)
    if loss == "rahinge":
        loss_real, loss_fake = reference.loss.d(d_real, d_fake)
    else:
        loss_real, loss_fake = reference.loss.d_real(d_real), reference.loss.d_fake(d_fake)
    total = (
        loss_real
        + loss_fake
        + 0.5 * r1_penalty(d_real, xr)
        + 2.0 * consistency_penalty(d_real, d(translate(x, offsets[0], shift), None))
        + 2.0 * consistency_penalty(d_fake, d(translate(fake, offsets[1], shift), None))
    )
    expected = torch.autograd.grad(total, list(d.parameters()))
    for (name, _), want in zip(d.named_parameters(), expected):
        torch.testing.assert_close(grads[name], want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(stats[0], (loss_real + loss_fake).detach(), atol=1e-6, rtol=1e-5)


def test_offsets_are_drawn_each_step_from_the_noise_stream_within_range():
    engine = _engine(consistency=1.0)
    seen = []
    for t in range(4):
        engine.step(_x(t), None, t)
        seen.append(engine._offsets.clone())
    assert all(int(o.min()) >= 0 and int(o.max()) <= 2 * max_shift(28) for o in seen)
    assert not torch.equal(seen[0], seen[1])
    again = _engine(consistency=1.0)
    again.begin_step(0)
    assert torch.equal(again._offsets, seen[0])  # seeded: the same run draws the same shifts
    assert _engine()._offsets is None  # off: no buffer, no draws (the noise stream is the one without it)


def test_a_batch_larger_than_the_planned_one_is_refused_clearly():
    engine = _engine(consistency=1.0)
    x = torch.rand(9, 1, 28, 28) * 2 - 1
    with pytest.raises(ValueError, match="batches of up to 8"):
        engine.step(x, None, 0)


@pytest.mark.parametrize("field, value", [("r1", -1.0), ("r1", float("nan")), ("consistency", -0.5)])
def test_a_bad_weight_is_a_config_error(field, value):
    with pytest.raises(ConfigError, match=f"--{field} must be a finite number >= 0"):
        replace(TrainConfig(), **{field: value}).validate()


def test_the_cli_takes_both_weights_and_refuses_a_negative_one(tmp_path, tiny_npz):
    from click.testing import CliRunner

    from edgegan.trainer.cli import train as train_command

    runner = CliRunner()
    common = ["--arch", "dcgan", "--dataset", "npz", "--data-dir", str(tiny_npz), "--width", "4", "--nz", "8"]
    common += ["--batch-size", "16", "--max-steps", "2", "--device", "cpu", "--quiet"]
    bad = runner.invoke(train_command, [*common, "--r1", "-1", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "--r1 must be a finite number >= 0" in bad.output
    assert not (tmp_path / "bad").exists()
    good = runner.invoke(train_command, [*common, "--r1", "0.5", "--consistency", "4", "--out", str(tmp_path / "r")])
    assert good.exit_code == 0, good.output
    config = load_checkpoint(tmp_path / "r")["config"]
    assert (config["r1"], config["consistency"]) == (0.5, 4.0)


@pytest.mark.filterwarnings("ignore:mode collapse:RuntimeWarning")  # 10 steps of a conditional MLP GAN
@pytest.mark.parametrize("arch", ["dcgan", "gan"])
def test_resume_is_exact(tiny_cfg, tmp_path, arch):
    """4 steps then a resume to 10 equal 10 straight steps, bit for bit: the shifts come from the recorded stream."""
    from tests.trainer.test_train import _states_equal, _straight_and_resumed

    cfg = replace(
        tiny_cfg, model=replace(tiny_cfg.model, arch=arch), conditional=arch == "gan", r1=0.2, consistency=5.0
    )
    a, b = _straight_and_resumed(replace(cfg, device="cpu"), tmp_path)
    for key in ("G", "D", "G_ema"):
        assert _states_equal(a[key], b[key]), key


def test_warm_up_before_capture_leaves_no_trace(tiny_cfg):
    """trainer/cuda_step.warm_up (before a CUDA graph's capture) undoes itself with both regularisers on; the
    step's shifts are drawn by begin_step, outside the captured part."""
    from edgegan.trainer.cuda_step import warm_up

    cfg = replace(tiny_cfg, model=replace(tiny_cfg.model, channels=1), amp="off", r1=0.2, consistency=5.0)
    cpu = torch.device("cpu")
    gen = torch.Generator().manual_seed(1)
    x, x2 = (torch.rand(16, 1, 28, 28, generator=gen) * 2 - 1 for _ in range(2))
    fresh, warmed = GANStep(cfg, cpu), GANStep(cfg, cpu)
    warmed.begin_step(0)
    z, y_fake = warmed.draw_noise(16)
    warm_up(warmed, [x2, None, torch.randn(16, 16, generator=gen), None], steps=3)
    assert torch.equal(warmed.train_batch(x, None, z, y_fake), fresh.step(x, None, 0))


def test_two_ranks_stay_identical_with_both_regularisers(tmp_path):
    """Under DDP the real half and the shifted fakes run under no_sync and the fake half's backward all-reduces
    everything: if it did not, the ranks' Ds (and then Gs) would drift apart on their different shards."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("this torch build has no gloo backend")
    from tests.trainer.test_distributed import _replicas, _torchrun, _write_npz

    data = _write_npz(tmp_path / "tiny.npz")
    _torchrun(tmp_path / "run", data, "--max-steps", "4", "--r1", "0.2", "--consistency", "5")
    record = _replicas(tmp_path / "run")
    assert len(record["ranks"]) == 2 and record["identical"]


@pytest.mark.gpu
def test_graph_step_follows_the_eager_step(tiny_cfg):
    """trainer/cuda_step.py's replayed graph trains as the eager step with R1 (a double backward, captured) and
    consistency regularisation (the shifts read from the buffer begin_step refills before each replay)."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA (torch.cuda.is_available() is False)")
    from tests.trainer.test_losses import assert_graph_step_follows_eager

    assert_graph_step_follows_eager(replace(tiny_cfg, r1=0.2, consistency=5.0))


def test_r1_trains_under_torch_compile():
    """torch.compile's AOTAutograd refuses a double backward: with R1 on, the D step's D stays eager, G and the G
    step's D are compiled, and the step trains (without this `--compile` on the MNIST DCGAN row raised)."""
    engine = _engine(r1=0.5, compile=True)
    assert engine.D_train is engine.D and engine.D_gen is not engine.D
    for t in range(2):
        assert torch.isfinite(engine.step(_x(t), None, t)).all()
