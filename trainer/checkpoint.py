"""Checkpoints: plain dicts of tensors and builtins, written atomically, read with weights_only=True.

Layout (DESIGN.md): format, kind, config (dict), G, D, G_ema state dicts, opt_G, opt_D, step, epoch, rng
(torch CPU generator state, noise generator state, CUDA state where used), class names, and `sha256`: a digest
of everything else (tensor bytes, dtypes and shapes, the config and every other value, in a canonical order),
checked on load so bytes corrupted on disk are refused instead of trained or exported from.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.files import atomic_write

if TYPE_CHECKING:
    from edgegan.trainer.config import TrainConfig

CHECKPOINT_KIND = "edgegan-checkpoint"
CHECKPOINT_FORMAT = 1
REQUIRED = ("format", "kind", "config", "G", "step", "epoch")
DIGEST_KEY = "sha256"
# The config keys every checkpoint of a format holds, by format version: (TrainConfig keys, ModelConfig keys) as
# format 1 was first written. Keys added since (lr_d, mode_seeking, recipe, top_k, d_norm, lr_schedule, d_depth, r1,
# consistency, fake_multiple, out_decay, model.g_conditioning) default to what runs before them did (TrainConfig.from_dict), so only these are needed; a
# missing one would be guessed from a default (a dataset, an image size) and rebuild or score another model than the
# one trained.
CONFIG_KEYS: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    1: (
        (
            "model",
            "dataset",
            "data_dir",
            "conditional",
            "channels",
            "class_names",
            "loss",
            "lr",
            "beta1",
            "beta2",
            "batch_size",
            "epochs",
            "max_steps",
            "ema",
            "ema_decay",
            "ema_start",
            "seed",
            "sample_seed",
            "device",
            "amp",
            "channels_last",
            "compile",
            "log_every",
            "checkpoint_every",
        ),
        ("arch", "nz", "image_size", "channels", "num_classes", "width", "label_embed_dim"),
    ),
}

# torch.load(weights_only=True) is our only defence against a hostile checkpoint, so a torch whose weights-only
# unpickler has a published bypass is refused. CVE-2025-32434 (GHSA-53q9-r3pm-6pq6, RCE with weights_only=True)
# affects torch <= 2.5.1, fixed in 2.6.0; CVE-2026-24747 (GHSA-63cw-57p8-fm3p: the weights-only unpickler let
# SETITEM/SETITEMS act on non-dicts and trusted declared storage sizes -> heap corruption, possible code
# execution) affects every torch before 2.10.0, fixed in 2.10.0. pyproject's torch lower bound says the same.
MIN_SAFE_TORCH = (2, 10)
TORCH_ADVISORY = "CVE-2026-24747 / GHSA-63cw-57p8-fm3p"


class CheckpointError(EdgeganError, ValueError):
    """A file is missing, unreadable, unsafe, corrupt or not an edgegan checkpoint, or cannot be written."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temp file in the same folder, flush + fsync, then rename over `path`.

    A crash or Ctrl-C at any point leaves the previous file intact (rename is atomic on POSIX). A failed write
    (disk full, read-only, quota) raises CheckpointError naming `path`, never the temp file.
    """
    try:
        return atomic_write(path, lambda f: torch.save(obj, f))
    except (OSError, RuntimeError) as exc:
        os_error = _os_error_in(exc)
        if os_error is None and not _is_torch_write_failure(exc):
            raise
        if os_error is not None and os_error.errno:
            reason = os.strerror(os_error.errno)
        else:
            reason = f"the write failed ({str(exc).splitlines()[0][:120]})"
        full = os_error is not None and os_error.errno in (errno.ENOSPC, errno.EDQUOT)
        # --resume continues from RUN/checkpoints/last.pt: only say so when there is one to continue from.
        resumable = (Path(path).parent / "last.pt").is_file()
        kept = (
            "the previous checkpoint there was left intact"
            if Path(path).is_file()
            else "no earlier checkpoint was there"
        )
        fix = (
            "free some space, then continue with --resume"
            if resumable
            else "free some space, then start the run again (it had no checkpoint to resume from)"
        )
        raise CheckpointError(
            f"cannot write checkpoint {path}: {reason}; {kept}" + (f"; {fix}" if full else "")
        ) from exc


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind `exc`: torch's zip writer re-raises a failed file write as a RuntimeError whose
    context is the OSError ("[enforce fail at inline_container.cc] ... unexpected pos")."""
    seen = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def _is_torch_write_failure(exc: BaseException) -> bool:
    message = str(exc)
    return isinstance(exc, RuntimeError) and ("inline_container" in message or "file write failed" in message)


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 over every entry but the digest itself: keys in sorted order; tensors by dtype, shape and bytes.

    Layout-independent (a channels_last tensor hashes like its contiguous copy) and device-independent, so a
    checkpoint loaded with any map_location verifies.
    """
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != DIGEST_KEY})
    return h.hexdigest()


def _feed(h: hashlib._Hash, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        flat = t.reshape(-1).view(torch.uint8).numpy()  # [numel * itemsize] the tensor's bytes
        h.update(flat)  # type: ignore[arg-type]  # an ndarray is a buffer: numpy types __buffer__ for Python 3.12+ only
    elif isinstance(obj, dict):
        items = sorted(((_scalar(k), v) for k, v in obj.items()), key=lambda kv: kv[0])
        h.update(b"{%d;" % len(items))
        for key, value in items:
            h.update(key)
            _feed(h, value)
    elif isinstance(obj, (list, tuple)):
        h.update(b"[%d;" % len(obj))
        for value in obj:
            _feed(h, value)
    else:
        h.update(_scalar(obj))


def _scalar(value: Any) -> bytes:
    """Canonical bytes of a builtin scalar; str/int/float subclasses (numpy scalars) hash like the builtin."""
    if value is None or isinstance(value, bool):
        return f"{value!r};".encode()
    if isinstance(value, int):
        return f"i{int(value)};".encode()
    if isinstance(value, float):
        return f"f{float(value)!r};".encode()
    if isinstance(value, str):
        text = str(value)
        return f"s{len(text)}:{text};".encode()
    if isinstance(value, bytes):
        return b"b%d:" % len(value) + bytes(value) + b";"
    if isinstance(value, torch.Size):
        return f"S{tuple(value)};".encode()
    if isinstance(value, torch.dtype):
        return f"d{value};".encode()
    raise TypeError(f"cannot digest a {type(value).__name__} in a checkpoint")


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    state = {"format": CHECKPOINT_FORMAT, "kind": CHECKPOINT_KIND, **state}
    state[DIGEST_KEY] = state_digest(state)
    return atomic_torch_save(state, path)


def save_weights_checkpoint(
    cfg: TrainConfig,
    G: dict[str, Any],
    path: str | os.PathLike,
    *,
    D: dict[str, Any] | None = None,
    G_ema: dict[str, Any] | None = None,
    class_names: list[str] | None = None,
    step: int = 0,
    epoch: int = 0,
) -> Path:
    """A checkpoint of weights alone (no optimizer or RNG state: it exports, it does not resume), e.g. a model built
    in a benchmark or a test, or a snapshot taken mid-run. G, D, G_ema: state dicts. class_names default to the
    config's."""
    state = {
        "config": cfg.to_dict(),
        "class_names": list(cfg.class_names) if class_names is None else list(class_names),
        "G": G,
        "D": {} if D is None else D,
        "G_ema": G_ema,
        "opt_G": {},
        "opt_D": {},
        "step": step,
        "epoch": epoch,
        "rng": {},
    }
    return save_checkpoint(state, path)


def check_torch_version(version: str | None = None) -> None:
    """Refuse to unpickle anything with a torch whose weights_only loader has a published bypass."""
    version = str(version if version is not None else torch.__version__)
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?((?:a|b|rc|\.dev)\d*)?", version)
    release = tuple(int(g) for g in match.groups()[:2]) if match else None
    # A pre-release of the floor itself (2.10.0a0, a nightly) may predate the fix that 2.10.0 shipped.
    pre_floor = (
        release == MIN_SAFE_TORCH and match is not None and match.group(4) is not None and match.group(3) in (None, "0")
    )
    if release is not None and (release < MIN_SAFE_TORCH or pre_floor):
        need = ".".join(map(str, MIN_SAFE_TORCH))
        raise CheckpointError(
            f"torch {version} is too old to load checkpoints safely: its weights_only loader has a published "
            f"bypass ({TORCH_ADVISORY}, fixed in torch {need}"
            f"{'; a pre-release of it may predate the fix' if pre_floor else ''}); upgrade: pip install 'torch>={need}'"
        )


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
    """Load safely (weights_only=True: no arbitrary unpickling), check it is an edgegan checkpoint and verify its
    digest. A checkpoint written before digests existed loads with a warning saying it was not verified."""
    path = resolve_checkpoint(path)
    check_torch_version()
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
        raise CheckpointError(
            f"{path} is not a readable checkpoint (not a torch file?): {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path} is not an edgegan checkpoint (no kind={CHECKPOINT_KIND!r} marker)")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"{path} is an incomplete edgegan checkpoint: missing {', '.join(missing)}")
    if state["format"] > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {state['format']}; this edgegan reads up to {CHECKPOINT_FORMAT}"
        )
    check_config_keys(path, state)
    expected = state.get(DIGEST_KEY)
    if expected is None:
        warnings.warn(
            f"{path} has no checksum (written by an edgegan older than checksummed checkpoints): loaded unverified",
            UserWarning,
            stacklevel=2,
        )
    else:
        try:
            actual = state_digest(state)
        except (TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{path} holds a value a checkpoint never holds ({exc}): corrupt?") from exc
        if actual != expected:
            raise CheckpointError(
                f"{path} is corrupt: its checksum does not match its contents (stored sha256 {str(expected)[:16]}..., "
                f"computed {actual[:16]}...); use an earlier checkpoint (checkpoints/epoch_*.pt) or retrain"
            )
    return state


def check_config_keys(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """A checkpoint's config must hold every key of its format version (CONFIG_KEYS); keys this edgegan does not
    know are ignored, and said so in a warning (a newer edgegan's option, or a hand-edited file).

    Raises:
        CheckpointError: the config (or its model) is not a dict, or keys are missing (all named).
    """
    from edgegan.trainer.config import ModelConfig, TrainConfig  # here: config imports the model registry

    config = state.get("config")
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(config, dict) or not isinstance(model, dict):
        raise CheckpointError(f"{path} holds no readable config (a dict with a model dict); it cannot be rebuilt")
    train_keys, model_keys = CONFIG_KEYS.get(int(state["format"]), CONFIG_KEYS[CHECKPOINT_FORMAT])
    missing = [k for k in train_keys if k not in config] + [f"model.{k}" for k in model_keys if k not in model]
    if missing:
        raise CheckpointError(
            f"{path} has an incomplete config for checkpoint format {state['format']}: missing {', '.join(missing)}; "
            "edgegan does not guess them (a default would rebuild, export or score another model than the one "
            "trained): use the checkpoint as edgegan wrote it"
        )
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    known_model = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = [k for k in config if k not in known] + [f"model.{k}" for k in model if k not in known_model]
    if unknown:
        warnings.warn(
            f"{path}: config keys this edgegan does not know were ignored: {', '.join(map(str, unknown))}",
            UserWarning,
            stacklevel=3,
        )


def state_dict_problem(exc: BaseException) -> str:
    """torch's load_state_dict error in one line, with the parameters it names: its first line alone ("Error(s)
    in loading state_dict for DCGANGenerator:") says nothing; the lines after it name each mismatch."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    details = lines[1:]
    if not details:
        return lines[0]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{lines[0]} {details[0].rstrip('.')}{more}"
