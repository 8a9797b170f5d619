"""What the CLI tests share: run a command in-process, the one-line error they expect, a tiny training's
arguments, and a file that fills up like a full disk."""

from __future__ import annotations

import errno
import io
import os

from click.testing import CliRunner

from edgegan.cli import main


def run(*args):
    """`edgegan ARGS` through click's CliRunner (arguments may be paths or numbers)."""
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(result, *fragments, code: int = 1, error_prefix: bool = False) -> None:
    """The command exited `code` with one line of output (no traceback) holding every fragment."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    if error_prefix:
        assert lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], result.output


def tiny_args(npz, out, *extra):
    """`edgegan train` on a tiny .npz with a width-8 DCGAN: milliseconds a step."""
    return (
        "train",
        "--dataset",
        "npz",
        "--data-dir",
        npz,
        "--width",
        "8",
        "--nz",
        "16",
        "--batch-size",
        "16",
        "--quiet",
        "--out",
        out,
        *extra,
    )


class FullDisk(io.RawIOBase):
    """A file that takes `room` bytes and then fails every write with ENOSPC, as a full file system does."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        if len(b) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(b)
        return self.f.write(b)


def one_error_line(result, *fragments) -> None:
    """one_line, and the line is click's "Error: ..." (a library error the command turned into a message)."""
    one_line(result, *fragments, error_prefix=True)
