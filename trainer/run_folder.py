"""The run folder (--out): refuse one that cannot take a run before anything is written, then open it.

Opening it removes what a killed run left (atomic_write's temp files, the write probe) and the metrics.jsonl rows
it logged after its last checkpoint, so a resumed run redoes them exactly once.

One run folder, one writer: `hold_run` takes an advisory lock (flock) on RUN/.edgegan-train.lock for as long as
the training runs, so a second `train` or `train --resume` into the same --out exits at once naming the pid that
holds it. The kernel drops a flock when its process dies, so a crash or kill -9 never leaves the folder locked.
A run folder writes only inside itself: a symlinked checkpoints/, samples/ or run file is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.files import atomic_write


class RunExists(EdgeganError):
    """--out already holds a run and --resume was not given."""


class RunBusy(EdgeganError):
    """Another process is training into the same --out."""


LOCK_NAME = ".edgegan-train.lock"
#: what a run writes in its folder: none of it may be a symlink (a write through one lands in another folder)
RUN_PATHS = (
    "checkpoints",
    "samples",
    "checkpoints/last.pt",
    "config.json",
    "metrics.jsonl",
    "train.log",
    "loss_curve.png",
    LOCK_NAME,
)


# atomic_write's temp files (".NAME.XXXXXXXX.tmp") and the write probe: what a killed run leaves behind.
_LEFTOVER = re.compile(r"^\..+\.tmp$|^\.write-test-\d+$")


def check_out_dir(out: Path, resume: bool) -> Path | None:
    """-> the checkpoint to resume from, or None for a fresh run. Writes nothing; refuses to clobber a run."""
    last = out / "checkpoints" / "last.pt"
    links = [name for name in RUN_PATHS if (out / name).is_symlink()]
    if links:
        raise EdgeganError(
            f"--out {out}: {', '.join(links)} is a symlink; a run writes only inside its own folder "
            f"(it would overwrite {os.path.realpath(out / links[0])}): replace it by a real folder or "
            "file, or choose another --out"
        )
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


def _lock_holder(fd: int) -> str:
    """The pid the holder wrote into the lock file, for the message."""
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "a process that has not written its pid yet"


def _acquire(path: Path) -> int:
    """flock(LOCK_EX | LOCK_NB) on path, created if missing; -> the open fd. Raises RunBusy when it is held.

    The lock file is removed when a run ends, so after locking, the fd must still be the file at `path` (another
    process may have removed the one we opened): otherwise open the new one and lock again.
    """
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise RunBusy(
                f"--out {path.parent} is in use by another training ({holder}); wait for it to end or "
                "choose another --out"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)  # we locked a file that its last holder had already removed: take the current one


_SKELETON = ("config.json", "metrics.jsonl", "train.log", "loss_curve.png")


def _remove_skeleton(out: Path, created: list[Path]) -> None:
    """A run that never wrote a checkpoint leaves no folder it created: its own files, then the empty folders
    (anything else found there is left, and so is the folder holding it)."""
    if (out / "checkpoints" / "last.pt").exists() or out not in created:
        return
    for name in _SKELETON:
        with contextlib.suppress(OSError):
            (out / name).unlink()
    with contextlib.suppress(OSError):
        for grid in (out / "samples").glob("*.png"):
            grid.unlink()
    for folder in (out / "samples", out / "checkpoints", *created):
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def hold_run(out: Path, resume: bool) -> Iterator[Path | None]:
    """Be the one writer of run folder `out` for the duration: lock RUN/.edgegan-train.lock, check the folder
    (`check_out_dir`) under the lock, and yield the checkpoint to resume from. A folder that does not exist yet is
    checked before the lock file creates it too, so what can be refused leaves nothing behind.

    On the way out the lock file is removed and the lock released. A run that ends by an error before its first
    checkpoint leaves none of the folders it created (a failed start leaves nothing on disk).

    Raises:
        RunBusy: another process holds the lock (one line naming its pid).
        RunExists / EdgeganError: as check_out_dir.
    """
    if not out.is_dir():
        check_out_dir(out, resume)  # refuse what can be refused before the lock file creates the folder
    created = [p for p in (out, *out.parents) if not p.exists()]
    lock = out / LOCK_NAME
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = _acquire(lock)
    except OSError as exc:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise EdgeganError(f"cannot write to --out {out}: {exc.strerror or exc}") from exc
    except BaseException:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    ok = False
    try:
        resume_from = check_out_dir(out, resume)  # again: the folder cannot change under us any more
        yield resume_from
        ok = True
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)
        if not ok:
            _remove_skeleton(out, created)
