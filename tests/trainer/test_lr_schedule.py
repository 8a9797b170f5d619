"""The lr schedule (TrainConfig.lr_schedule, trainer/step.py lr_factor and GANStep.begin_step): "constant" leaves
both Adams' lr alone; "linear_half" holds it for the first half of the run's planned steps, then takes it linearly
to 0 at the end, for G and D alike."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.trainer.checkpoint import load_checkpoint
from edgegan.trainer.config import ConfigError, ModelConfig, TrainConfig
from edgegan.trainer.recipes import parse_changes
from edgegan.trainer.step import GANStep, lr_factor
from edgegan.trainer.train import train


def test_linear_half_holds_for_half_the_run_then_falls_to_zero_at_its_end():
    total = 8000
    assert lr_factor("linear_half", 0, total) == 1.0
    assert lr_factor("linear_half", total // 2, total) == 1.0  # the last step at the full rate
    assert lr_factor("linear_half", total // 2 + 1, total) == pytest.approx(1 - 1 / 4000)
    assert lr_factor("linear_half", 3 * total // 4, total) == 0.5
    assert lr_factor("linear_half", total - 1, total) == pytest.approx(2 / total)  # the last update: small, not 0
    assert lr_factor("linear_half", total, total) == 0.0 and lr_factor("linear_half", total + 5, total) == 0.0
    factors = [lr_factor("linear_half", t, total) for t in range(total)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))  # never rises
    # an odd plan: half of 7 is 3.5, so steps 0..3 are at the full rate and step 4 at 6/7
    assert [lr_factor("linear_half", t, 7) for t in (3, 4, 6)] == pytest.approx([1.0, 6 / 7, 2 / 7])


def test_constant_is_one_everywhere_and_unknown_schedules_are_refused():
    assert {lr_factor("constant", t, 10) for t in (0, 5, 9, 10, 50)} == {1.0}
    with pytest.raises(ValueError, match="unknown lr_schedule 'cosine'"):
        lr_factor("cosine", 0, 10)
    with pytest.raises(ValueError, match="planned steps"):
        lr_factor("linear_half", 0, 0)


def _engine(schedule: str | None, total: int | None = 8, **kw) -> GANStep:
    cfg = TrainConfig(
        model=ModelConfig(nz=8, width=4),
        batch_size=8,
        amp="off",
        channels_last=False,
        lr_schedule=schedule,
        **kw,
    )
    return GANStep(cfg, torch.device("cpu"), adam="foreach", total_steps=total)


def _batch(t: int) -> torch.Tensor:
    return torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(t)) * 2 - 1


def _lrs(engine: GANStep) -> tuple[float, float]:
    return engine.opt_G.param_groups[0]["lr"], engine.opt_D.param_groups[0]["lr"]


def test_a_step_in_the_decay_trains_both_optimizers_at_the_scaled_rates():
    """At step 6 of 8, linear_half's factor is 0.5: G's lr 1e-3 and D's 2e-3 become 5e-4 and 1e-3, and the step
    trains exactly as one of a constant run at those rates."""
    scheduled = _engine("linear_half", lr=1e-3, lr_d=2e-3)
    scheduled.step(_batch(6), None, 6)
    assert _lrs(scheduled) == (1e-3 * 0.5, 2e-3 * 0.5)
    constant = _engine("constant", lr=1e-3 * 0.5, lr_d=2e-3 * 0.5)
    constant.step(_batch(6), None, 6)
    for name in ("G", "D"):
        a, b = getattr(scheduled, name).state_dict(), getattr(constant, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    scheduled.begin_step(7)
    assert _lrs(scheduled) == pytest.approx((1e-3 * 0.25, 2e-3 * 0.25))


def test_lr_d_unset_follows_lr():
    engine = _engine("linear_half", lr=4e-4)
    engine.begin_step(6)
    assert _lrs(engine) == (2e-4, 2e-4)


def test_constant_never_touches_the_rates_and_linear_half_equals_it_for_the_first_half():
    constant, scheduled = _engine("constant", lr=1e-3), _engine("linear_half", lr=1e-3)
    for t in range(4):  # steps 0..3 of 8: linear_half's factor is 1
        constant.step(_batch(t), None, t)
        scheduled.step(_batch(t), None, t)
        assert _lrs(constant) == (1e-3, 1e-3)
    a, b = constant.G.state_dict(), scheduled.G.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    constant.step(_batch(7), None, 7)  # the end of the plan: constant is still at its rate
    assert _lrs(constant) == (1e-3, 1e-3)
    assert _engine("constant", total=None).total_steps is None  # constant needs no plan


def test_a_schedule_without_a_planned_total_is_refused_unless_a_row_filled_it():
    with pytest.raises(ValueError, match="planned steps"):
        _engine("linear_half", total=None)
    assert _engine("linear_half", total=None, max_steps=12).total_steps == 12  # max_steps is the plan
    # the Fashion-MNIST DCGAN row's schedule with no plan (a benchmark stepping GANStep itself): a constant lr
    unplanned = GANStep(
        TrainConfig(model=ModelConfig(nz=8, width=4), dataset="fashion-mnist", batch_size=8, amp="off"),
        torch.device("cpu"),
    )
    assert unplanned.cfg.recipe["filled"]["lr_schedule"] == "linear_half" and unplanned.lr_schedule == "constant"


@pytest.mark.parametrize("value", ["cosine", "", "Linear_half"])
def test_bad_values_are_refused(value, tiny_npz, tmp_path):
    with pytest.raises(ConfigError, match="--lr-schedule"):
        TrainConfig(lr_schedule=value).validate()
    with pytest.raises(ValueError):
        parse_changes(f"lr_schedule={value}")
    args = ["train", "--dataset", "npz", "--data-dir", str(tiny_npz), "--max-steps", "2", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(main, [*args, "--lr-schedule", value])
    assert result.exit_code == 2 and "--lr-schedule" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_lr_schedule_is_an_ablation_and_old_configs_rebuild_constant():
    assert parse_changes("lr=1e-3,lr_schedule=linear_half") == {"lr": 1e-3, "lr_schedule": "linear_half"}
    old = TrainConfig().to_dict()
    del old["lr_schedule"]  # a checkpoint written before the key
    assert TrainConfig.from_dict(old).lr_schedule == "constant"


def test_train_records_the_schedule_and_plans_by_epochs_without_max_steps(tiny_cfg, tmp_path):
    """config.json and the checkpoint hold lr_schedule; without max_steps the plan is epochs x steps per epoch
    (256 images / batch 16 = 16 a epoch): the last step's lr, which the checkpoint's Adam state holds, is 2/16 of
    the set rate."""
    cfg = replace(tiny_cfg, max_steps=None, epochs=1, lr=1e-3, lr_schedule="linear_half", device="cpu")
    train(cfg, tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["lr_schedule"] == "linear_half" and "lr_schedule" not in saved["recipe"]["filled"]
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["config"]["lr_schedule"] == "linear_half" and ckpt["step"] == 16
    for key in ("opt_G", "opt_D"):
        assert ckpt[key]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 2 / 16), key
    assert "lr schedule linear_half over the 16 planned steps" in (tmp_path / "run" / "train.log").read_text()

    train(replace(tiny_cfg, device="cpu"), tmp_path / "default", progress=False)
    saved = json.loads((tmp_path / "default" / "config.json").read_text())
    assert saved["lr_schedule"] == "constant" and saved["recipe"]["filled"]["lr_schedule"] == "constant"


class _Interrupted(Exception):
    pass


def test_a_run_resumed_inside_the_decay_equals_the_straight_run(tiny_cfg, tmp_path, monkeypatch):
    """The factor follows the global step and the planned total, so a 10-step run stopped at step 7 (inside the
    decay, which starts after step 5) and resumed to 10 ends bit for bit where the straight 10-step run does."""
    cfg = replace(tiny_cfg, lr_schedule="linear_half", max_steps=10, checkpoint_every=7, device="cpu")
    train(cfg, tmp_path / "straight", progress=False)

    real_step = GANStep.step

    def stop_at_7(self, x, y, t):
        if t == 7:
            raise _Interrupted
        return real_step(self, x, y, t)

    monkeypatch.setattr(GANStep, "step", stop_at_7)
    with pytest.raises(_Interrupted):
        train(cfg, tmp_path / "split", progress=False)
    monkeypatch.setattr(GANStep, "step", real_step)
    assert load_checkpoint(tmp_path / "split")["step"] == 7
    train(cfg, tmp_path / "split", resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    assert a["step"] == b["step"] == 10
    for key in ("G", "D", "G_ema"):
        assert a[key].keys() == b[key].keys() and all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    for key in ("opt_G", "opt_D"):
        assert a[key]["param_groups"] == b[key]["param_groups"], key
        for p, state in a[key]["state"].items():
            assert all(torch.equal(v, b[key]["state"][p][name]) for name, v in state.items()), key


def test_time_to_quality_runs_a_planned_total_arm_once_per_mark():
    """benchmarks/time_to_quality.py, steps mode: an arm with linear_half becomes one job per mark, each planning
    exactly its mark (a snapshot at 4,000 steps of an 8,000-step plan is not a 4,000-step run); constant arms, the
    plain loop and arms whose recipe row fills constant keep one job snapshotted at every mark."""
    from benchmarks.time_to_quality import Arm, Plan, _arm_file, _arm_marks, per_mark, plans_its_total

    base = TrainConfig(dataset="mnist")  # its DCGAN row keeps a constant lr
    assert plans_its_total(TrainConfig(dataset="fashion-mnist"))  # that row decays: its defaults arm is per mark
    scheduled = Arm("edgegan lr_schedule=linear_half", "edgegan", replace(base, lr_schedule="linear_half"))
    arms = [Arm("edgegan", "edgegan", base), Arm("plain", "plain", replace(base, ema=False)), scheduled]
    assert [plans_its_total(a.cfg) for a in arms] == [False, False, True]
    jobs = per_mark(arms, [8000.0, 4000.0])
    assert [(a.name, a.to_mark) for a in jobs] == [
        ("edgegan", None),
        ("plain", None),
        (scheduled.name, 4000),
        (scheduled.name, 8000),
    ]
    plan = Plan("step", [4000.0, 8000.0], 8000.0, Path("w"), "e.onnx", 10, None, 2, 1, None)
    assert [_arm_marks(plan, a) for a in jobs] == [[4000.0, 8000.0], [4000.0, 8000.0], [4000], [8000]]
    assert len({_arm_file(plan, a) for a in jobs}) == 4  # each job its own result file (a rerun resumes per job)


def test_time_to_quality_by_the_clock_runs_a_decaying_row_with_a_constant_lr(tmp_path, monkeypatch, capsys):
    """Wall-clock mode has no planned step count: the defaults arm of a row that decays its lr (Fashion-MNIST DCGAN)
    runs the row's other values with a constant lr, and says so; an explicit schedule ablation is refused."""
    import benchmarks.time_to_quality as ttq

    seen: list = []

    class Stop(Exception):
        pass

    def capture(arms, plan, jobs):
        seen.extend(arms)
        raise Stop

    monkeypatch.setattr(ttq, "run_arms", capture)
    evaluator = Path(__file__).parents[1] / "fixtures" / "mnist_evaluator.onnx"  # read, never used: nothing is scored
    argv = ["--minutes", "1", "--at", "1", "--no-plain", "--evaluator", str(evaluator), "--keep", str(tmp_path)]
    argv += ["--threads", str(torch.get_num_threads())]  # main sets torch's threads: leave this process's as they are
    with pytest.raises(Stop):
        ttq.main([*argv, "--dataset", "fashion-mnist"])
    assert [(a.name, a.cfg.lr_schedule, a.constant_lr) for a in seen] == [("edgegan", "constant", True)]
    assert "by the clock it runs with a constant lr" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ttq.main([*argv, "--no-defaults", "--ablate", "lr_schedule=linear_half"])


def test_time_to_quality_resumes_an_arm_killed_while_training(tiny_cfg, tmp_path):
    """benchmarks/time_to_quality.py, steps mode: an arm whose training was killed (its run folder holds a checkpoint,
    its result file none) continues from that checkpoint on the rerun, to the snapshot a run never interrupted takes;
    a killed run past a mark is left on disk and the arm starts over beside it."""
    import benchmarks.time_to_quality as ttq
    import edgegan.trainer.train as train_module

    arm = ttq.Arm("edgegan", "edgegan", replace(tiny_cfg, max_steps=None))
    train_module.train(tiny_cfg, tmp_path / "killed" / ttq._arm_stem(arm), progress=False)  # "killed" at step 4
    resumed, uninterrupted = replace(arm), replace(arm)
    ttq.run_edgegan(resumed, ttq.Clock([6.0], 6.0, "step"), tmp_path / "killed")
    ttq.run_edgegan(uninterrupted, ttq.Clock([6.0], 6.0, "step"), tmp_path / "fresh")
    assert (resumed.resumed_at, uninterrupted.resumed_at) == (4, 0)
    for which in ("ema", "raw"):
        got, want = resumed.snapshots[0].states[which], uninterrupted.snapshots[0].states[which]
        assert all(torch.equal(got[name], want[name]) for name in want), which

    past = replace(arm)  # a mark at step 3: the killed run is past it (resuming there would raise RunExists)
    ttq.run_edgegan(past, ttq.Clock([3.0], 3.0, "step"), tmp_path / "killed")
    assert past.resumed_at == 0 and past.snapshots[0].step == 3
    assert ttq.checkpoint_step(tmp_path / "killed" / ttq._arm_stem(arm)) == 4


def test_time_to_quality_refuses_a_plan_with_no_arm(capsys):
    """--no-defaults with --no-plain (or --conditional) and no --ablate: one line naming why, exit 2, before any
    evaluator is loaded (it was an IndexError traceback after the evaluator loaded)."""
    import benchmarks.time_to_quality as ttq

    for extra in (["--no-plain"], ["--conditional"]):
        with pytest.raises(SystemExit) as exc:
            ttq.main(["--steps", "10", "--no-defaults", "--evaluator", "missing.onnx", *extra])
        assert exc.value.code == 2
        assert "nothing to run: --no-defaults leaves no edgegan arm" in capsys.readouterr().err
