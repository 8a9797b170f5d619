"""Hostile cases for `edgegan export` (issue 10): foreign files and symlinks in --out, interrupted swaps, kill -9
leftovers, disk full and read-only output. Each one deleted, wrote outside --out, left a mix or a traceback before.

The tests import edgegan.export.staging only where they reach into it, so the module runs (and fails) against the old
pipeline too.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

import edgegan.export.pipeline as pipeline
import edgegan.export.variants.fp16 as fp16_variant
from edgegan.cli import main
from edgegan.export.pipeline import export_checkpoint
from edgegan.runtime.files import file_sha256

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str):
    return CliRunner().invoke(main, ["export", *args, "-q"])


def _listing(folder: Path) -> dict[str, str]:
    """relative path -> sha256 (or the link target) of everything under folder, without following symlinks."""
    listing = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                listing[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                listing[rel] = file_sha256(path)
    return listing


def _staging(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".export-" in p.name)


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def old_export(dcgan_cond_ckpt, tmp_path_factory) -> Path:
    """A finished export (fp16 + triton) to copy as the 'previous --out'."""
    out = tmp_path_factory.mktemp("previous") / "model"
    export_checkpoint(dcgan_cond_ckpt, out, fp16=True, triton=True, progress=False)
    return out


def _copy_of(old_export: Path, tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / "model"
    shutil.copytree(old_export, out)
    # The Triton model folder is named after --out; the copy keeps the name "model", so it is the same slot.
    return out


# --- 1. Export commits only what it wrote --------------------------------------------------------------------------


def test_foreign_files_without_force_are_refused_and_kept(dcgan_cond_ckpt, tmp_path):
    """The issue's reproduction: exit 0 and three deletions before."""
    out = tmp_path / "u"
    (out / "triton" / "edgegan_other").mkdir(parents=True)
    (out / "generator.int8.onnx").write_text("mine")
    (out / "export_report.json").write_text("{}")
    (out / "triton" / "edgegan_other" / "config.pbtxt").write_text("x")
    before = _listing(out)
    result = _run(str(dcgan_cond_ckpt), "--out", str(out))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error:") and "Traceback" not in result.output
    assert "generator.int8.onnx" in result.output and "export_report.json" in result.output
    assert "--force" in result.output and str(out) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _listing(out) == before
    assert _staging(tmp_path) == []


def test_files_the_export_does_not_own_are_left_alone(dcgan_cond_ckpt, tmp_path):
    """Without --force, --out may hold other files: the export adds its own beside them and removes nothing."""
    out = tmp_path / "u"
    (out / "triton" / "edgegan_other").mkdir(parents=True)
    (out / "triton" / "edgegan_other" / "config.pbtxt").write_text("x")
    (out / "notes.txt").write_text("mine")
    result = _run(str(dcgan_cond_ckpt), "--out", str(out), "--triton")
    assert result.exit_code == 0, result.output
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [
        "export_report.json",
        "generator.onnx",
        "notes.txt",
        "triton/edgegan_other/config.pbtxt",
        "triton/edgegan_u/1/model.onnx",
        "triton/edgegan_u/config.pbtxt",
    ]
    assert (out / "notes.txt").read_text() == "mine"
    assert _staging(tmp_path) == []


def test_force_replaces_the_folder_as_a_whole(dcgan_cond_ckpt, old_export, tmp_path):
    """--force: nothing of the old folder survives beside the new export (no stale variant, no foreign file)."""
    out = _copy_of(old_export, tmp_path)
    (out / "notes.txt").write_text("old")
    os.chmod(out, 0o750)
    export_checkpoint(dcgan_cond_ckpt, out, force=True, pixels="uint8", progress=False)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["export_report.json", "generator.onnx"]
    assert (out.stat().st_mode & 0o777) == 0o750  # the folder's mode is kept
    assert _staging(tmp_path) == []


def _fault_after(monkeypatch, k: int) -> list[str]:
    """Raise KeyboardInterrupt instead of the k-th rename that touches the staging folder (os.rename, os.replace
    and, where edgegan.export.staging exists, its renameat2 call), as a Ctrl-C arriving between two renames would."""
    calls: list[str] = []

    def wrap(real):
        def rename(src, dst, *args, **kwargs):
            if ".export-" in f"{src} {dst}":
                calls.append(f"{src} -> {dst}")
                if len(calls) == k:
                    raise KeyboardInterrupt
            return real(src, dst, *args, **kwargs)

        return rename

    monkeypatch.setattr(os, "rename", wrap(os.rename))
    monkeypatch.setattr(os, "replace", wrap(os.replace))
    try:
        import edgegan.export.staging as staging
    except ImportError:
        return calls
    monkeypatch.setattr(staging, "_renameat2", wrap(staging._renameat2))
    return calls


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_interrupt_during_the_forced_swap_leaves_old_or_new(
    dcgan_cond_ckpt, old_export, tmp_path, monkeypatch, exchange, k
):
    out = _copy_of(old_export, tmp_path)
    before = _listing(out)
    if not exchange:
        import edgegan.export.staging as staging

        monkeypatch.setattr(staging, "_RENAMEAT2", None)  # as on a platform or filesystem without it
    calls = _fault_after(monkeypatch, k)
    try:
        export_checkpoint(dcgan_cond_ckpt, out, force=True, pixels="uint8", progress=False)
        interrupted = False
    except KeyboardInterrupt:
        interrupted = True
    monkeypatch.undo()
    after = _listing(out)
    new = ["export_report.json", "generator.onnx"]
    assert after == before or sorted(p for p in after if (out / p).is_file()) == new, (calls, sorted(after))
    # The swap is one exchange; or a refused exchange, then two renames (old -> backup, new -> --out): each call
    # is a cut point, the third one right where --out is missing.
    assert interrupted == (k == 1 or not exchange), calls
    if interrupted:
        assert after == before, calls
    assert _staging(tmp_path) == []


def test_interrupt_while_moving_into_an_existing_folder_moves_everything_back(dcgan_cond_ckpt, tmp_path, monkeypatch):
    out = tmp_path / "u"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    _fault_after(monkeypatch, 2)  # generator.onnx is in, the report not yet
    with pytest.raises(KeyboardInterrupt):
        export_checkpoint(dcgan_cond_ckpt, out, progress=False)
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert _staging(tmp_path) == []


def test_ctrl_c_mid_export_keeps_the_old_folder(dcgan_cond_ckpt, old_export, tmp_path, monkeypatch):
    out = _copy_of(old_export, tmp_path)
    before = _listing(out)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fp16_variant, "convert_fp16", interrupt)
    result = _run(str(dcgan_cond_ckpt), "--out", str(out), "--force", "--fp16")
    assert result.exit_code == 130
    assert _listing(out) == before
    assert _staging(tmp_path) == []


def test_force_refuses_a_folder_holding_the_checkpoint(tmp_path):
    from tests.export.conftest import make_checkpoint

    run = tmp_path / "run"
    ckpt = make_checkpoint(run / "checkpoints" / "last.pt", seed=5)
    before = _listing(run)
    result = _run(str(run), "--out", str(run), "--force")
    assert result.exit_code == 1 and result.output.startswith("Error:"), result.output
    assert "--force" in result.output and str(ckpt.parent.parent) in result.output
    assert _listing(run) == before


# --- 2. Symlinks ---------------------------------------------------------------------------------------------------


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    victim = tmp_path / "elsewhere" / "edgegan_victim"
    victim.mkdir(parents=True)
    (victim / "config.pbtxt").write_text("someone else's model")
    return tmp_path / "elsewhere"


@pytest.mark.parametrize("args", [[], ["--force", "--triton"]], ids=["plain", "force-triton"])
def test_symlink_inside_out_is_refused(dcgan_cond_ckpt, old_export, tmp_path, elsewhere, args):
    """OUT/triton -> /elsewhere: a plain export deleted /elsewhere/edgegan_victim, a forced one wrote into it."""
    out = tmp_path / "u"
    out.mkdir()
    (out / "triton").symlink_to(elsewhere)
    before_out, before_elsewhere = _listing(out), _listing(elsewhere)
    result = _run(str(dcgan_cond_ckpt), "--out", str(out), *args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error:") and "symlink" in result.output and "triton" in result.output
    assert _listing(elsewhere) == before_elsewhere
    assert _listing(out) == before_out
    assert _staging(tmp_path) == []


def test_out_that_is_a_symlink_is_followed_once(dcgan_cond_ckpt, tmp_path):
    """--out itself may be a symlink: the export goes into the real folder and the link stays a link."""
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert _run(str(dcgan_cond_ckpt), "--out", str(link)).exit_code == 0
    assert _run(str(dcgan_cond_ckpt), "--out", str(link), "--force", "--pixels", "uint8").exit_code == 0
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert sorted(p.name for p in real.iterdir()) == ["export_report.json", "generator.onnx"]
    assert _staging(tmp_path) == []


# --- 3. Staging folders: named with the pid, stale ones removed ---------------------------------------------------


def test_stale_staging_of_a_dead_process_is_removed(dcgan_cond_ckpt, tmp_path):
    dead = tmp_path / f".model.export-{_dead_pid()}-abcd1234"
    (dead / "stage").mkdir(parents=True)
    (dead / "stage" / "generator.onnx").write_bytes(b"0" * 1000)
    alive = tmp_path / f".model.export-{os.getppid()}-live0000"  # a running export's: not ours to remove
    alive.mkdir()
    other = tmp_path / f".other.export-{_dead_pid()}-abcd1234"  # another --out's
    other.mkdir()
    export_checkpoint(dcgan_cond_ckpt, tmp_path / "model", progress=False)
    assert _staging(tmp_path) == sorted([alive.name, other.name])


def _kill9_script(body: str) -> str:
    return "\n".join(
        [
            "import os, signal, sys",
            "import edgegan.export.pipeline as p",
            "import edgegan.export.staging as staging",
            "def die(*args, **kwargs):",
            "    os.kill(os.getpid(), signal.SIGKILL)",
            body,
            "p.export_checkpoint(sys.argv[1], sys.argv[2], force=len(sys.argv) > 3, progress=False)",
        ]
    )


def test_kill9_mid_export_leaves_a_pid_named_staging_that_the_next_export_removes(dcgan_cond_ckpt, tmp_path):
    out = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, "-c", _kill9_script("p.verify_variant = die"), str(dcgan_cond_ckpt), str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = _staging(tmp_path)
    assert len(left) == 1 and left[0].startswith(".model.export-") and not out.exists()
    pid = int(left[0][len(".model.export-") :].split("-")[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    export_checkpoint(dcgan_cond_ckpt, out, progress=False)
    assert _staging(tmp_path) == []
    assert (out / "export_report.json").is_file()


def test_kill9_between_the_two_renames_of_a_swap_is_recovered(dcgan_cond_ckpt, old_export, tmp_path):
    """Without renameat2 a forced swap is two renames; killed between them, --out is missing until the next export
    puts the old folder back (the kill -9 window the atomic exchange closes)."""
    out = _copy_of(old_export, tmp_path)
    before = _listing(out)
    body = "\n".join(
        [
            "staging._RENAMEAT2 = None",
            "real = os.rename",
            "def rename(src, dst, *a, **k):",
            "    real(src, dst, *a, **k)",
            "    if os.path.basename(dst) == staging.BACKUP_NAME:",
            "        die()",
            "os.rename = rename",
        ]
    )
    proc = subprocess.run(
        [sys.executable, "-c", _kill9_script(body), str(dcgan_cond_ckpt), str(out), "force"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists() and len(_staging(tmp_path)) == 1
    # The next export restores the old folder first, then (without --force) refuses to replace it.
    result = _run(str(dcgan_cond_ckpt), "--out", str(out))
    assert result.exit_code == 1 and "--force" in result.output, result.output
    assert _listing(out) == before
    assert _staging(tmp_path) == []


# --- 4. Disk full, read-only ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, filename",
    [
        (errno.ENOSPC, True),
        (errno.ENOSPC, False),
        (errno.EROFS, True),
        (errno.EACCES, True),
    ],
)
def test_write_failure_is_one_line_naming_out_and_keeps_the_old_folder(
    dcgan_cond_ckpt, old_export, tmp_path, monkeypatch, code, filename
):
    """A fault-injecting writer: the second onnx.save_model (generator.fp16.onnx) fails as a full or read-only
    disk would. Without a filename it is what a failing write() raises."""
    out = _copy_of(old_export, tmp_path)
    before = _listing(out)
    real, saved = onnx.save_model, []

    def save_model(model, f, *args, **kwargs):
        saved.append(f)
        if len(saved) == 2:
            raise OSError(code, os.strerror(code), *([str(f)] if filename else []))
        return real(model, f, *args, **kwargs)

    monkeypatch.setattr(onnx, "save_model", save_model)
    result = _run(str(dcgan_cond_ckpt), "--out", str(out), "--force", "--fp16")
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.output.startswith("Error:") and len(result.output.strip().splitlines()) == 1, result.output
    assert str(out) in result.output and os.strerror(code) in result.output
    assert ".export-" not in result.output and "generator.fp16.onnx" not in result.output  # not the temp file
    assert _listing(out) == before
    assert _staging(tmp_path) == []


def test_unwritable_out_fails_before_the_checkpoint_is_loaded(dcgan_cond_ckpt, tmp_path, monkeypatch):
    """A read-only parent of --out (fault-injected: tests may run as root, where chmod does not stop writes)."""
    parent = tmp_path / "ro"
    parent.mkdir()
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).parent == parent:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kwargs)

    def load(*args, **kwargs):
        raise AssertionError("the checkpoint was loaded before --out was found unwritable")

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(pipeline, "_load", load)
    result = _run(str(dcgan_cond_ckpt), "--out", str(parent / "model"))
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.output.startswith("Error:") and str(parent / "model") in result.output
    assert "Read-only file system" in result.output
    assert list(parent.iterdir()) == []


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="root ignores directory permissions, so chmod 0o555 cannot make --out read-only; "
    "test_unwritable_out_fails_before_the_checkpoint_is_loaded injects the fault instead",
)
def test_read_only_out_is_a_one_line_error(dcgan_cond_ckpt, tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        result = _run(str(dcgan_cond_ckpt), "--out", str(parent / "model"))
    finally:
        parent.chmod(0o755)
    assert result.exit_code == 1 and result.output.startswith("Error:"), result.output
    assert str(parent / "model") in result.output and "Traceback" not in result.output
    assert list(parent.iterdir()) == []
