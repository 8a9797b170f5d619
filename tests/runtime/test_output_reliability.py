"""Issue 19, item 3: outputs go only to regular files or new paths.

Outputs are written by renaming a temp file over the target, which replaces whatever is there: as root,
`sample --npy /dev/null` turned the machine's /dev/null into a regular file; a FIFO or a symlink was replaced the
same way. Now the shared check (`runtime/files.py`: check_writable, and atomic_write again before its rename)
refuses a symlink, device node, FIFO, socket or folder with one line, before any work.

/dev/null is only ever stat()ed here: every test that names it gives a model path that does not exist, so even
code without the check fails on the model before it could write.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.runtime.files import OutputPathError, atomic_write, check_writable

DEV_NULL = Path("/dev/null")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_refusal(result, path, kind: str) -> None:
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert str(path) in lines[0] and kind in lines[0], result.output


def hostile(tmp_path: Path, kind: str) -> Path:
    """A FIFO, a symlink (to a file that must stay as it is), a folder or a socket at tmp_path/out."""
    path = tmp_path / "out"
    if kind == "FIFO":
        os.mkfifo(path)
    elif kind == "symlink":
        (tmp_path / "target.txt").write_text("someone else's")
        os.symlink(tmp_path / "target.txt", path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    return path


def unchanged(tmp_path: Path, path: Path, kind: str) -> None:
    mode = os.lstat(path).st_mode
    test = {"FIFO": stat.S_ISFIFO, "symlink": stat.S_ISLNK, "folder": stat.S_ISDIR, "socket": stat.S_ISSOCK}[kind]
    assert test(mode)
    if kind == "symlink":
        assert (tmp_path / "target.txt").read_text() == "someone else's"


def test_dev_null_is_refused_before_any_work_and_stays_a_device(tmp_path):
    assert stat.S_ISCHR(os.stat(DEV_NULL).st_mode)
    missing = tmp_path / "no-such-model.onnx"  # the refusal must come before the model is even looked at
    for args in (
        ["sample", missing, "-n", "4", "--npy", DEV_NULL, "-q"],
        ["sample", missing, "-n", "4", "-o", tmp_path / "g.png", "--json", DEV_NULL, "-q"],
        ["bench", missing, "--json", DEV_NULL, "-q"],
        ["eval", missing, "--dataset", "mnist", "--json", DEV_NULL, "-q"],
    ):
        one_line_refusal(invoke(*args), DEV_NULL, "character device")
        assert stat.S_ISCHR(os.stat(DEV_NULL).st_mode)
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("kind", ["FIFO", "symlink", "socket"])  # a folder was already a usage error
@pytest.mark.parametrize("option", ["--npy", "-o", "--json"])
def test_sample_refuses_outputs_that_are_not_regular_files(option, kind, float_model, tmp_path):
    path = hostile(tmp_path, kind)
    if option == "-o":  # the grid's name must say its picture format
        path = path.rename(tmp_path / "out.png")
    extra = ["-o", tmp_path / "grid.png"] if option != "-o" else []
    result = invoke("sample", float_model, "-n", 2, option, path, *extra, "-q")
    one_line_refusal(result, path, kind)
    unchanged(tmp_path, path, kind)
    assert not (tmp_path / "grid.png").exists()  # nothing else was written either


@pytest.mark.parametrize("kind", ["FIFO", "symlink"])
def test_bench_and_eval_refuse_them_too(kind, float_model, tmp_path):
    path = hostile(tmp_path, kind)
    for args in (
        ["bench", float_model, "--batch-sizes", 1, "--iters", 1, "--rounds", 1, "--warmup", 0, "--no-peak"],
        ["bench", float_model, "--markdown", path],
        ["eval", float_model, "--dataset", "mnist"],
    ):
        extra = [] if "--markdown" in args else ["--json", path]
        one_line_refusal(invoke(*args, *extra, "-q"), path, kind)
        unchanged(tmp_path, path, kind)


def test_atomic_write_refuses_a_node_that_appeared_during_the_write(tmp_path):
    """check_writable saw a new path; a symlink put there while the work ran is not replaced either."""
    (tmp_path / "target.txt").write_text("someone else's")
    path = tmp_path / "late.json"
    check_writable(path, "--json")

    def write(f):
        f.write(b"{}")
        os.symlink(tmp_path / "target.txt", path)

    with pytest.raises(OutputPathError, match="it is a symlink"):
        atomic_write(path, write)
    assert path.is_symlink() and (tmp_path / "target.txt").read_text() == "someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.json", "target.txt"]  # no temp file left


def test_regular_files_and_new_paths_are_still_written(float_model, tmp_path):
    (tmp_path / "old.npy").write_bytes(b"old")
    result = invoke(
        "sample", float_model, "-n", 2, "--npy", tmp_path / "old.npy", "--json", tmp_path / "new.json", "-q"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "old.npy").read_bytes()[:6] == b"\x93NUMPY" and (tmp_path / "new.json").is_file()
