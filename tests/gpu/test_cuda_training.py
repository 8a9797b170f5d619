"""Training on CUDA: the one-graph step computes what the eager step computes, and train() takes it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.trainer.conftest import write_npz

pytestmark = pytest.mark.gpu


@pytest.fixture
def cuda_cfg(tmp_path, torch_cuda):
    from edgegan.trainer.config import ModelConfig, TrainConfig

    npz = write_npz(tmp_path / "tiny.npz")
    return TrainConfig(
        model=ModelConfig(arch="dcgan", nz=16, image_size=28, width=8, channels=1, num_classes=3),
        dataset="npz",
        data_dir=str(npz),
        conditional=True,
        batch_size=16,
        max_steps=6,
        log_every=2,
        seed=3,
        device="cuda",
        amp="off",
    )


@pytest.mark.parametrize(
    "amp, changes",
    [
        ("off", {}),
        ("bf16", {}),
        ("off", {"top_k": 0.5}),
        ("off", {"d_norm": "spectral"}),
        ("off", {"lr_schedule": "linear_half", "max_steps": 4}),
    ],
    ids=["fp32", "bf16", "top_k", "spectral_d", "lr_schedule"],
)
def test_graph_step_follows_the_eager_step(cuda_cfg, torch_cuda, amp, changes, monkeypatch):
    """The replayed graph trains as the eager step does; with top-k its kept fraction changes every step here
    (the anneal shortened to 3 steps), which a graph that froze it at capture would miss; a spectrally normalised
    D's power iteration updates its vectors inside the graph. With linear_half over a plan of 4 steps both lrs
    go 1, 1, 1, 0.5 x, then 0 at step 4 (past the plan): there the graphed Adam must leave every weight as it was,
    which a graph that read the lr at capture would not."""
    torch = torch_cuda
    from edgegan.trainer import losses
    from edgegan.trainer.cuda_step import GraphedGANStep
    from edgegan.trainer.step import GANStep

    monkeypatch.setattr(losses, "TOP_K_ANNEAL_STEPS", 3)
    cfg = replace(cuda_cfg, amp=amp, **changes)
    device = torch.device("cuda")
    eager, graphed = GANStep(cfg, device), GraphedGANStep(cfg, device)
    gen = torch.Generator(device="cuda").manual_seed(0)
    scheduled = "lr_schedule" in changes
    for t in range(5):
        x = torch.rand(16, 1, 28, 28, device="cuda", generator=gen) * 2 - 1
        y = torch.randint(3, (16,), device="cuda", generator=gen)
        before = [[p.detach().clone() for p in e.G.parameters()] for e in (eager, graphed)]
        a, b = eager.step(x, y, t), graphed.step(x, y, t)
        torch.testing.assert_close(b, a, atol=1e-3, rtol=1e-3)
        if scheduled:
            for opt_e, opt_g in ((eager.opt_G, graphed.opt_G), (eager.opt_D, graphed.opt_D)):
                lr = opt_g.param_groups[0]["lr"]
                assert torch.is_tensor(lr) and lr.device.type == "cuda"  # what the replay reads
                assert float(lr) == pytest.approx(opt_e.param_groups[0]["lr"], rel=1e-6)
            if t == 4:  # lr 0: no weight moves, in either step
                for old, e in zip(before, (eager, graphed)):
                    assert all(torch.equal(p0, p) for p0, p in zip(old, e.G.parameters()))
    assert graphed.captures == 1
    if scheduled:  # a checkpoint holds the lr as a float, as the eager step's does
        assert graphed.state_dict()["opt_G"]["param_groups"][0]["lr"] == 0.0
        assert torch.is_tensor(graphed.opt_G.param_groups[0]["lr"])
    for name, value in eager.G.state_dict().items():
        torch.testing.assert_close(graphed.G.state_dict()[name], value, atol=1e-3, rtol=1e-3)


def test_train_on_cuda_takes_the_graph_step_and_resumes(cuda_cfg, tmp_path):
    from edgegan.trainer.checkpoint import load_checkpoint
    from edgegan.trainer.train import train

    result = train(cuda_cfg, tmp_path / "run", progress=False)
    assert result.step == 6
    assert "step: graph" in (tmp_path / "run" / "train.log").read_text()
    train(replace(cuda_cfg, max_steps=8), tmp_path / "run", resume=True, progress=False)
    assert load_checkpoint(tmp_path / "run")["step"] == 8
