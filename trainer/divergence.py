"""The NaN/Inf guard: stop a run whose losses or weights stopped being finite, before anything bad is saved.

The checks read one flag per log interval and before every save (a host sync); under data parallelism every rank
takes part, so all ranks stop together.
"""

from __future__ import annotations

import torch

from edgegan.runtime.errors import EdgeganError
from edgegan.trainer import distributed as dist_utils
from edgegan.trainer.step import GANStep


class TrainingDiverged(EdgeganError):
    """A loss or a weight became NaN or Inf; nothing is saved and the last good checkpoint is left untouched."""


def _weights(engine: GANStep) -> dict[str, dict[str, torch.Tensor]]:
    """Every parameter and buffer that a checkpoint saves, by model: G, D and (with EMA) G_ema."""
    models = {"G": engine.G, "D": engine.D}
    if engine.ema is not None:
        models["G_ema"] = engine.ema.model
    return {name: model.state_dict() for name, model in models.items()}


@torch.no_grad()
def _nonfinite_flag(engine: GANStep) -> torch.Tensor:
    """int64 scalar on the device: 1 when any floating-point weight or buffer holds a NaN/Inf (no host sync)."""
    tensors = [t for state in _weights(engine).values() for t in state.values() if t.is_floating_point()]
    return torch.stack([~torch.isfinite(t).all() for t in tensors]).any().to(torch.long)


def first_nonfinite(engine: GANStep) -> str | None:
    """`G_ema main.0.weight`-style name of the first NaN/Inf tensor, or None when every weight is finite."""
    if not _nonfinite_flag(engine).item():
        return None
    for model, state in _weights(engine).items():
        for key, t in state.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                return f"{model} {key}"
    return None


def check_weights(engine: GANStep, step: int, saved_step: int | None, ctx: dist_utils.DistContext) -> None:
    """Stop (every rank together) when a weight is NaN/Inf, though the losses were finite: an update can blow
    weights up after the loss that caused it was computed. Called before every save, and each log interval."""
    if not dist_utils.any_flag(_nonfinite_flag(engine), ctx):
        return
    bad = first_nonfinite(engine) or "a weight on another rank"
    raise TrainingDiverged(
        f"training diverged: {bad} became NaN/Inf by step {step}; nothing was saved and {_kept(saved_step)}. "
        "Try a lower --lr, another --loss, or --amp off."
    )


def _kept(saved_step: int | None) -> str:
    """What is on disk after a stop: the last good checkpoint, or none yet (nothing to resume)."""
    if saved_step is None:
        return "no checkpoint had been written yet (nothing to resume)"
    return f"the last good checkpoint (step {saved_step}) was left untouched"


def check_finite(first_bad: torch.Tensor, ctx: dist_utils.DistContext, saved_step: int | None = None) -> None:
    """Stop (every rank together) when a step's loss was NaN/Inf; `first_bad` is StepStats.first_bad;
    `saved_step` the step of the last checkpoint written (None: none yet)."""
    if dist_utils.any_flag((first_bad >= 0).to(torch.long), ctx):
        bad_step = int(first_bad.item())
        where = f"at step {bad_step}" if bad_step >= 0 else "on another rank"
        raise TrainingDiverged(
            f"training diverged: a loss became NaN/Inf {where}; {_kept(saved_step)}. "
            "Try a lower --lr, another --loss, or --amp off."
        )
