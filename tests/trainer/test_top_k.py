"""Top-k training (trainer/losses.py GANLoss.g_top_k, top_k_fraction; trainer/step.py): G's loss over the fakes D
rates most real, the kept fraction annealed from 1."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from edgegan.trainer import losses
from edgegan.trainer.checkpoint import load_checkpoint
from edgegan.trainer.config import ConfigError, ModelConfig, TrainConfig
from edgegan.trainer.losses import TOP_K_ANNEAL_STEPS, get_loss, top_k_fraction
from edgegan.trainer.recipes import parse_changes
from edgegan.trainer.step import GANStep
from edgegan.trainer.train import train

LOGITS = [3.0, -1.0, 2.0, 0.5]  # the top half: 3.0 and 2.0


def _fraction(f: float) -> torch.Tensor:
    return torch.tensor(f, dtype=torch.float64)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("hinge", -(3.0 + 2.0) / 2),  # -logit
        ("lsgan", 0.5 * ((3.0 - 1.0) ** 2 + (2.0 - 1.0) ** 2) / 2),  # 1/2 (logit - 1)^2
        ("bce", (math.log1p(math.exp(-3.0)) + math.log1p(math.exp(-2.0))) / 2),  # -log sigmoid(logit)
    ],
)
def test_half_keeps_the_top_half_of_the_logits(name, expected):
    logits = torch.tensor(LOGITS, requires_grad=True)
    loss = get_loss(name)
    got = loss.g_top_k(logits, _fraction(0.5))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert got.item() == pytest.approx(loss.g(torch.tensor([3.0, 2.0])).item(), rel=1e-6)
    got.backward()
    assert logits.grad is not None
    assert logits.grad[1] == 0 and logits.grad[3] == 0  # the dropped fakes get no gradient
    assert logits.grad[0] != 0 and logits.grad[2] != 0


def test_fraction_one_is_the_plain_loss_and_k_is_at_least_one():
    logits = torch.tensor(LOGITS)
    hinge = get_loss("hinge")
    assert hinge.g_top_k(logits, _fraction(1.0)).item() == pytest.approx(hinge.g(logits).item())
    assert hinge.g_top_k(logits, _fraction(0.01)).item() == pytest.approx(-3.0)  # ceil(0.04) = 1: the best one
    assert hinge.g_top_k(logits, _fraction(0.3)).item() == pytest.approx(-2.5)  # ceil(1.2) = 2


def top_k_count(fraction: float, batch: int) -> int:
    """How many of `batch` fakes G's loss should keep at `fraction`, computed on the host: the oracle for the
    count GANLoss.g_top_k derives on the device."""
    return max(1, math.ceil(fraction * batch))


def test_the_kept_fraction_anneals_linearly_from_one_then_holds():
    assert top_k_fraction(0.5, 0) == 1.0
    assert top_k_fraction(0.5, TOP_K_ANNEAL_STEPS // 2) == pytest.approx(0.75)
    assert top_k_fraction(0.5, TOP_K_ANNEAL_STEPS) == 0.5
    assert top_k_fraction(0.5, 10 * TOP_K_ANNEAL_STEPS) == 0.5
    assert top_k_fraction(1.0, 123) == 1.0
    assert (top_k_count(1.0, 64), top_k_count(0.75, 64), top_k_count(0.5, 64), top_k_count(0.001, 64)) == (
        64,
        48,
        32,
        1,
    )


@pytest.mark.parametrize("batch", [7, 64])
def test_the_device_count_is_the_host_count_along_the_anneal(batch):
    """g_top_k's k (from a float64 tensor) is top_k_count's at every step of the anneal: one value on both sides."""
    hinge = get_loss("hinge")
    for t in range(0, TOP_K_ANNEAL_STEPS + 1, 7):
        f = top_k_fraction(0.25, t)
        logits = torch.randn(batch, requires_grad=True)
        hinge.g_top_k(logits, _fraction(f)).backward()
        assert logits.grad is not None
        assert int((logits.grad != 0).sum()) == top_k_count(f, batch), t


def _engine(top_k: float | None, **kw) -> GANStep:
    cfg = TrainConfig(
        model=ModelConfig(nz=8, width=4, num_classes=3),  # conditional DCGAN: mode seeking on (latent pairs)
        conditional=True,
        batch_size=8,
        amp="off",
        channels_last=False,
        top_k=top_k,
        **kw,
    )
    return GANStep(cfg, torch.device("cpu"), adam="foreach")


def _one_step(engine: GANStep, t: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(8, 1, 28, 28, generator=gen) * 2 - 1
    y = torch.randint(3, (8,), generator=gen)
    engine.step(x, y, t)
    return [p.detach().clone() for p in engine.G.parameters()]


def test_the_step_anneals_the_filter_open_at_the_start_and_closed_after():
    """At step 0 top-k keeps every fake (G moves as without it); after the anneal it keeps half (G moves elsewhere).
    With mode seeking on: top-k filters only the adversarial term."""
    plain = _one_step(_engine(None), 0)
    assert _engine(None).mode_seeking == 1.0
    opened = _one_step(_engine(0.5), 0)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, opened))
    late_plain = _one_step(_engine(None), TOP_K_ANNEAL_STEPS)
    closed = _one_step(_engine(0.5), TOP_K_ANNEAL_STEPS)
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(late_plain, closed))


@pytest.mark.parametrize("loss", ["bce", "hinge", "lsgan"])
def test_the_logged_g_loss_is_the_top_k_loss(loss, monkeypatch):
    """stats[1] (loss_G) is g over the top half of D's logits for the fakes, as D rated them in the G step."""
    engine = _engine(0.5, loss=loss, mode_seeking=0.0)
    seen: list[torch.Tensor] = []
    d_gen = engine.D_gen

    def spy(*args):
        out = d_gen(*args)  # [B] logits for the fakes in the G step
        seen.append(out.detach().clone())
        return out

    monkeypatch.setattr(engine, "D_gen", spy)
    gen = torch.Generator().manual_seed(3)
    stats = engine.step(torch.rand(8, 1, 28, 28, generator=gen) * 2 - 1, torch.randint(3, (8,), generator=gen), 5000)
    top_half = seen[-1].float().sort(descending=True).values[:4]
    assert stats[1].item() == pytest.approx(get_loss(loss).g(top_half).item(), rel=1e-5)


def test_train_batch_refuses_an_unset_fraction():
    """A step that runs train_batch itself (a captured CUDA graph) must call begin_step; without it, a clear error,
    not a run that silently trains without top-k."""
    engine = _engine(0.5)
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    z, y_fake = engine.draw_noise(8)
    with pytest.raises(RuntimeError, match="begin_step"):
        engine.train_batch(x, torch.zeros(8, dtype=torch.long), z, y_fake)
    engine.begin_step(0)
    engine.train_batch(x, torch.zeros(8, dtype=torch.long), z, y_fake)


@pytest.mark.parametrize("value", [0.0, -0.5, 1.5, float("nan")])
def test_top_k_outside_zero_one_is_refused(value):
    with pytest.raises(ConfigError, match="top-k"):
        TrainConfig(top_k=value).validate()
    with pytest.raises(ValueError):
        parse_changes(f"top_k={value}")


def test_top_k_is_an_ablation():
    assert parse_changes("top_k=0.5") == {"top_k": 0.5}
    TrainConfig(top_k=1.0).validate()


def test_a_resumed_run_anneals_from_its_own_step(tiny_cfg, tmp_path, monkeypatch):
    """The kept fraction follows the global step, so 4 steps and a resume to 10 equal 10 straight steps, bit for
    bit, with the resume inside the anneal (shortened to 6 steps: k goes 16, 14, 12, 10, 8, 6, 4 of 16)."""
    monkeypatch.setattr(losses, "TOP_K_ANNEAL_STEPS", 6)
    cfg = replace(tiny_cfg, top_k=0.25, device="cpu")
    train(replace(cfg, max_steps=10), tmp_path / "straight", progress=False)
    train(replace(cfg, max_steps=4), tmp_path / "split", progress=False)
    train(replace(cfg, max_steps=10), tmp_path / "split", resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    for key in ("G", "D", "G_ema"):
        assert a[key].keys() == b[key].keys() and all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert a["config"]["top_k"] == 0.25
