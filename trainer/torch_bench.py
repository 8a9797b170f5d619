"""The PyTorch baseline for `edgegan bench --torch RUN|CKPT`: the same generator in eager mode and torch.compile.

Registered as the `torch` entry point of the `edgegan.bench_baselines` group (pyproject.toml), so the torch-free
harness (runtime/bench/harness.py) finds it without importing torch itself, and times these runners in the same process,
interleaved with the onnxruntime rows. Each runner follows edgegan.runtime.bench.harness.Runner: load (cold start), activate
(torch's thread count is process-wide, so it is set before every slice of calls), prepare (the contract latents
for seed 0, as the onnxruntime rows use), run (one forward under inference_mode).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Callable, Sequence

import torch
from torch import nn

from edgegan.trainer.sample import contract_inputs, load_generator

# Rows run torch as users run it: with the OpenMP wait policy of the environment (unset: libgomp's default, which
# spins a while between parallel regions). The policy is read once, when torch's OpenMP starts, so another policy
# (OMP passive: threads sleep at once, kinder to a shared machine) runs in its own process
# (trainer/torch_bench_child.py) as an extra, labelled row; the ratio column uses the row from this process.
WAIT_POLICY = (os.environ.get("OMP_WAIT_POLICY") or "default").lower()  # what torch's OpenMP reads here
POLICIES = ("default", "passive")


def count_macs(G: nn.Module, batch: int, nz: int, conditional: bool) -> int:
    """Multiply-adds of one forward at `batch`, from the shapes each layer sees (forward hooks on one pass of
    zeros): Linear rows*in*out, Conv out_elems*Cin/g*k, ConvTranspose in_elems*Cout/g*k."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        x = inputs[0]
        if isinstance(module, nn.Linear):
            total += x.numel() // x.shape[-1] * module.in_features * module.out_features
        elif isinstance(module, nn.ConvTranspose2d):
            total += x.numel() * module.out_channels // module.groups * math.prod(module.kernel_size)
        elif isinstance(module, nn.Conv2d):
            total += output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)

    handles = [
        m.register_forward_hook(hook) for m in G.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))
    ]
    try:
        with torch.inference_mode():
            z = torch.zeros(batch, nz)
            y = torch.zeros(batch, dtype=torch.long) if conditional else None
            G(z, y)
    finally:
        for h in handles:
            h.remove()
    return total


#: Autocast precisions timed beside every CUDA row (fp16: Tensor Cores at half the bytes; bf16: fp32's range).
AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}
DEVICES = ("cpu", "cuda")


class TorchRunner:
    """One generator in PyTorch, eager or through torch.compile, at one thread count, on the CPU or a GPU.

    On the CPU torch.compile gets a fresh compiled module per thread count (inductor's CPU kernels bake the thread
    count in) and compiles with dynamic=False, once per batch size, on the first call: the row's first-call time.
    On CUDA the rows are what onnxruntime's cuda rows do, numpy in and numpy out (the latents copied to the
    device, the images copied back: `.cpu()` waits for the GPU, so each timed call is synchronised); torch.compile
    uses mode="reduce-overhead" (CUDA graphs), and `autocast` ("fp16"/"bf16") runs eager under torch.autocast.
    """

    output = "float_nchw"

    def __init__(
        self,
        source: str | os.PathLike,
        threads: int,
        compiled: bool = False,
        device: str = "cpu",
        autocast: str | None = None,
    ):
        if device not in DEVICES:
            raise ValueError(f"torch bench device must be one of {', '.join(DEVICES)}, got {device!r}")
        if autocast is not None and (autocast not in AUTOCAST or device != "cuda"):
            raise ValueError(f"autocast rows are {', '.join(AUTOCAST)} on cuda, got {autocast!r} on {device}")
        self.source = str(source)
        self.model = self.source
        self.threads = threads
        self.compiled = compiled
        self.device = device
        self.autocast = autocast
        self.name = "torch compile" if compiled else f"torch autocast {autocast}" if autocast else "torch eager"
        self.precision = autocast or "fp32"
        # torch.compile needs a C++ toolchain (CPU) or triton (CUDA); a CUDA row needs a CUDA build: where they
        # fail the row says why and the run goes on. The CPU eager row is the ratio base: it must run.
        self.optional = compiled or device == "cuda"
        self.provider = f"torch {device}"
        self.provider_asked = device  # its share of peak is taken against the same device's matrix product
        mode = ", mode=reduce-overhead" if compiled and device == "cuda" else ""
        self.setup = f"omp_wait={WAIT_POLICY}" if device == "cpu" else f"numpy in/out{mode}"
        self._fn: Callable[..., torch.Tensor] | None = None  # set by load: G, or torch.compile(G)
        self._args: tuple = ()
        self._macs: dict[int, int] = {}

    def load(self) -> None:
        torch.set_num_threads(self.threads)
        G, cfg, _ = load_generator(self.source, use_ema=True)
        self.G, self.cfg = G, cfg.model  # the CPU copy counts multiply-adds
        if self.device == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("torch has no CUDA here (torch.cuda.is_available() is False)")
            G = copy.deepcopy(G).to("cuda")
        if self.compiled:
            mode = "reduce-overhead" if self.device == "cuda" else None  # CUDA graphs: one launch per call
            self._fn = torch.compile(G, dynamic=False, mode=mode)
        else:
            self._fn = G

    def activate(self) -> None:
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    def prepare(self, batch: int) -> None:
        self._args = contract_inputs(batch, 0, self.cfg.nz, self.cfg.num_classes)  # the runtime rows' latents

    def run(self) -> None:
        fn = self._fn
        if fn is None:
            raise RuntimeError(f"{self.name}: run() before load()")
        if self.device == "cpu":
            with torch.inference_mode():
                fn(*self._args)  # [batch, C, H, W]; CPU tensors, so it has finished when this returns
            return
        z, y = self._args
        cast = torch.autocast("cuda", dtype=AUTOCAST[self.autocast]) if self.autocast else contextlib.nullcontext()
        with torch.inference_mode(), cast:
            out = fn(z.to("cuda"), None if y is None else y.to("cuda"))  # [batch, C, H, W] on the GPU
            out.float().cpu()  # numpy out: the copy back waits for every kernel (a synchronised call)

    def macs(self, batch: int) -> int:
        """Multiply-adds of this generator at `batch` (the PyTorch layers' own work)."""
        if batch not in self._macs:
            self._macs[batch] = count_macs(self.G, batch, self.cfg.nz, bool(self.cfg.num_classes))
        return self._macs[batch]


def make_runners(
    source: str | os.PathLike,
    threads: int,
    compile: bool = True,
    policies: Sequence[str] = ("default",),
    devices: Sequence[str] = ("cpu",),
) -> list:
    """The `torch` benchmark baseline: eager (and torch.compile) runners for a run folder or checkpoint.

    Args:
        source: a run folder (RUN/checkpoints/last.pt) or a checkpoint file.
        threads: torch.set_num_threads for these runners.
        compile: also a torch.compile runner (in this process only).
        policies: OpenMP wait policies to time eager torch with. "default" runs here with the environment's policy
            (rows "torch eager", "torch compile": the ratio column's base); "passive" adds the row
            "torch eager (OMP passive)" from a child process started with OMP_WAIT_POLICY=PASSIVE.
        devices: "cuda" adds, beside the CPU rows, eager fp32, autocast fp16 and bf16 and (with compile)
            torch.compile(mode="reduce-overhead") on the GPU: the bases of onnxruntime's cuda rows.

    Returns:
        [eager] or [eager, compile], the cuda rows, then one child-process eager runner per other policy.

    Raises:
        ValueError: a policy not in POLICIES.
    """
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise ValueError(
            f"torch OpenMP policies must be among {', '.join(POLICIES)}, got {', '.join(policies) or 'none'}"
        )
    runners: list = []
    unknown_devices = [d for d in devices if d not in DEVICES]
    if unknown_devices:
        raise ValueError(f"torch bench devices must be among {', '.join(DEVICES)}, got {', '.join(unknown_devices)}")
    if "default" in policies:
        runners.append(TorchRunner(source, threads))
        if compile:
            runners.append(TorchRunner(source, threads, compiled=True))
    if "cuda" in devices:
        runners.append(TorchRunner(source, threads, device="cuda"))
        runners += [TorchRunner(source, threads, device="cuda", autocast=a) for a in AUTOCAST]
        if compile:
            runners.append(TorchRunner(source, threads, compiled=True, device="cuda"))
    if "passive" in policies:
        from edgegan.trainer.torch_bench_child import ChildTorchRunner

        runners.append(ChildTorchRunner(source, threads, "passive"))
    return runners
