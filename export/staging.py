"""Where an export is built and how it reaches --out: it only ever moves in what it wrote.

Rules (the README's "Reliability" section says the same to users):
- --out is resolved once: a symlinked --out is followed to its real folder, which is what gets written (the link
  stays). Symlinks *inside* --out are refused, so no write or delete can leave the folder through one.
- Without force, --out may exist and hold other files, but none of the paths an export owns (`owned`: the
  generator.* files, export_report.json, triton/edgegan_NAME); the export's files are moved in with no-replace
  renames, the report last, and moved back out if the move is interrupted. Nothing in --out is replaced or removed.
- With force, --out is replaced as a whole: the complete new folder is built in the staging folder, then swapped
  in with one atomic exchange (Linux renameat2 RENAME_EXCHANGE) or, where that is missing, two renames (old
  folder -> staging/BACKUP_NAME, new folder -> --out) whose middle state the next export repairs.
- The staging folder `.NAME.export-PID-XXXXXXXX` sits beside --out (same filesystem, so every move is a rename).
  One whose PID is dead (kill -9, power loss) is removed by the next export into the same --out, after putting
  back an old folder that a cut swap left in it.
- With force, --out may neither hold nor lie inside anything the export reads (the resolved checkpoint, the run's
  checkpoints folder, the evaluator, the data folder): real paths are compared both ways (`check_reads`).
- An OSError that says the disk is full or read-only (or access denied on our paths) becomes ExportWriteError,
  naming --out as the user wrote it, never a staging file.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.files import fsync_path

STAGING_TAG = ".export-"
STAGE_NAME, WORK_NAME = "stage", "work"  # inside the staging folder: the future --out, and scratch files
BACKUP_NAME = "old"  # inside the staging folder: the old --out between the two renames of a fallback swap
MAX_LISTED = 8
#: errnos that mean "this folder cannot take the export", whatever file they name
DISK_REFUSED = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
#: errnos that mean the same when they name one of our paths (not, say, an unreadable evaluator)
ACCESS_REFUSED = {errno.EACCES, errno.EPERM}


class ExportOptionError(EdgeganError, ValueError):
    """An export option is invalid, or --out cannot take the export as asked."""


class OutFolderError(ExportOptionError):
    """--out holds files the export would replace, a symlink, or something --force must not replace."""


class ExportWriteError(EdgeganError):
    """Writing the export failed (disk full, read-only, permission denied); --out is as it was."""


# --- renameat2 (Linux): atomic exchange and no-replace renames ----------------------------------------------------

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _load_renameat2()


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """renameat2(2): True when done, False where the platform or the filesystem does not support it."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def _rename_noreplace(src: Path, dst: Path) -> None:
    if _renameat2(src, dst, RENAME_NOREPLACE):
        return
    if os.path.lexists(dst):  # the fallback: check, then rename (a race window renameat2 does not have)
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    os.rename(src, dst)


# --- checks --------------------------------------------------------------------------------------------------------


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def symlinks_in(folder: Path) -> list[str]:
    """Relative paths of the symlinks anywhere under folder (none is followed)."""
    links = []
    for root, dirs, files in os.walk(folder):  # os.walk does not descend into symlinked folders
        for name in dirs + files:
            if os.path.islink(os.path.join(root, name)):
                links.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(links)


def owned_present(out: Path, owned: Iterable[str]) -> list[str]:
    """The owned paths that exist in out, and any of their parents that is not a folder."""
    present = []
    for name in owned:
        parts = Path(name).parts
        for i in range(1, len(parts) + 1):
            path = out.joinpath(*parts[:i])
            if i < len(parts) and path.is_dir():
                continue
            if os.path.lexists(path):
                present.append(str(Path(*parts[:i])))
            break
    return sorted(set(present))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _real(path: str | os.PathLike) -> Path | None:
    """The real path (every symlink resolved), None where it cannot be resolved (a loop)."""
    try:
        return Path(os.path.realpath(path))
    except (OSError, RuntimeError, ValueError):
        return None


def check_reads(out: Path, shown: str, reads: Iterable[tuple[str, str | os.PathLike]]) -> None:
    """Refuse a forced export whose --out holds, or lies inside, anything the export reads.

    `reads` are (what, path) pairs, e.g. ("the checkpoint", "r/checkpoints/last.pt"), ("the data folder", "h/data").
    Real paths are compared both ways: replacing --out deletes what is inside it (a checkpoint, an evaluator, a
    data folder), and an --out inside a folder the export reads replaces part of that folder.
    """
    if not out.exists():
        return
    for what, path in reads:
        real = _real(path)
        if real is None:
            continue
        if _inside(real, out):
            raise OutFolderError(
                f"--force replaces --out {shown} as a whole, and it holds {what} {path} that this "
                "export reads: choose another --out"
            )
        if _inside(out, real):
            raise OutFolderError(
                f"--force replaces --out {shown} as a whole, and it lies inside {what} {path} that "
                "this export reads: choose another --out"
            )


def check_out(
    out: Path,
    shown: str,
    *,
    force: bool,
    owned: Iterable[str],
    keep: Iterable[str | os.PathLike],
    reads: Iterable[tuple[str, str | os.PathLike]] = (),
) -> None:
    """Raise OutFolderError when the export must not write to out (see the module docstring)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise OutFolderError(f"--out {shown} is a file; give a folder for the export")
    links = symlinks_in(out)
    if links:
        raise OutFolderError(
            f"--out {shown} holds symlinks ({_listed(links)}); an export never writes or deletes "
            "through a symlink: remove them or choose another --out"
        )
    if force:
        for path in keep:
            if _inside(Path(path).resolve(), out):
                raise OutFolderError(
                    f"--force replaces --out {shown} as a whole, and it holds {path}: choose another --out"
                )
        check_reads(out, shown, reads)
        return
    present = owned_present(out, owned)
    if present:
        raise OutFolderError(
            f"--out {shown} already holds {_listed(present)}; pass --force to replace the folder "
            "as a whole, or choose another --out"
        )


def _pid_alive(pid: int) -> bool:
    if os.name != "posix" or pid <= 0:
        return True  # os.kill(pid, 0) terminates the process on Windows: never probe there, never clean
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or a name we did not make): leave it
    return True


def _recover(scratch: Path, out: Path) -> bool:
    """Put back the old --out that a fallback swap left in scratch when --out is missing; True when it did."""
    backup = scratch / BACKUP_NAME
    if backup.is_dir() and not backup.is_symlink() and not os.path.lexists(out):
        os.rename(backup, out)
        return True
    return False


def clean_stale(out: Path) -> list[str]:
    """Remove the staging folders of dead export processes for this --out; return what was done, one line each."""
    pattern = re.compile(re.escape(f".{out.name}{STAGING_TAG}") + r"(\d+)-[A-Za-z0-9_]+")
    notes: list[str] = []
    if not out.parent.is_dir():
        return notes
    for entry in sorted(out.parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if not match or entry.is_symlink() or not entry.is_dir() or _pid_alive(int(match.group(1))):
            continue
        try:
            if _recover(entry, out):
                notes.append(f"put back {out}, left aside by an export (pid {match.group(1)}) cut while swapping")
        except OSError:
            continue  # leave it for a later run rather than delete the only copy
        shutil.rmtree(entry, ignore_errors=True)
        notes.append(f"removed {entry.name}, left by export process {match.group(1)} which is gone")
    return notes


def _write_error(exc: OSError, shown: str, ours: Iterable[Path]) -> ExportWriteError | None:
    named = [Path(os.path.abspath(f)) for f in (exc.filename, exc.filename2) if isinstance(f, (str, os.PathLike))]
    if exc.errno in DISK_REFUSED or (
        exc.errno in ACCESS_REFUSED and any(_inside(path, folder) for path in named for folder in ours)
    ):
        code = errno.errorcode.get(exc.errno, str(exc.errno))
        return ExportWriteError(
            f"cannot write the export to --out {shown}: {exc.strerror or exc} ({code}); {shown} is as it was"
        )
    return None


# --- the staging folder --------------------------------------------------------------------------------------------


@dataclass
class Staging:
    """A staging folder beside --out. `stage` becomes --out (force, or no --out yet) or is moved into it."""

    out: Path  # the real folder (symlinks resolved)
    shown: str  # --out as the user wrote it, for messages
    force: bool
    owned: tuple[str, ...]
    scratch: Path
    notes: list[str] = field(default_factory=list)
    created: list[Path] = field(default_factory=list)  # parents of --out this export made, deepest first

    @property
    def stage(self) -> Path:
        return self.scratch / STAGE_NAME

    @property
    def work(self) -> Path:
        return self.scratch / WORK_NAME

    def write_error(self, exc: OSError) -> ExportWriteError | None:
        """The ExportWriteError for a disk-full / read-only / permission OSError; None for any other."""
        return _write_error(exc, self.shown, (self.scratch, self.out, self.out.parent))

    def check_reads(self, reads: Iterable[tuple[str, str | os.PathLike]]) -> None:
        """`check_reads` for what the export found it reads once the checkpoint was loaded (its default evaluator,
        the run's data folder); only a forced export replaces --out."""
        if self.force:
            check_reads(self.out, self.shown, reads)

    def commit(self, last: str) -> None:
        """Move the staged export into --out (see the module docstring); `last` (the report) goes in last."""
        for path in sorted(self.stage.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            fsync_path(path)  # files before their folders
        fsync_path(self.stage)
        if not os.path.lexists(self.out):
            _rename_noreplace(self.stage, self.out)  # the whole export appears at once
        elif self.force:
            self._swap()
        else:
            check_out(self.out, self.shown, force=False, owned=self.owned, keep=())  # again: it may have changed
            self._move_in(last)
        fsync_path(self.out)
        fsync_path(self.out.parent)

    def _swap(self) -> None:
        os.chmod(self.stage, stat.S_IMODE(self.out.stat().st_mode))
        if _renameat2(self.stage, self.out, RENAME_EXCHANGE):
            return  # one atomic step; STAGE_NAME now holds the old folder, removed with the staging folder
        backup = self.scratch / BACKUP_NAME
        os.rename(self.out, backup)  # from here until the next rename --out is missing: _recover puts it back
        try:
            os.rename(self.stage, self.out)
        except BaseException:
            _recover(self.scratch, self.out)
            raise

    def _move_in(self, last: str) -> None:
        moved: list[tuple[Path, Path]] = []
        try:
            for src in sorted(self.stage.iterdir(), key=lambda p: (p.name == last, p.name)):
                dst = self.out / src.name
                if src.is_dir() and dst.is_dir():  # triton/ exists: move in our model folder, not the whole tree
                    pairs = [(child, dst / child.name) for child in sorted(src.iterdir())]
                else:
                    pairs = [(src, dst)]
                for pair in pairs:
                    _rename_noreplace(*pair)
                    moved.append(pair)
        except FileExistsError as exc:
            self._move_out(moved)
            raise OutFolderError(
                f"--out {self.shown} gained {Path(exc.filename).name} during the export; nothing "
                "was moved in: run again, with --force to replace the folder as a whole"
            ) from exc
        except BaseException:
            self._move_out(moved)
            raise

    @staticmethod
    def _move_out(moved: list[tuple[Path, Path]]) -> None:
        for src, dst in reversed(moved):
            try:
                os.rename(dst, src)
            except OSError:
                pass

    def close(self) -> None:
        """Remove the staging folder (putting back an old --out a cut swap left in it) and any parents of --out
        this export created when there is no --out in the end."""
        try:
            _recover(self.scratch, self.out)
        except OSError:
            return  # keep the only copy of the old folder; the next export retries
        shutil.rmtree(self.scratch, ignore_errors=True)
        if not os.path.lexists(self.out):
            for parent in self.created:
                try:
                    parent.rmdir()
                except OSError:
                    break


def open_staging(
    out_dir: str | os.PathLike,
    *,
    force: bool,
    owned: Iterable[str],
    keep: Iterable[str | os.PathLike] = (),
    reads: Iterable[tuple[str, str | os.PathLike]] = (),
) -> Staging:
    """Check --out and create the staging folder beside it, before any long work.

    Args:
        out_dir: --out as the user gave it.
        force: replace --out as a whole.
        owned: paths, relative to --out, that an export writes; without force none may exist.
        keep: paths --force must never replace (the source checkpoint, the working folder, home).
        reads: (what, path) of everything the export reads (checkpoint, checkpoints folder, evaluator, data
            folder): with force, --out may neither hold one nor lie inside one (`check_reads`).
    Returns:
        The Staging, with `notes` saying which stale staging folders were removed.
    Raises:
        OutFolderError: --out holds owned files (without force), a symlink, or a path in keep (with force).
        ExportWriteError: the staging folder cannot be created or --out is not writable.
    """
    shown = str(out_dir)
    try:
        out = Path(out_dir).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise OutFolderError(f"--out {shown} cannot be resolved ({exc}); choose another --out") from exc
    owned = tuple(owned)
    notes = clean_stale(out)
    check_out(out, shown, force=force, owned=owned, keep=keep, reads=reads)
    created = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGING_TAG}{os.getpid()}-", dir=out.parent))
    except OSError as exc:
        for parent in created:
            try:
                parent.rmdir()
            except OSError:
                break
        raise _write_error(exc, shown, (out.parent,)) or ExportWriteError(
            f"cannot write the export to --out {shown}: {exc.strerror or exc}"
        ) from exc
    staging = Staging(out=out, shown=shown, force=force, owned=owned, scratch=scratch, notes=notes, created=created)
    try:
        (scratch / STAGE_NAME).mkdir()
        (scratch / WORK_NAME).mkdir()
        if out.is_dir() and not force:  # the renames into it need write access to it and to triton/
            folders = {out} | {(out / name).parent for name in owned if (out / name).parent.is_dir()}
            denied = [f for f in sorted(folders) if not os.access(f, os.W_OK | os.X_OK)]
            if denied:
                raise ExportWriteError(
                    f"cannot write the export to --out {shown}: permission denied on "
                    f"{_listed([str(f) for f in denied])}"
                )
    except OSError as exc:
        staging.close()
        error = _write_error(exc, shown, (scratch,))
        if error is None:
            raise
        raise error from exc
    except BaseException:
        staging.close()
        raise
    return staging
