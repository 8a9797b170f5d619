"""The run folder (--out): refuse one that cannot take a run before anything is written, then open it.

Opening it removes what a killed run left (atomic_write's temp files, the write probe) and the metrics.jsonl rows
it logged after its last checkpoint, so a resumed run redoes them exactly once.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.files import atomic_write


class RunExists(EdgeganError):
    """--out already holds a run and --resume was not given."""


# atomic_write's temp files (".NAME.XXXXXXXX.tmp") and the write probe: what a killed run leaves behind.
_LEFTOVER = re.compile(r"^\..+\.tmp$|^\.write-test-\d+$")


def check_out_dir(out: Path, resume: bool) -> Path | None:
    """-> the checkpoint to resume from, or None for a fresh run. Writes nothing; refuses to clobber a run."""
    last = out / "checkpoints" / "last.pt"
    if resume:
        if not last.is_file():
            raise EdgeganError(f"--resume: {out} holds no checkpoints/last.pt to continue from")
        return last
    if last.exists():
        raise RunExists(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise EdgeganError(f"cannot write to --out {out}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise EdgeganError(f"cannot write to --out {out}: permission denied in {existing}")
    return None


def open_out_dir(out: Path, resume_step: int) -> list[Path]:
    """Create the run folders (only once every option and the data were accepted), remove what killed runs
    left, and drop metrics.jsonl rows past `resume_step` (0 for a fresh run). -> the leftovers removed."""
    created = [p for p in (out, out / "checkpoints", out / "samples") if not p.exists()]
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        for folder in reversed(created):  # a failed start leaves no empty run folder
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise EdgeganError(f"cannot write to --out {out}: {exc.strerror or exc}") from exc
    removed = []
    for folder in (out, out / "checkpoints", out / "samples"):
        for path in folder.iterdir():
            if _LEFTOVER.match(path.name) and path.is_file() and not path.is_symlink():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    _truncate_metrics(out / "metrics.jsonl", resume_step)
    return removed


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the rows up to `step` (atomically): rows a killed run logged after its last checkpoint are redone."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    kept = []
    for line in lines:
        try:
            row_step = json.loads(line)["step"]
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill
        if row_step <= step:
            kept.append(line)
    if len(kept) != len(lines):
        with writing(path, "metrics"):
            atomic_write(path, lambda f: f.write("".join(row + "\n" for row in kept)), binary=False)


@contextlib.contextmanager
def writing(path: Path, what: str):
    """An OSError (disk full, read-only, permissions) while writing `path` -> a one-line EdgeganError naming it."""
    try:
        yield
    except OSError as exc:
        raise EdgeganError(f"cannot write {what} {path}: {exc.strerror or exc}") from exc
