"""Training without the launch wall on CUDA (the whole D+G step as one CUDA graph), and `--deterministic`.

Why: a DCGAN step at batch 64 is ~60 small kernels; on an H200 the reference loop spent ~6.5 ms a step launching
them (docs/reference_figures.md: 9,800 images/s, launch-bound). `GraphedGANStep` captures `GANStep.train_batch` (D forward and
backward on real and fake, D's Adam step, G forward/backward through the frozen D, G's Adam step, the statistics)
once with torch.cuda.graph and replays it each step: one launch. What stays outside the graph, eagerly, is what
must read the step number or the host: top-k's kept fraction and, with an lr schedule, both optimizers'
learning rates (`begin_step`, written into device tensors the graph reads: Adam reads a float lr once, at
capture, and a one-element float32 CUDA tensor lr at every replay), the noise draw (the same `draw_noise` calls on the same generator as the
eager step, so the random stream and a resume are unchanged), copying the batch into the captured input buffers
(the data is already on the device: trainer/data.py), and the EMA update (its decay depends on the step).

Why not torch.compile(mode="reduce-overhead"): it graphs the forward and backward of each compiled module, not the
optimizer steps or the two backwards of the D step between them, and its compile time (tens of seconds) is paid
in every run; `--compile` stays available for what it does.

The graph replays fixed shapes and addresses, so it is taken only where it can hold: CUDA, one process (DDP's
all-reduce hooks fire from Python), no torch.compile, no fp16 loss scaling (GradScaler's inf check and scale
update branch on the host); `choose_step` says which path runs and why. Everything else falls back to the eager
`GANStep`, which computes the same thing.

`deterministic()`: cuDNN deterministic algorithms, no autotuning, no TF32, torch's deterministic mode (warn-only
for ops without a deterministic kernel), cuBLAS's fixed workspace. On CUDA, weight-gradient convolutions otherwise
pick nondeterministic (atomic-add) algorithms, so two runs differ in the 5th digit after a few steps and a resumed
run is not the straight run (test_resume_is_exact on an H200: 1.5865e-02 vs 1.5850e-02). Its cost is unmeasured
until the H200 run (benchmarks/gpu_check.py times the step with and without it).
"""

from __future__ import annotations

import os
import warnings

import torch

from edgegan.trainer import distributed as dist_utils
from edgegan.trainer.config import TrainConfig
from edgegan.trainer.step import GANStep

#: Steps run (then undone) before capture: lazy state (Adam moments, cuDNN/cuBLAS handles, autograd's buffers) is
#: made outside the graph, as torch.cuda.graphs requires.
WARMUP_STEPS = 3
#: Set to "0" to keep the eager step on CUDA (a comparison, or a workaround).
ENV_SWITCH = "EDGEGAN_CUDA_GRAPH"


def deterministic() -> dict[str, object]:
    """Make CUDA training bit-reproducible (and so a resumed run equal to a straight one); process-wide.

    Returns:
        The settings made, for train.log.
    """
    # cuBLAS reuses its workspace deterministically only with a fixed configuration; read when cuBLAS starts.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False  # on by default for convolutions: 10-bit mantissas
    torch.backends.cuda.matmul.allow_tf32 = False
    return {
        "deterministic_algorithms": "warn_only",
        "cudnn.deterministic": True,
        "cudnn.benchmark": False,
        "tf32": False,
        "CUBLAS_WORKSPACE_CONFIG": os.environ["CUBLAS_WORKSPACE_CONFIG"],
    }


def choose_step(cfg: TrainConfig, device: torch.device, world_size: int = 1) -> tuple[str, str]:
    """Which step runs: ("graph", why) or ("eager", why). A pure function of the recipe and the device."""
    if device.type != "cuda":
        return "eager", f"CUDA graphs need a CUDA device; this run is on {device.type}"
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return "eager", f"{ENV_SWITCH}=0"
    if world_size > 1:
        return "eager", "data-parallel: DDP's gradient all-reduce runs from Python hooks"
    if cfg.compile:
        return "eager", "--compile: torch.compile owns the step's graphs"
    if cfg.amp == "fp16":
        return "eager", "--amp fp16: the loss scaler checks for inf on the host each step"
    return "graph", "CUDA, one process: the D+G step replays as one CUDA graph"


def make_step(
    cfg: TrainConfig,
    device: torch.device,
    ctx: dist_utils.DistContext | None = None,
    total_steps: int | None = None,
) -> GANStep:
    """The training step for this run: GraphedGANStep where `choose_step` allows it, else GANStep. `total_steps`:
    the run's planned steps (GANStep's argument: an lr schedule reads it)."""
    mode, _ = choose_step(cfg, device, ctx.world_size if ctx is not None else 1)
    kind = GraphedGANStep if mode == "graph" else GANStep
    return kind(cfg, device, ctx, total_steps=total_steps)


class GraphedGANStep(GANStep):
    """GANStep whose `train_batch` replays one captured CUDA graph; same arguments, state and checkpoints.

    Captured lazily at the first step (after a resume's `load_state_dict`), and again after a later one (loading
    replaces the tensors the graph reads). A batch of another shape than the captured one runs eagerly.
    With an lr schedule, each optimizer's lr is a float32 tensor on the device (torch's Adam takes a tensor lr with
    capturable=True or fused=True) that begin_step refills; checkpoints hold it as a float, as the eager step's do.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        device: torch.device,
        ctx: dist_utils.DistContext | None = None,
        total_steps: int | None = None,
    ):
        super().__init__(cfg, device, ctx, total_steps=total_steps)
        if device.type != "cuda":
            raise ValueError(f"GraphedGANStep needs a CUDA device, got {device}")
        self._make_capturable()
        self._graph: torch.cuda.CUDAGraph | None = None
        self._shape: tuple[int, ...] | None = None
        self.captures = 0

    def _make_capturable(self) -> None:
        """Step counts on the device (Adam's update can replay) and, with an lr schedule, lr as a device tensor
        (the value a replay reads is the one begin_step wrote, not the one at capture)."""
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["capturable"] = True
                if self.lr_schedule != "constant" and not isinstance(group["lr"], torch.Tensor):
                    group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=self.device)

    def load_state_dict(self, ckpt: dict) -> None:
        super().load_state_dict(ckpt)
        self._make_capturable()  # a checkpoint's param_groups replace ours
        self._graph = None

    def state_dict(self) -> dict:
        """GANStep's, with a tensor lr written as the float it holds (one host sync, at a checkpoint)."""
        state = super().state_dict()
        for key in ("opt_G", "opt_D"):
            for group in state[key]["param_groups"]:  # Optimizer.state_dict's own copies of the groups
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"] = float(group["lr"])
        return state

    def step(self, x: torch.Tensor, y_real: torch.Tensor | None, t: int) -> torch.Tensor:
        self.begin_step(t)  # eager: the step's top-k fraction, into the device tensor the graph reads
        z, y_fake = self.draw_noise(x.shape[0] * self.fake_multiple)  # eager: the same stream as GANStep's
        if self._graph is None or tuple(x.shape) != self._shape:
            if self._graph is not None:  # an odd-sized batch: eager, the graph kept for the usual size
                stats = self.train_batch(x, y_real, z, y_fake)
            else:
                self._capture(x, y_real, z, y_fake)
                stats = self._replay(x, y_real, z, y_fake)
        else:
            stats = self._replay(x, y_real, z, y_fake)
        if self.ema is not None:
            self.ema.update(self.G, t)
        return stats

    def _replay(
        self, x: torch.Tensor, y_real: torch.Tensor | None, z: torch.Tensor, y_fake: torch.Tensor | None
    ) -> torch.Tensor:
        if self._graph is None:
            raise RuntimeError("no CUDA graph to replay: _capture makes it")
        for static, value in zip(self._inputs, (x, y_real, z, y_fake)):
            if static is not None:
                if value is None:
                    raise ValueError("this step's graph was captured with labels; the batch has none")
                static.copy_(value)  # into the captured addresses (device -> device)
        self._graph.replay()
        return self._stats.clone()  # the captured output is overwritten by the next replay

    def _capture(
        self, x: torch.Tensor, y_real: torch.Tensor | None, z: torch.Tensor, y_fake: torch.Tensor | None
    ) -> None:
        """Warm up on a side stream, undo the warm-up, capture train_batch on static copies of the inputs."""
        static_x, static_z = x.clone(), z.clone()
        static_y_real = None if y_real is None else y_real.clone()
        static_y_fake = None if y_fake is None else y_fake.clone()
        self._inputs = [static_x, static_y_real, static_z, static_y_fake]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            warm_up(self, self._inputs, WARMUP_STEPS)
        torch.cuda.current_stream(self.device).wait_stream(side)
        for opt in (self.opt_G, self.opt_D):
            opt.zero_grad(set_to_none=True)  # gradients are allocated from the graph's own pool
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._stats = self.train_batch(static_x, static_y_real, static_z, static_y_fake)
        self._shape = tuple(x.shape)
        self.captures += 1


def _state_tensors(engine: GANStep) -> list[torch.Tensor]:
    """Everything a training step changes in place: G's and D's parameters and buffers, both optimizers' state."""
    tensors = [*engine.G.parameters(), *engine.G.buffers(), *engine.D.parameters(), *engine.D.buffers()]
    for opt in (engine.opt_G, engine.opt_D):
        for state in opt.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
    return tensors


def warm_up(engine: GANStep, inputs: list, steps: int = WARMUP_STEPS) -> None:
    """Run `steps` train_batch calls on `inputs` (x, y_real, z, y_fake), then undo them: parameters, buffers and
    optimizer state hold what they held before (Adam state the warm-up created goes back to Adam's initial zeros),
    so the run goes on as if it had not happened. What the calls leave is what capture needs made beforehand: Adam's
    moments, cuDNN/cuBLAS handles, autograd's buffers. The noise stream is not touched (z, y_fake are given)."""
    fresh = [opt for opt in (engine.opt_G, engine.opt_D) if not opt.state]
    saved = [(t, t.detach().clone()) for t in _state_tensors(engine)]  # each is updated in place by a step
    with warnings.catch_warnings():
        # Adam warns that capturable=True outside a capture is slower: true of these steps alone
        warnings.filterwarnings("ignore", message=".*capturable=True.*")
        for _ in range(steps):
            engine.train_batch(*inputs)
    with torch.no_grad():
        for tensor, value in saved:
            tensor.copy_(value)
        for opt in fresh:
            for state in opt.state.values():
                for value in state.values():
                    if torch.is_tensor(value):
                        value.zero_()
