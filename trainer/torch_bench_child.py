"""The PyTorch baseline under another OpenMP wait policy, in a child process the benchmark drives call by call.

libgomp reads OMP_WAIT_POLICY once, when it loads with torch, so `edgegan bench` cannot time torch under two
policies in one process. `ChildTorchRunner` starts `python -m edgegan.trainer.torch_bench_child` with the policy
in its environment; the child imports torch and holds a `TorchRunner` (trainer/torch_bench.py), and the parent
sends it one line per step (load, prepare B, run, macs B) and waits for its one-line answer. The harness times
`run` in the parent as for any runner, so the row is interleaved with the others; it includes one pipe round
trip (median 0.02 ms on the 2-core test machine at load 7.7, against >= 1 ms for a DCGAN 28x28 forward). CPU time
and memory are the child's and are not seen by the parent: `cpu_in_child` tells runtime/bench/rows.py to leave
those columns empty.
"""

from __future__ import annotations

import os
import subprocess
import sys

ENGINE_LABELS = {"passive": "torch eager (OMP passive)"}


class ChildTorchError(RuntimeError):
    """The child process failed a step, or died; the message is the child's one-line error."""


class ChildTorchRunner:
    """An eager `TorchRunner` at `threads` threads in a child process started with OMP_WAIT_POLICY=`policy`.

    The child starts here (python + torch import, not part of cold start, as torch's import is not for the
    in-process rows); `load` then builds the model in it, timed.
    """

    precision = "fp32"
    output = "float_nchw"
    provider_asked = "cpu"
    optional = True  # an extra row: if its process fails, the row says why and the run goes on
    cpu_in_child = True

    def __init__(self, source: str | os.PathLike, threads: int, policy: str = "passive"):
        if policy not in ENGINE_LABELS:
            raise ValueError(
                f"no child-process torch row for OpenMP policy {policy!r}; one of {', '.join(ENGINE_LABELS)}"
            )
        self.source, self.model, self.threads = str(source), str(source), threads
        self.name = ENGINE_LABELS[policy]
        self.provider = "torch cpu"
        self.setup = f"omp_wait={policy}, own process"
        self._macs: dict[int, int] = {}
        env = {**os.environ, "OMP_WAIT_POLICY": policy.upper()}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "edgegan.trainer.torch_bench_child", self.source, str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        if self._proc.stdin is None or self._proc.stdout is None:  # both PIPE above: Popen made them
            raise ChildTorchError(f"the {self.name} process has no pipes")
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        self._ask("ping")

    def _ask(self, command: str) -> str:
        if self._proc.poll() is not None:
            raise ChildTorchError(f"the {self.name} process exited with code {self._proc.returncode}")
        self._stdin.write(command.encode() + b"\n")
        self._stdin.flush()
        answer = self._stdout.readline().decode().rstrip("\n")
        if not answer:
            raise ChildTorchError(f"the {self.name} process exited (code {self._proc.wait()}) during {command!r}")
        status, _, value = answer.partition(" ")
        if status != "ok":
            raise ChildTorchError(value)
        return value

    def load(self) -> None:
        self._ask("load")

    def activate(self) -> None:
        pass  # the thread count belongs to the child's process and is set once there

    def prepare(self, batch: int) -> None:
        self._ask(f"prepare {batch}")
        if batch not in self._macs:  # counted now: the rows are made after the child has been closed
            self._macs[batch] = int(self._ask(f"macs {batch}"))

    def run(self) -> None:
        self._ask("run")

    def macs(self, batch: int) -> int | None:
        return self._macs.get(batch)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._stdin.close()  # the child's loop ends at end of input
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def serve(source: str, threads: int, answers, commands) -> None:
    """The child's loop: one command line in, one answer line out ("ok [value]" or "error <message>")."""
    from edgegan.trainer.torch_bench import TorchRunner

    runner = TorchRunner(source, threads)
    steps = {
        "ping": lambda arg: None,
        "load": lambda arg: runner.load(),
        "prepare": lambda arg: runner.prepare(int(arg)),
        "run": lambda arg: runner.run(),
        "macs": lambda arg: runner.macs(int(arg)),
    }
    for line in commands:
        command, _, arg = line.decode().strip().partition(" ")
        try:
            value = steps[command](arg)
            answer = "ok" if value is None else f"ok {value}"
        except Exception as exc:  # noqa: BLE001 - the parent records it in the row
            text = str(exc).strip().splitlines()
            answer = f"error {type(exc).__name__}: {text[0] if text else ''}"
        answers.write(answer.encode() + b"\n")
        answers.flush()


if __name__ == "__main__":
    # Answers go on a private copy of stdout; stdout itself goes to stderr, so stray prints cannot break the protocol.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.argv[1], int(sys.argv[2]), answers, sys.stdin.buffer)
