"""README.md cannot drift: its command blocks run, in order, in one folder, as a reader following it would.

Every fenced block that holds commands (shell lines starting with `edgegan`, `python`, `bash`, `torchrun`, `git`,
`./build.sh`; `$ ` lines of a console block; any ```python block) carries a marker on the line before it:
`<!-- readme-test: run -->` or `<!-- readme-test: skip: REASON -->`. The first test checks that none is unmarked.
The second runs the `run` blocks top to bottom in one temporary folder, on real Fashion-MNIST and MNIST, with the
sizes shrunk so the whole README runs in minutes (the rewrites are `_tiny` below; nothing else is changed):
training stops after a dozen steps of a narrow model, evaluators train on a subset, `eval` scores 256 images,
`sample` draws at most 16, `bench` times two calls.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MARK = re.compile(r"^<!-- readme-test: (run|skip: .+) -->$")
COMMAND_STARTS = ("edgegan ", "python ", "bash ", "torchrun ", "git ", "./build.sh")


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    body: list[str]
    mark: str | None  # "run", "skip: ...", or None

    def commands(self) -> list[str]:
        """Shell command lines (continuations joined; console output and comments dropped)."""
        lines, joined = [], ""
        for raw in self.body:
            if self.lang == "console":
                if not raw.startswith("$ "):
                    continue
                raw = raw[2:]
            text = joined + raw.strip()
            if text.endswith("\\"):
                joined = text[:-1] + " "
                continue
            joined = ""
            if text and not text.startswith("#"):
                lines.append(text)
        return lines

    @property
    def is_python(self) -> bool:
        return self.lang == "python"

    @property
    def has_commands(self) -> bool:
        return self.is_python or any(c.startswith(COMMAND_STARTS) for c in self.commands())


def readme_blocks() -> list[Block]:
    lines = README.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start, lang = i, lines[i][3:].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            before = lines[start - 1].strip() if start else ""
            mark = MARK.match(before)
            blocks.append(Block(start + 1, lang, lines[start + 1 : end], mark.group(1) if mark else None))
            i = end + 1
        else:
            i += 1
    return blocks


def test_every_command_block_says_whether_it_runs():
    unmarked = [f"README.md:{b.line}" for b in readme_blocks() if b.has_commands and b.mark is None]
    assert not unmarked, f"add <!-- readme-test: run --> or <!-- readme-test: skip: why --> before {unmarked}"
    assert sum(b.mark == "run" for b in readme_blocks()) >= 10


def _set(args: list[str], option: str, value: str) -> list[str]:
    """args with `option VALUE` replaced (or appended)."""
    if option in args:
        i = args.index(option)
        return args[:i] + [option, value] + args[i + 2 :]
    return args + [option, value]


def _drop(args: list[str], option: str) -> list[str]:
    if option in args:
        i = args.index(option)
        return args[:i] + args[i + 2 :]
    return args


def _tiny(command: str) -> list[str]:
    """One README command -> the argv the test runs: same command, shrunk sizes, this interpreter."""
    args = shlex.split(command, comments=True)
    if args[0] == "python":
        args = (
            [sys.executable, str(REPO / args[1]), *args[2:]]
            if args[1].startswith(("scripts/", "benchmarks/"))
            else [sys.executable, *args[1:]]
        )
        return args
    assert args[0] == "edgegan", command
    args = [sys.executable, "-m", "edgegan", *args[1:]]
    verb = args[3] if args[3] != "evaluator" else "evaluator " + args[4]
    if verb == "train":
        args = _drop(args, "--epochs")
        resume = "--resume" in args
        args = _set(args, "--max-steps", "24" if resume else "12")
        args = args if resume else _set(_set(args, "--width", "8"), "--log-every", "4")
    elif verb == "evaluator train":
        args = _set(_set(args, "--max-steps", "20"), "--max-images", "2048")
    elif verb == "eval":
        args = _set(args, "-n", "256")
    elif verb == "sample":
        n = int(args[args.index("-n") + 1]) if "-n" in args else 64
        args = _set(args, "-n", str(min(n, 16)))
    elif verb == "bench":
        for option, value in (("--iters", "2"), ("--rounds", "1"), ("--warmup", "0")):
            args = _set(args, option, value)
        args += ["--no-peak", "--no-torch-compile"]
    return args


@pytest.mark.integration
def test_readme_runs_top_to_bottom(tmp_path):
    from tests.real_data import SYSTEM_DATA, real_dataset

    found = [real_dataset(name) for name in ("fashion-mnist", "mnist")]  # absent: a skip, or a failure under CI
    work = tmp_path / "reader"
    work.mkdir()
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
        "EDGEGAN_PROGRESS_SECONDS": "60",
    }
    roots = sorted({str(f.parent) for f in found if f.parent != SYSTEM_DATA})  # found through $EDGEGAN_DATA
    assert len(roots) <= 1, f"the datasets lie under different roots ({roots}); $EDGEGAN_DATA names one"
    if roots:
        env["EDGEGAN_DATA"] = roots[0]
    ran = 0
    for block in readme_blocks():
        if block.mark != "run":
            continue
        if block.is_python:
            argvs = [[sys.executable, "-c", "\n".join(block.body)]]
        else:
            argvs = [_tiny(c) for c in block.commands()]
        for argv in argvs:
            proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, (
                f"README.md:{block.line}: {' '.join(argv)}\nexit {proc.returncode}\n"
                f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}"
            )
            ran += 1
    assert ran >= 20
    assert (work / "models" / "fm" / "generator.int8.onnx").is_file()
    assert (work / "models" / "fm-cond" / "generator.required_operators.config").is_file()
    assert (work / "devices.md").is_file() and (work / "shoes.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
