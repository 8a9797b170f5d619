"""Checkpoints: plain dicts of tensors and builtins, written atomically, read with weights_only=True.

Layout (DESIGN.md): format, kind, config (dict), G, D, G_ema state dicts, opt_G, opt_D, step, epoch, rng
(torch CPU generator state, noise generator state, CUDA state where used) and class names.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from runtime.errors import EdgeganError
from runtime.files import atomic_write

CHECKPOINT_KIND = "edgegan-checkpoint"
CHECKPOINT_FORMAT = 1
REQUIRED = ("format", "kind", "config", "G", "step", "epoch")


class CheckpointError(EdgeganError, ValueError):
    """A file is missing, unreadable, unsafe or not an edgegan checkpoint."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temp file in the same folder, flush + fsync, then rename over `path`.

    A crash or Ctrl-C at any point leaves the previous file intact (rename is atomic on POSIX).
    """
    return atomic_write(path, lambda f: torch.save(obj, f))


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    state = {"format": CHECKPOINT_FORMAT, "kind": CHECKPOINT_KIND, **state}
    return atomic_torch_save(state, path)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A run folder means its checkpoints/last.pt; a file is taken as it is."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "checkpoints" / "last.pt"
        if not candidate.is_file():
            raise CheckpointError(f"{path} is a folder but holds no checkpoints/last.pt: is it an edgegan run?")
        return candidate
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load safely (weights_only=True: no arbitrary unpickling) and check it is an edgegan checkpoint."""
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if "GLOBAL" not in message:  # the unpickler met bytes that are no pickle at all
            raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt?)") from exc
        blocked = next((line.strip() for line in message.splitlines() if "GLOBAL" in line), "")
        raise CheckpointError(
            f"{path} was refused: it holds objects that are not plain tensors or builtins, and a pickled "
            f"payload is never loaded ({blocked})"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt?): {exc}") from exc
    except (IndexError, KeyError, AttributeError, TypeError) as exc:
        # torch's weights-only unpickler fails this way on files that are not pickles at all (e.g. text).
        raise CheckpointError(f"{path} is not a readable checkpoint (not a torch file?): {type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path} is not an edgegan checkpoint (no kind={CHECKPOINT_KIND!r} marker)")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"{path} is an incomplete edgegan checkpoint: missing {', '.join(missing)}")
    if state["format"] > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {state['format']}; this edgegan reads up to {CHECKPOINT_FORMAT}")
    return state
