"""Issue 19, items 5 and 10 (warnings): a checkpoint's config must be complete for its format version; unknown
keys are named in a note, printed as one "Warning:" line rather than Python's file:line:source warning.

Before: an MNIST checkpoint whose config["dataset"] was removed exported with exit 0 as
edgegan.dataset="fashion-mnist" (a default) and the gate scored it with that evaluator; unknown keys were dropped
without a word.
"""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.trainer.checkpoint import CONFIG_KEYS, CheckpointError, load_checkpoint, save_checkpoint
from edgegan.trainer.config import TrainConfig
from tests import quality_helpers


def edited_checkpoint(tmp_path, edit) -> object:
    path = quality_helpers.make_checkpoint(tmp_path / "src.pt")
    state = torch.load(path, weights_only=True)
    state["config"]["dataset"] = "mnist"
    edit(state["config"])
    out = tmp_path / "edited.pt"
    save_checkpoint({k: v for k, v in state.items() if k not in ("format", "kind", "sha256")}, out)  # valid digest
    return out


@pytest.mark.parametrize(
    "drop, named",
    [
        (lambda c: c.pop("dataset"), "missing dataset"),
        (lambda c: (c.pop("loss"), c["model"].pop("nz")), "missing loss, model.nz"),
        (lambda c: c["model"].pop("image_size"), "missing model.image_size"),
    ],
)
def test_a_config_missing_keys_is_refused_naming_them(drop, named, tmp_path):
    ckpt = edited_checkpoint(tmp_path, drop)
    with pytest.raises(CheckpointError, match=named):
        load_checkpoint(ckpt)
    result = CliRunner().invoke(main, ["export", str(ckpt), "--out", str(tmp_path / "m"), "-q", "--no-quality-gate"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert named in result.output and "incomplete config for checkpoint format 1" in result.output
    assert not (tmp_path / "m").exists()


def test_keys_added_after_format_1_may_be_missing(tmp_path):
    """lr_d, mode_seeking, recipe, top_k, d_norm, d_depth, lr_schedule, r1, consistency, fake_multiple, out_decay and
    model.g_conditioning came later: older format-1 checkpoints lack them, and rebuild as they trained (no top-k, the
    architecture's D as published, a constant lr, no D regularisers, one fake per real image, no weight decay),
    whatever the recipe table says now."""
    later = (
        *("lr_d", "mode_seeking", "top_k", "d_norm", "d_depth", "lr_schedule", "r1", "consistency", "fake_multiple"),
        "out_decay",
    )

    def drop_later(c):
        for key in later:
            c.pop(key)
        c["model"].pop("g_conditioning")

    state = load_checkpoint(edited_checkpoint(tmp_path, drop_later))
    assert state["config"]["dataset"] == "mnist"
    assert set(CONFIG_KEYS[1][0]) | {*later, "recipe"} >= set(state["config"])
    rebuilt = TrainConfig.from_dict(state["config"])
    assert (rebuilt.top_k, rebuilt.d_norm, rebuilt.d_depth, rebuilt.lr_schedule, rebuilt.model.g_conditioning) == (
        1.0,
        "batch",
        0,
        "constant",
        "concat",
    )
    assert (rebuilt.r1, rebuilt.consistency, rebuilt.fake_multiple, rebuilt.out_decay) == (0.0, 0.0, 1, 0.0)


def test_unknown_keys_are_named_in_one_warning_line(tmp_path):
    def add_unknown(c):
        c["from_the_future"] = 1
        c["model"]["mystery"] = "x"

    ckpt = edited_checkpoint(tmp_path, add_unknown)
    with pytest.warns(
        UserWarning, match="config keys this edgegan does not know were ignored: from_the_future, model.mystery"
    ):
        load_checkpoint(ckpt)
    result = CliRunner().invoke(main, ["export", str(ckpt), "--out", str(tmp_path / "m"), "-q", "--no-quality-gate"])
    assert result.exit_code == 0, result.output
    warning = [line for line in result.output.splitlines() if "does not know" in line]
    assert len(warning) == 1 and warning[0].startswith("Warning: ") and "model.mystery" in warning[0], result.output
    assert "UserWarning" not in result.output and "warnings.warn" not in result.output  # not Python's raw form
