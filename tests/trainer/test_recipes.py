"""trainer/recipes.py: the recipe table, how `edgegan train` applies it, and that every key it sets is read."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.trainer import losses
from edgegan.trainer.config import ModelConfig, TrainConfig
from edgegan.trainer.recipes import ABLATABLE, BASE, RECIPE_KEYS, RECIPES, apply_recipe, parse_changes, recipe_for
from edgegan.trainer.step import EMA, GANStep


def test_every_row_sets_only_recipe_keys_and_one_row_matches_everything():
    for row in RECIPES:
        assert set(row.values) <= set(RECIPE_KEYS), row.name
        assert row.evidence, row.name
    assert set(BASE) == set(RECIPE_KEYS)
    assert any(r.specificity == 0 for r in RECIPES)  # the fallback row


@pytest.mark.parametrize(
    "arch, conditional, dataset, name, lr, ema_decay, loss, schedule, d_depth, r1, batch, fakes, out_decay",
    [
        ("dcgan", False, "mnist", "dcgan-mnist-unconditional", 1e-3, 0.99, "hinge", "constant", 2, 3.0, 128, 4, 0.0),
        (
            "dcgan",
            False,
            "fashion-mnist",
            "dcgan-fashion-mnist-unconditional",
            1e-3,
            0.99,
            "hinge",
            "linear_half",
            1,
            0.0,
            64,
            1,
            0.0,
        ),
        ("dcgan", True, "mnist", "dcgan-mnist-conditional", 5e-4, 0.999, "hinge", "constant", 0, 0.0, 64, 1, 0.0),
        ("dcgan", True, "fashion-mnist", "dcgan", 5e-4, 0.99, "bce", "constant", 0, 0.0, 64, 1, 0.0),
        ("gan", False, "mnist", "gan-mnist-unconditional", 5e-4, 0.995, "hinge", "constant", 0, 3.0, 64, 4, 3.0),
        ("gan", False, "fashion-mnist", "gan-unconditional", 5e-4, 0.995, "hinge", "constant", 0, 3.0, 64, 1, 0.0),
        ("gan", True, "mnist", "gan", 5e-4, 0.99, "bce", "constant", 0, 0.0, 64, 1, 0.0),
    ],
)
def test_measured_recipe_for_each_architecture(
    arch, conditional, dataset, name, lr, ema_decay, loss, schedule, d_depth, r1, batch, fakes, out_decay
):
    cfg = apply_recipe(TrainConfig(model=ModelConfig(arch=arch), dataset=dataset, conditional=conditional))
    assert cfg.recipe["name"] == recipe_for(arch, conditional, dataset).name == name
    betas = (0.5, 0.999) if name in ("dcgan", "gan", "dcgan-mnist-unconditional") else (0.0, 0.9)
    assert cfg.recipe["filled"] == {
        "lr": lr,
        "beta1": betas[0],
        "beta2": betas[1],
        "ema_decay": ema_decay,
        "ema_start": 0,
        "loss": loss,
        "top_k": 1.0,
        "d_norm": "batch",
        "d_depth": d_depth,
        "r1": r1,
        "lr_schedule": schedule,
        "batch_size": batch,
        "fake_multiple": fakes,
        "out_decay": out_decay,
    }


def test_explicit_values_win_and_a_complete_config_is_left_alone():
    cfg = apply_recipe(TrainConfig(lr=1e-3, loss="hinge"))
    assert (cfg.lr, cfg.loss) == (1e-3, "hinge")
    assert set(cfg.recipe["filled"]) == set(RECIPE_KEYS) - {"lr", "loss"}
    full = TrainConfig(
        lr=1e-3,
        beta1=0.5,
        beta2=0.99,
        loss="hinge",
        ema_decay=0.9,
        ema_start=5,
        top_k=0.5,
        d_norm="batch",
        d_depth=0,
        r1=0.0,
        lr_schedule="linear_half",
        batch_size=32,
        fake_multiple=2,
        out_decay=0.5,
    )
    assert apply_recipe(full) is full and full.recipe is None


def test_equal_values_give_one_digest_whoever_set_them():
    implicit = apply_recipe(TrainConfig())
    explicit = TrainConfig(**implicit.recipe["filled"])
    assert implicit.digest() == explicit.digest()


def test_train_cli_records_the_recipe_in_config_json(tmp_path, tiny_npz):
    args = [
        "train",
        "--dataset",
        "npz",
        "--data-dir",
        str(tiny_npz),
        "--width",
        "8",
        "--nz",
        "16",
        "--batch-size",
        "16",
        "--max-steps",
        "2",
        "--log-every",
        "1",
        "-q",
    ]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["recipe"]["name"] == "dcgan" and saved["lr"] == 5e-4 and saved["ema_decay"] == 0.99
    assert "recipe 'dcgan'" in (tmp_path / "a" / "train.log").read_text()

    result = CliRunner().invoke(main, [*args, "--lr", "3e-4", "--ema-start", "1", "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "b" / "config.json").read_text())
    assert saved["lr"] == 3e-4 and saved["ema_start"] == 1
    assert "lr" not in saved["recipe"]["filled"] and "ema_start" not in saved["recipe"]["filled"]


def _train_steps(cfg: TrainConfig, steps: int = 3) -> dict[str, torch.Tensor]:
    """G and EMA-G after `steps` steps on fixed random batches (the same batches for every config)."""
    torch.manual_seed(0)
    engine = GANStep(cfg, torch.device("cpu"), adam="foreach")
    gen = torch.Generator().manual_seed(1)
    batch = engine.cfg.batch_size  # the recipe's where cfg leaves it unset
    for t in range(steps):
        x = torch.rand(batch, 1, 28, 28, generator=gen) * 2 - 1
        y = torch.randint(cfg.model.num_classes, (batch,), generator=gen) if cfg.model.num_classes else None
        engine.step(x, y, t)
    out = {f"G.{k}": v.clone() for k, v in engine.G.state_dict().items()}
    if engine.ema is not None:
        out.update({f"ema.{k}": v.clone() for k, v in engine.ema.model.state_dict().items()})
    return out


# A value unlike the recipe's for each key an ablation may change (ema_decay below the warm-up's 0.1 at step 0;
# mode seeking: on by default for a conditional G only, so the change is the other way round; top_k: its anneal
# keeps every fake for the first steps, so the test shortens it to one step; lr_schedule: the runs plan 3 steps
# (max_steps), so linear_half's decay is on at the third: lr x 2/3).
CHANGED = {
    "lr": 3e-3,  # no recipe row uses it
    "ema_decay": 0.05,
    "ema_start": 2,
    "loss": "lsgan",
    "lr_d": 2e-3,  # differs from every row's lr (lr_d None: D takes lr)
    "beta1": 0.3,
    "beta2": 0.95,
    "batch_size": 12,
    "fake_multiple": 2,
    "out_decay": 0.5,  # no row uses it
    "ema": False,
    "mode_seeking": 0.0,
    "top_k": 0.5,
    "d_norm": "spectral",
    "lr_schedule": "linear_half",
    "consistency": 10.0,
    "r1": 1.0,
    "d_depth": 1,
}


@pytest.mark.parametrize("arch, conditional", [("dcgan", True), ("dcgan", False), ("gan", False)])
@pytest.mark.parametrize("key", sorted(CHANGED))
def test_every_ablatable_key_changes_the_training(key, arch, conditional, monkeypatch):
    """An ablation of a key no code reads would silently change nothing (as ema_start did, and mode seeking on an
    unconditional G): each must show, for every kind of model."""
    assert set(CHANGED) == set(ABLATABLE)
    monkeypatch.setattr(losses, "TOP_K_ANNEAL_STEPS", 1)  # top_k acts from step 1 of the 3 (batch 8: k = 4)
    base = apply_recipe(
        TrainConfig(
            model=ModelConfig(arch=arch, nz=8, width=4, num_classes=3 if conditional else 0),
            conditional=conditional,
            batch_size=8,
            amp="off",
            channels_last=False,
            seed=1,
            max_steps=3,  # the planned total an lr schedule reads: _train_steps runs all 3
        )
    )
    value = CHANGED[key] if key != "mode_seeking" or conditional else 1.0
    if key == "lr_schedule" and value == base.lr_schedule:  # a row (Fashion-MNIST DCGAN) already decays
        value = "constant"
    if key == "d_depth" and value == base.d_depth:  # a row (Fashion-MNIST DCGAN) already deepens D
        value = 0
    changed = replace(base, **{key: value})
    a, b = _train_steps(base), _train_steps(changed)
    differs = set(a) != set(b) or any(not torch.equal(a[k], b[k]) for k in a)
    assert differs, f"{key}={value} trained exactly as {getattr(base, key)}: nothing reads it"


def test_ema_copies_g_until_ema_start_then_averages():
    g = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))  # G always has buffers to copy
    ema = EMA(g, decay=0.9, start=2)
    assert [ema.decay_at(t) for t in (0, 1)] == [0.0, 0.0]
    assert ema.decay_at(2) == pytest.approx(1 / 10) and ema.decay_at(10_000) == 0.9
    for t in range(2):
        with torch.no_grad():
            g[0].weight.add_(1.0)
        ema.update(g, t)
        assert torch.equal(ema.model[0].weight, g[0].weight)
    with torch.no_grad():
        g[0].weight.add_(1.0)
    ema.update(g, 2)
    assert not torch.equal(ema.model[0].weight, g[0].weight)


@pytest.mark.parametrize(
    "text, message",
    [
        ("device=cuda", "KEY one of"),
        ("log_every=5", "KEY one of"),
        ("loss=foo", "unknown loss"),
        ("lr=abc", "takes a number"),
        ("ema_start=-1", "ema_start must be >= 0"),
        ("ema=maybe", "true or false"),
    ],
)
def test_ablate_refuses_keys_no_training_reads_and_bad_values(text, message):
    with pytest.raises(ValueError, match=message):
        parse_changes(text)


def test_ablate_parses_by_field_type():
    parsed = parse_changes("lr=5e-4,ema_start=1000,loss=hinge,ema=false,batch_size=128")
    assert parsed == {"lr": 5e-4, "ema_start": 1000, "loss": "hinge", "ema": False, "batch_size": 128}
