"""Relativistic average losses (trainer/losses.py rasgan, rahinge; Jolicoeur-Martineau 2018, Algorithm 2) and how
trainer/step.py trains with them: one D backward of both halves, G's loss reading the D step's real logits."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace

import pytest
import torch

from edgegan.trainer.checkpoint import load_checkpoint
from edgegan.trainer.config import LOSSES as CONFIG_LOSSES
from edgegan.trainer.config import ConfigError, ModelConfig, TrainConfig
from edgegan.trainer.losses import LOSSES, get_loss
from edgegan.trainer.recipes import apply_recipe, parse_changes
from edgegan.trainer.step import GANStep
from edgegan.trainer.train import train

RELATIVISTIC = ["rasgan", "rahinge"]
REAL = [2.0, -0.5, 1.0]  # D's logits for 3 real images; mean 5/6
FAKE = [-1.0, 0.5, -2.0, 0.0]  # and for 4 fakes (another batch size: each mean is over its own set); mean -5/8


def _softplus(t: float) -> float:
    return math.log1p(math.exp(t))


def _relu(t: float) -> float:
    return max(0.0, t)


# f1, f2 of the paper for each loss, written out: the hand formula the tests hold GANLoss to.
F1F2 = {
    "rasgan": (lambda t: _softplus(-t), lambda t: _softplus(t)),
    "rahinge": (lambda t: _relu(1.0 - t), lambda t: _relu(1.0 + t)),
}


# The same written with torch's elementwise ops: for gradients.
F1F2_TORCH = {
    "rasgan": (lambda t: torch.nn.functional.softplus(-t), torch.nn.functional.softplus),
    "rahinge": (lambda t: torch.relu(1 - t), lambda t: torch.relu(1 + t)),
}


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _hand_d(name: str, real: list[float], fake: list[float]) -> tuple[float, float]:
    """D's (real, fake) terms: mean f1(C_r - mean C_f), mean f2(C_f - mean C_r)."""
    f1, f2 = F1F2[name]
    mr, mf = _mean(real), _mean(fake)
    return _mean(f1(r - mf) for r in real), _mean(f2(f - mr) for f in fake)


def _hand_g(name: str, real: list[float], fake: list[float]) -> float:
    """G's loss: mean f1(C_f - mean C_r) + mean f2(C_r - mean C_f)."""
    f1, f2 = F1F2[name]
    mr, mf = _mean(real), _mean(fake)
    return _mean(f1(f - mr) for f in fake) + _mean(f2(r - mf) for r in real)


def test_the_new_losses_are_in_both_tables_and_ablatable():
    assert tuple(LOSSES) == CONFIG_LOSSES
    for name in RELATIVISTIC:
        assert get_loss(name).relativistic
        TrainConfig(loss=name).validate()
        assert parse_changes(f"loss={name}") == {"loss": name}  # time_to_quality --ablate loss=...
    assert not any(get_loss(name).relativistic for name in ("bce", "hinge", "lsgan"))
    with pytest.raises(ConfigError, match="rahinge"):
        TrainConfig(loss="rahing").validate()


def test_an_ablated_loss_keeps_the_rest_of_the_fashion_mnist_row():
    cfg = apply_recipe(TrainConfig(dataset="fashion-mnist", loss="rahinge"))
    assert cfg.recipe is not None and cfg.recipe["name"] == "dcgan-fashion-mnist-unconditional"
    assert (cfg.loss, cfg.lr, cfg.beta1, cfg.beta2, cfg.ema_decay, cfg.lr_schedule) == (
        "rahinge",
        1e-3,
        0.0,
        0.9,
        0.99,
        "linear_half",
    )


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_d_and_g_are_the_papers_formula(name):
    loss = get_loss(name)
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    d_real, d_fake = loss.d(real, fake)
    want_real, want_fake = _hand_d(name, REAL, FAKE)
    assert d_real.item() == pytest.approx(want_real, rel=1e-12)
    assert d_fake.item() == pytest.approx(want_fake, rel=1e-12)
    assert loss.g(fake, real).item() == pytest.approx(_hand_g(name, REAL, FAKE), rel=1e-12)
    # G's loss is D's with the roles swapped: what D calls the real term, G asks of the fakes.
    assert loss.g(fake, real).item() == pytest.approx(sum(t.item() for t in loss.d(fake, real)), rel=1e-12)


def test_rahinge_values_worked_by_hand():
    """mean C_r = 5/6, mean C_f = -5/8. D: relu(1 - (r + 5/8)) over 2, -1/2, 1 -> 0, 7/8, 0; relu(1 + (f - 5/6))
    over -1, 1/2, -2, 0 -> 0, 2/3, 0, 1/6. G: relu(1 - (f - 5/6)) -> 17/6, 4/3, 23/6, 11/6; relu(1 + r + 5/8)
    -> 29/8, 9/8, 21/8."""
    loss = get_loss("rahinge")
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    d_real, d_fake = loss.d(real, fake)
    assert d_real.item() == pytest.approx((7 / 8) / 3)
    assert d_fake.item() == pytest.approx((2 / 3 + 1 / 6) / 4)
    assert loss.g(fake, real).item() == pytest.approx(
        (17 / 6 + 4 / 3 + 23 / 6 + 11 / 6) / 4 + (29 / 8 + 9 / 8 + 21 / 8) / 3
    )


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_gradients_are_the_formulas(name):
    """Autograd through GANLoss equals autograd through the formula written with torch's elementwise ops."""
    f1, f2 = F1F2_TORCH[name]
    gen = torch.Generator().manual_seed(0)
    real0, fake0 = (
        torch.randn(6, generator=gen, dtype=torch.float64),
        torch.randn(5, generator=gen, dtype=torch.float64),
    )
    loss = get_loss(name)
    for side in ("d", "g"):
        a = [real0.clone().requires_grad_(), fake0.clone().requires_grad_()]
        b = [real0.clone().requires_grad_(), fake0.clone().requires_grad_()]
        if side == "d":
            sum(loss.d(*a)).backward()
            (f1(b[0] - b[1].mean()).mean() + f2(b[1] - b[0].mean()).mean()).backward()
        else:
            loss.g(a[1], a[0]).backward()
            (f1(b[1] - b[0].mean()).mean() + f2(b[0] - b[1].mean()).mean()).backward()
        for u, v in zip(a, b):
            assert u.grad is not None and v.grad is not None
            torch.testing.assert_close(u.grad, v.grad)


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_losses_prefer_the_right_answer(name):
    loss = get_loss(name)
    high, low = torch.full((8,), 3.0), torch.full((8,), -3.0)
    assert sum(loss.d(high, low)) < sum(loss.d(low, high))  # D: reals above fakes
    assert loss.g(high, low) < loss.g(low, high)  # G: fakes above reals


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_the_plain_calls_refuse_a_relativistic_loss(name):
    loss = get_loss(name)
    logits = torch.zeros(4)
    for call in (loss.d_real, loss.d_fake, loss.g):
        with pytest.raises(ValueError, match="relativistic"):
            call(logits)
    with pytest.raises(ValueError, match="relativistic"):
        loss.g_top_k(logits, torch.tensor(0.5, dtype=torch.float64))


@pytest.mark.parametrize("name", ["bce", "hinge", "lsgan"])
def test_the_plain_losses_d_is_their_two_halves(name):
    loss = get_loss(name)
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    assert [t.item() for t in loss.d(real, fake)] == [loss.d_real(real).item(), loss.d_fake(fake).item()]
    assert loss.g(fake).item() == loss.g(fake, real).item()  # real logits unused


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_top_k_is_the_loss_over_the_kept_fakes_alone(name):
    """Relativistic top-k: G's loss as if the batch's fakes were the k most real-looking; fraction 1 is g."""
    loss = get_loss(name)
    real = torch.tensor(REAL)
    fake = torch.tensor(FAKE, requires_grad=True)  # sorted: 0.5, 0.0, -1.0, -2.0
    got = loss.g_top_k(fake, torch.tensor(0.5, dtype=torch.float64), real)
    assert got.item() == pytest.approx(_hand_g(name, REAL, [0.5, 0.0]), rel=1e-6)
    got.backward()
    assert fake.grad is not None
    assert fake.grad[0] == 0 and fake.grad[2] == 0  # -1.0 and -2.0 dropped: no gradient
    assert fake.grad[1] != 0 and fake.grad[3] != 0
    full = loss.g_top_k(torch.tensor(FAKE), torch.tensor(1.0, dtype=torch.float64), real)
    assert full.item() == pytest.approx(loss.g(torch.tensor(FAKE), real).item(), rel=1e-6)


def test_scores_are_meaningful_for_each_family():
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    mr, mf = _mean(REAL), _mean(FAKE)
    # rasgan: the relativistic D's probabilities, sigmoid(C_r - mean C_f) and sigmoid(C_f - mean C_r)
    d_x, d_g_z = get_loss("rasgan").scores(real, fake)
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    assert d_x.item() == pytest.approx(_mean(sig(r - mf) for r in REAL), rel=1e-6)
    assert d_g_z.item() == pytest.approx(_mean(sig(f - mr) for f in FAKE), rel=1e-6)
    assert 0.5 < d_x.item() < 1 and 0 < d_g_z.item() < 0.5  # D rates these reals above these fakes
    # rahinge: the margin mean C_r - mean C_f and its negative, whatever constant the logits drift by
    for shift in (0.0, -9.0):
        d_x, d_g_z = get_loss("rahinge").scores(real + shift, fake + shift)
        assert (d_x.item(), d_g_z.item()) == (pytest.approx(mr - mf), pytest.approx(mf - mr))
    # bce: sigmoid of the logits, as before; hinge, lsgan: the raw mean logits
    d_x, d_g_z = get_loss("bce").scores(real, fake)
    assert d_x.item() == pytest.approx(_mean(sig(r) for r in REAL), rel=1e-6)
    for name in ("hinge", "lsgan"):
        d_x, d_g_z = get_loss(name).scores(real, fake)
        assert (d_x.item(), d_g_z.item()) == (pytest.approx(mr), pytest.approx(mf))


def _engine(loss: str, labels: int = 0, **kw) -> GANStep:
    """A tiny DCGAN step on the CPU (conditional with `labels` classes)."""
    cfg = TrainConfig(
        model=ModelConfig(nz=8, width=4, num_classes=labels),
        conditional=bool(labels),
        batch_size=8,
        amp="off",
        channels_last=False,
        loss=loss,
        **kw,
    )
    return GANStep(cfg, torch.device("cpu"), adam="foreach")


def _batch(seed: int = 3, labels: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(8, 1, 28, 28, generator=gen) * 2 - 1
    return x, (torch.randint(labels, (8,), generator=gen) if labels else None)


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_the_step_uses_two_d_forwards_then_g_reads_the_d_steps_real_logits(name, monkeypatch):
    """Per step: D_train twice (real, then fake), D_gen once, no third forward on reals; the statistics are
    loss.d of the D step's logits, loss.g of the G step's fakes against the D step's real logits, loss.scores."""
    engine = _engine(name)
    calls: dict[str, list[torch.Tensor]] = {"D_train": [], "D_gen": []}
    for attr in calls:
        inner = getattr(engine, attr)

        def spy(*args, _inner=inner, _seen=calls[attr]):
            out = _inner(*args)
            _seen.append(out.detach().clone())
            return out

        monkeypatch.setattr(engine, attr, spy)
    x, _ = _batch()
    stats = engine.step(x, None, 0)
    assert (len(calls["D_train"]), len(calls["D_gen"])) == (2, 1)
    d_real, d_fake = (t.float() for t in calls["D_train"])
    d_gen = calls["D_gen"][0].float()
    loss = get_loss(name)
    assert stats[0].item() == pytest.approx(sum(loss.d(d_real, d_fake)).item(), rel=1e-5)
    assert stats[1].item() == pytest.approx(loss.g(d_gen, d_real).item(), rel=1e-5)
    assert [s.item() for s in stats[2:]] == pytest.approx([s.item() for s in loss.scores(d_real, d_fake)], rel=1e-5)


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_the_d_steps_one_backward_is_the_gradient_of_the_formula(name):
    """D's gradient after a step is that of the paper's D loss on a copy of D and G taken before the step,
    with the real and fake halves through D separately (their own BatchNorm batches)."""
    engine = _engine(name)
    G0, D0 = copy.deepcopy(engine.G), copy.deepcopy(engine.D)
    x, _ = _batch()
    engine.begin_step(0)
    z, y_fake = engine.draw_noise(8)
    engine.train_batch(x, None, z, y_fake)
    f1, f2 = F1F2_TORCH[name]
    with torch.no_grad():
        fake = G0(z, None)
    c_r, c_f = D0(x, None).float(), D0(fake, None).float()
    (f1(c_r - c_f.mean()).mean() + f2(c_f - c_r.mean()).mean()).backward()
    for (key, p), p0 in zip(engine.D.named_parameters(), D0.parameters()):
        assert p.grad is not None and p0.grad is not None
        torch.testing.assert_close(p.grad, p0.grad, rtol=1e-4, atol=1e-6, msg=key)


@pytest.mark.parametrize("name", RELATIVISTIC)
@pytest.mark.parametrize(
    "changes, labels",
    [({}, 0), ({"top_k": 0.5}, 0), ({}, 3)],
    ids=["plain", "top_k", "mode_seeking"],
)
def test_a_few_steps_move_g_and_stay_finite(name, changes, labels):
    """Top-k and mode seeking (on by default for the conditional DCGAN) train with the relativistic losses too;
    at step 2,000 top-k's anneal is over."""
    engine = _engine(name, labels, **changes)
    assert engine.mode_seeking == (1.0 if labels else 0.0)
    before = [p.detach().clone() for p in engine.G.parameters()]
    for t in range(4):
        x, y = _batch(t, labels)
        stats = engine.step(x, y, 2000 + t)
        assert torch.isfinite(stats).all(), stats
    assert any(not torch.equal(a, b) for a, b in zip(before, engine.G.parameters()))


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_relativistic_top_k_at_fraction_one_is_the_plain_step(name):
    """Before the anneal starts closing (step 0: fraction 1) top-k's G step is the plain one, to rounding."""
    plain, top_k = _engine(name), _engine(name, top_k=0.5)
    x, _ = _batch()
    a, b = plain.step(x, None, 0), top_k.step(x, None, 0)
    torch.testing.assert_close(a, b)
    for p, q in zip(plain.G.parameters(), top_k.G.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_training_runs_and_logs_finite_metrics(tiny_cfg, tmp_path, name):
    cfg = replace(tiny_cfg, loss=name, max_steps=6, device="cpu")
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.step == 6
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(math.isfinite(r[k]) for r in rows for k in ("loss_d", "loss_g", "d_x", "d_g_z"))
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["config"]["loss"] == name
    torch.manual_seed(cfg.seed)
    from edgegan.trainer.models import build_generator

    initial = build_generator(cfg.model)
    assert any(not torch.equal(v, ckpt["G"][k]) for k, v in initial.state_dict().items() if "weight" in k)


@pytest.mark.filterwarnings("ignore:mode collapse:RuntimeWarning")  # 10 steps of a conditional MLP GAN
@pytest.mark.parametrize(
    "arch, name, top_k", [("dcgan", "rahinge", None), ("dcgan", "rasgan", 0.25), ("gan", "rasgan", None)]
)
def test_resume_is_exact(tiny_cfg, tmp_path, arch, name, top_k):
    """4 steps then a resume to 10 equal 10 straight steps, bit for bit (as tests/trainer/test_train.py's
    test_resume_is_exact for the plain losses)."""
    from tests.trainer.test_train import _states_equal, _straight_and_resumed

    cfg = replace(
        tiny_cfg,
        model=replace(tiny_cfg.model, arch=arch),
        loss=name,
        top_k=top_k,
        conditional=arch == "gan",
        device="cpu",
    )
    a, b = _straight_and_resumed(cfg, tmp_path)
    for key in ("G", "D", "G_ema"):
        assert _states_equal(a[key], b[key]), key
    assert a["step"] == b["step"] == 10


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_warm_up_before_capture_leaves_no_trace(tiny_cfg, name):
    """trainer/cuda_step.warm_up (before a CUDA graph's capture) undoes itself with a relativistic loss too."""
    from edgegan.trainer.cuda_step import warm_up

    cfg = replace(tiny_cfg, model=replace(tiny_cfg.model, channels=1), amp="off", loss=name)
    cpu = torch.device("cpu")
    gen = torch.Generator().manual_seed(1)
    x, x2 = (torch.rand(16, 1, 28, 28, generator=gen) * 2 - 1 for _ in range(2))
    fresh, warmed = GANStep(cfg, cpu), GANStep(cfg, cpu)
    z, y_fake = warmed.draw_noise(16)
    warm_up(warmed, [x2, None, torch.randn(16, 16, generator=gen), None], steps=3)
    assert torch.equal(warmed.train_batch(x, None, z, y_fake), fresh.step(x, None, 0))


def test_two_ranks_stay_identical_with_a_relativistic_loss(tmp_path):
    """Under DDP the real forward runs under no_sync and the one backward all-reduces both halves: if it did not,
    the ranks' Ds (and then Gs) would drift apart on their different shards."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("this torch build has no gloo backend")
    from tests.trainer.test_distributed import _replicas, _torchrun, _write_npz

    data = _write_npz(tmp_path / "tiny.npz")
    _torchrun(tmp_path / "run", data, "--max-steps", "4", "--loss", "rahinge")
    record = _replicas(tmp_path / "run")
    assert len(record["ranks"]) == 2 and record["identical"]
    assert load_checkpoint(tmp_path / "run")["config"]["loss"] == "rahinge"


@pytest.mark.gpu
@pytest.mark.parametrize("name", RELATIVISTIC)
@pytest.mark.parametrize("changes", [{}, {"top_k": 0.5}], ids=["plain", "top_k"])
def test_graph_step_follows_the_eager_step(tiny_cfg, name, changes, monkeypatch):
    """trainer/cuda_step.py's replayed graph trains as the eager step with a relativistic loss (the D step's one
    backward and G's reuse of the real logits are captured; top-k's fraction is read from the device)."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA (torch.cuda.is_available() is False)")
    from edgegan.trainer import losses

    monkeypatch.setattr(losses, "TOP_K_ANNEAL_STEPS", 3)
    assert_graph_step_follows_eager(replace(tiny_cfg, loss=name, **changes))


def assert_graph_step_follows_eager(cfg) -> None:
    """Five steps of GraphedGANStep (one capture) and of the eager GANStep on the same batches, CUDA, fp32: the
    statistics and G's weights agree (cuDNN's algorithms differ, so to 1e-3)."""
    from edgegan.trainer.cuda_step import GraphedGANStep

    cfg = replace(cfg, model=replace(cfg.model, channels=1), amp="off", device="cuda")
    device = torch.device("cuda")
    eager, graphed = GANStep(cfg, device), GraphedGANStep(cfg, device)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for t in range(5):
        x = torch.rand(16, 1, 28, 28, device="cuda", generator=gen) * 2 - 1
        torch.testing.assert_close(graphed.step(x, None, t), eager.step(x, None, t), atol=1e-3, rtol=1e-3)
    assert graphed.captures == 1
    for key, value in eager.G.state_dict().items():
        torch.testing.assert_close(graphed.G.state_dict()[key], value, atol=1e-3, rtol=1e-3)
