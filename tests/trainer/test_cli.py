from __future__ import annotations

import os

import pytest
import torch

from edgegan.cli import COMMANDS
from tests.cli_helpers import run, tiny_args


def test_group_help_lists_every_command():
    result = run("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


def test_train_help():
    result = run("train", "--help")
    assert result.exit_code == 0
    for option in ("--arch", "--dataset", "--conditional", "--max-steps", "--resume", "--amp", "--loss", "--ema"):
        assert option in result.output


def test_train_and_resume_through_the_cli(tiny_npz, tmp_path):
    out = tmp_path / "run"
    common = tiny_args(tiny_npz, out)
    result = run(*common, "--max-steps", "3")
    assert result.exit_code == 0, result.output
    assert "step 3" in result.output
    result = run(*common, "--max-steps", "5", "--resume")
    assert result.exit_code == 0, result.output
    assert "step 5" in result.output
    result = run(*common, "--max-steps", "5", "--resume")
    assert result.exit_code == 1 and "already at step 5" in result.output


def _assert_clean_error(result, *fragments):
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_unknown_dataset_is_a_usage_error(tmp_path):
    _assert_clean_error(run("train", "--dataset", "cifar99", "--out", tmp_path / "r"), "cifar99")


def test_missing_data_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEGAN_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGEGAN_MIRROR", "http://127.0.0.1:9/")  # closed port: no download possible
    import edgegan.runtime.evaluation.datasets as datasets

    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", tmp_path / "system")
    result = run("train", "--dataset", "mnist", "--max-steps", "1", "--quiet", "--out", tmp_path / "r")
    _assert_clean_error(result, "nowhere", "--data-dir")


def test_corrupt_data_is_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    _assert_clean_error(
        run("train", "--dataset", "npz", "--data-dir", bad, "--quiet", "--out", tmp_path / "r"), "bad.npz"
    )


def test_unwritable_output_is_refused(tiny_npz, tmp_path):
    # chmod does not stop root (CI runs as root); sysfs refuses new folders to everyone.
    if os.geteuid() == 0:
        target = "/sys/edgegan-test-run"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "run"
    result = run("train", "--dataset", "npz", "--data-dir", tiny_npz, "--quiet", "--out", target)
    _assert_clean_error(result, "cannot write")


def test_output_that_is_a_file_is_refused(tiny_npz, tmp_path):
    # Runs as root too: a path below a regular file can never be created.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("train", "--dataset", "npz", "--data-dir", tiny_npz, "--quiet", "--out", blocker / "run")
    _assert_clean_error(result, "cannot write")


def test_bad_option_values_are_usage_errors(tiny_npz, tmp_path):
    result = run("train", "--dataset", "npz", "--data-dir", tiny_npz, "--image-size", "30", "--out", tmp_path / "r")
    _assert_clean_error(result, "power of two")
    result = run("train", "--dataset", "npz", "--data-dir", tiny_npz, "--max-steps", "0", "--out", tmp_path / "r")
    _assert_clean_error(result, "--max-steps")


def test_conditional_needs_labels(tmp_path):
    import numpy as np

    unlabelled = tmp_path / "u.npz"
    np.savez(unlabelled, images=np.zeros((64, 28, 28), np.uint8))
    result = run(
        "train", "--dataset", "npz", "--data-dir", unlabelled, "--conditional", "--quiet", "--out", tmp_path / "r"
    )
    _assert_clean_error(result, "--conditional needs labels")


def test_resume_without_a_run(tmp_path):
    _assert_clean_error(run("train", "--resume", "--quiet", "--out", tmp_path / "none"), "no checkpoints/last.pt")


@pytest.mark.parametrize(
    "device_args,fragment",
    [
        (("--device", "cuda"), "--device cuda was asked for but CUDA is not available"),
        (("--amp", "fp16", "--device", "cpu"), "--amp fp16 needs CUDA"),
    ],
)
def test_device_errors_are_one_line_before_anything_is_written(tiny_npz, tmp_path, monkeypatch, device_args, fragment):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same refusal on a machine with a GPU
    out = tmp_path / "new" / "run"
    result = run(
        "train", "--dataset", "npz", "--data-dir", tiny_npz, "--max-steps", "1", *device_args, "--quiet", "--out", out
    )
    assert result.exit_code == 1
    _assert_clean_error(result, fragment)
    assert result.output.strip().splitlines() == [result.output.strip()]  # one line
    assert result.output.startswith("Error: ")
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------------------------ defaults written once
NOT_CONFIG = {"deterministic", "out", "resume", "json_path", "quiet"}  # how to run, not what to train


def test_every_train_option_default_is_the_config_field():
    """Each `edgegan train` option's default is TrainConfig's (ModelConfig's for the model options), and the
    options with no default of their own build exactly TrainConfig()."""
    from dataclasses import fields

    from edgegan.trainer.cli import MODEL_OPTIONS, config_from_options, train
    from edgegan.trainer.config import ModelConfig, TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig) if f.name != "model"}
    model_defaults = {f.name: f.default for f in fields(ModelConfig)}
    compared = 0
    for param in train.params:
        if param.name in NOT_CONFIG:
            continue
        name = "compile" if param.name == "compile_" else param.name
        expected = model_defaults[name] if name in MODEL_OPTIONS else defaults[name]
        assert param.default == expected, f"--{param.name}: {param.default!r} != the config's {expected!r}"
        compared += 1
    assert compared == len([p for p in train.params if p.name not in NOT_CONFIG]) >= 25
    opts = {p.name: p.default for p in train.params}
    assert config_from_options(opts) == TrainConfig()


def test_every_train_option_is_a_config_field():
    """config_from_options passes each option on: setting one to a value that is not its default shows in the
    TrainConfig (an option it dropped would silently train with the default)."""
    from edgegan.trainer.cli import MODEL_OPTIONS, config_from_options, train
    from edgegan.trainer.config import TrainConfig

    base = {p.name: p.default for p in train.params}
    changed = {
        "arch": "gan",
        "dataset": "mnist",
        "data_dir": "d",
        "conditional": True,
        "mode_seeking": 0.5,
        "top_k": 0.5,
        "lr_schedule": "linear_half",
        "image_size": 32,
        "channels": "3",
        "width": 8,
        "nz": 16,
        "epochs": 2,
        "max_steps": 7,
        "batch_size": 3,
        "fake_multiple": 2,
        "out_decay": 0.5,
        "lr": 1e-3,
        "lr_d": 2e-3,
        "beta1": 0.1,
        "beta2": 0.2,
        "loss": "hinge",
        "ema": False,
        "ema_decay": 0.5,
        "ema_start": 4,
        "d_norm": "spectral",
        "r1": 0.5,
        "d_depth": 2,
        "consistency": 3.0,
        "seed": 9,
        "device": "cpu",
        "amp": "off",
        "channels_last": False,
        "compile_": True,
        "log_every": 3,
        "checkpoint_every": 5,
    }
    assert set(changed) == {p.name for p in train.params} - NOT_CONFIG
    for name, value in changed.items():
        cfg = config_from_options({**base, name: value})
        field = "compile" if name == "compile_" else name
        got = getattr(cfg.model if name in MODEL_OPTIONS else cfg, field)
        assert got == (int(value) if name == "channels" else value), name
        assert cfg != TrainConfig(), name


def test_train_help_shows_the_config_and_recipe_defaults():
    from edgegan.trainer.config import TrainConfig
    from edgegan.trainer.recipes import BASE, recipe_for

    text = " ".join(run("train", "--help").output.split())
    assert f"[default: {TrainConfig().model.width}]" in text
    assert f"Images per optimizer step; default: the recipe's: gan {BASE['batch_size']}" in text
    gan = recipe_for("gan", False, TrainConfig().dataset).values
    assert f"gan {gan['loss']} (conditional: bce)" in text  # read from the recipe table, not retyped
    assert f"Adam beta2, in [0, 1); default: the recipe's: gan {gan['beta2']:g} (conditional: 0.999)" in text


def test_evaluator_train_defaults_are_the_evaluator_config():
    """`edgegan evaluator train` reads its defaults from EvaluatorConfig (trainer/config.py, torch-free, so --help
    works without torch): every option named like a field has the field's default."""
    from dataclasses import fields

    from edgegan.trainer.cli import evaluator_train
    from edgegan.trainer.config import EvaluatorConfig

    defaults = {f.name: f.default for f in fields(EvaluatorConfig)}
    compared = [p.name for p in evaluator_train.params if p.name in defaults]
    for param in evaluator_train.params:
        if param.name in defaults:
            assert param.default == defaults[param.name], param.name
    assert len(compared) >= 12
