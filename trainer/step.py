"""One GAN training step and everything it touches: G, D, their optimizers, the EMA copy of G and the noise.

`train()` drives a `GANStep` through a run; `benchmarks/train_throughput.py` times the same object, so the
throughput it reports is the training loop's own. Per step (B = batch size):
  x [B, C, H, W] real in [-1, 1], z [B, nz] ~ N(0, 1), fake = G(z) [B, C, H, W]
  D step: loss_D = d_real(D(x)) + d_fake(D(fake.detach())), two backwards (separate BatchNorm batches);
          a relativistic loss (rasgan, rahinge: trainer/losses.py) reads both logit sets in each term, so there
          the two forwards (still separate BatchNorm batches) are followed by one backward of the sum;
          R1 and consistency regularisation (--r1, --consistency: trainer/regularisers.py) add their terms to
          the half they read, each D forward of shifted images its own BatchNorm batch
  G step: loss_G = g(D(fake)), with D's parameters frozen so no weight gradients are computed for D;
          a relativistic loss also reads D(x), the D step's real logits, detached (D before its update);
          conditional G adds the mode-seeking term (below). With top_k < 1, g averages over only the k fakes of
          highest D(fake) (trainer/losses.py: top-k training), k annealed from B by the step number.
  EMA:    G_ema <- lerp(G_ema, G, 1 - decay_t), decay_t = 0 before ema_start, then min(decay, (1 + t') / (10 + t'))
          with t' = t - ema_start
  lr:     both Adams take lr x lr_factor(lr_schedule, t, T) at step t of a run planned for T steps (D: lr_d x the
          same factor); "constant" never touches the optimizers' lr. With out_decay > 0, G's output layer
          weights also shrink by lr x out_decay a step (decoupled weight decay: output_param_groups).
Nothing here reads a value back to the host: the step returns its statistics as a device tensor.

Mode seeking (Mao et al. 2019, MSGAN), for a conditional G whose label is joined to z (the DCGAN default): the
batch's latents are paired, (i, i + B/2), under one label, and G also minimises lambda / (lz + 1e-5) with
lz = mean|G(z_i, y) - G(z_j, y)| / mean|z_i - z_j|. Why: without it that G learns to ignore z (every image of a
class the same image; the per-sample D cannot see it, and nothing in the losses shows it). The label is shared by
a whole class, so its weights get a coherent gradient while z's averages out; the label's share of the first
layer's variance grows and the BatchNorm after it, normalising by batch statistics, shrinks z's share. Measured
on MNIST (conditional DCGAN, width 32, 1,000 steps): z's share of that variance fell from 0.69 to 0.24 and the
within-class spread to 0.16 of real images'; with the term z's share stays 0.54-0.68 and the spread 0.94-0.99
(`python -m benchmarks.probes.conditional_collapse --arms dcgan-joined,dcgan-joined+ms,dcgan-cbn` measures it).
The MLP G takes its label through ConditionalBatchNorm instead (trainer/models/layers.py).

Under DDP (torchrun) G and D are wrapped: D's real half runs under no_sync and its fake half all-reduces both
halves' gradients (one all-reduce per step; with a relativistic loss the real forward runs under no_sync and the
one backward, prepared by the synchronising fake forward, reduces the sum); the G step runs through the bare D,
whose frozen parameters fire no DDP hooks, so only G's gradients are reduced. BatchNorm running statistics are rank 0's: DDP broadcasts module
buffers from rank 0 at the start of each synchronising forward (broadcast_buffers=True); the batch statistics
used for normalisation in training are each rank's own (no SyncBatchNorm).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import nn

from edgegan.trainer import distributed as dist_utils
from edgegan.trainer.config import LR_SCHEDULES, TrainConfig
from edgegan.trainer.losses import get_loss, top_k_fraction
from edgegan.trainer.models import build_discriminator, build_generator
from edgegan.trainer.recipes import apply_recipe, recipe_value
from edgegan.trainer.regularisers import consistency_penalty, max_shift, r1_penalty, translate

ADAM_IMPLS = ("fused", "foreach", "for-loop")
STAT_NAMES = ("loss_d", "loss_g", "d_x", "d_g_z")  # the row of statistics each step returns


def make_adam(params, cfg: TrainConfig, impl: str = "fused", lr: float | None = None) -> torch.optim.Adam:
    """Adam with the run's lr (or `lr`) and betas. `fused` (one kernel over all parameters, CPU and CUDA) falls
    back to `foreach` where fused is not available; `for-loop` is PyTorch's per-tensor default on CPU."""
    rate = recipe_value(cfg.lr, "lr") if lr is None else lr
    betas = (recipe_value(cfg.beta1, "beta1"), recipe_value(cfg.beta2, "beta2"))
    if impl == "fused":
        try:
            return torch.optim.Adam(params, lr=rate, betas=betas, fused=True)
        except (RuntimeError, TypeError):
            impl = "foreach"
    params = list(params)
    return torch.optim.Adam(params, lr=rate, betas=betas, foreach=impl == "foreach")


def output_layer(G: nn.Module) -> nn.Module:
    """G's last weighted layer, the one that writes the pixels (MLP: Linear to C*H*W; DCGAN: the last
    ConvTranspose2d, to C channels)."""
    return [m for m in G.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))][-1]


def output_param_groups(G: nn.Module, out_decay: float) -> list[Any]:
    """G's parameters for Adam: all of them, or with out_decay > 0 two param groups (dicts), the output layer's
    weight apart with decoupled weight decay (AdamW's w <- w - lr x out_decay x w each step; biases and every other
    layer untouched).

    Why (benchmarks/probes/mlp_output.py): the MLP G's weight rows of pixels that are background in every digit
    get a thirtieth of the gradient of stroke pixels, yet Adam's normalised steps move them by about lr a step all
    the same, so they wander (1.55x their initial norm at 3,000 steps) and a wandered row lights its pixel on
    some latents: salt dots and a grey haze. The decay holds the rows with no steady gradient near zero; a steady
    pull (a stroke pixel's row) balances it only at |w| = 1 / out_decay per element, far above such rows' weights."""
    if not out_decay:
        return list(G.parameters())
    weight = output_layer(G).weight
    rest = [p for p in G.parameters() if p is not weight]
    return [{"params": rest}, {"params": [weight], "weight_decay": out_decay, "decoupled_weight_decay": True}]


def _compile(model: nn.Module) -> nn.Module:
    """torch.compile of a module: an OptimizedModule (an nn.Module); torch's types say only a callable."""
    return cast(nn.Module, torch.compile(model))


def cpu_has_fast_bf16() -> bool:
    """AVX-512 BF16 or AMX: the CPU multiplies bf16 natively (oneDNN then runs bf16 convolutions fast)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_amp(amp: str, device: torch.device) -> str:
    """ "auto" -> "bf16" where the device multiplies bf16 natively, else "off"; other modes are returned as they are.

    CPU: AVX-512 BF16 or AMX (1.5-1.8x measured). CUDA: a GPU with bf16 Tensor Cores (compute capability 8+,
    `torch.cuda.is_bf16_supported`): bf16 autocast trained ~1.28x fp32 at batch 1024 on an H200 (docs/reference_figures.md);
    at batch 64 the step was launch-bound, which trainer/cuda_step.py's CUDA graph removes, so auto takes bf16
    there too; the gain at batch 64 is to be confirmed on the H200 (benchmarks/gpu_check.py).
    """
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if cuda_has_fast_bf16() else "off"
    return "bf16" if device.type == "cpu" and cpu_has_fast_bf16() else "off"


def cuda_has_fast_bf16() -> bool:
    """bf16 Tensor Cores: compute capability 8.0 or newer (torch.cuda.is_bf16_supported also accepts emulation)."""
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8


def autocast(amp: str, device: torch.device):
    """Mixed-precision context for G and D forwards: off, bf16 (CUDA, or CPUs with AVX-512 BF16/AMX), fp16 (CUDA)."""
    if amp == "off":
        return contextlib.nullcontext()
    if amp == "fp16" and device.type != "cuda":
        raise dist_utils.DeviceError(
            "--amp fp16 needs CUDA; on CPU use --amp bf16 (CPUs with AVX-512 BF16 or AMX run it fast)"
        )
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def lr_factor(schedule: str, step: int, total: int) -> float:
    """What the learning rate is multiplied by at 0-based `step` of a run planned for `total` steps.

    "constant": 1. "linear_half": 1 up to step total / 2, then linear to 0 at step `total`, where the run ends:
    min(1, 2 (total - step) / total), floored at 0. The last update (step total - 1) takes 2 / total of the rate,
    so none is spent at lr 0 (the convention of a linear decay "to 0 over T steps", as in Hugging Face's
    get_linear_schedule_with_warmup). A pure function of the step and the plan: a resume continues it exactly.
    """
    if schedule == "constant":
        return 1.0
    if schedule != "linear_half":
        raise ValueError(f"unknown lr_schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
    if total <= 0:
        raise ValueError(f"lr_schedule {schedule!r} needs the run's planned steps (> 0), got {total}")
    return max(0.0, min(1.0, 2.0 * (total - step) / total))


def noise_seed(seed: int, rank: int, step: int = 0) -> int:
    """Seed of a rank's latent stream; `step` > 0 restarts a stream that a checkpoint did not record."""
    return seed * 7919 + 17 + rank + 1_000_003 * step


class EMA:
    """Exponential moving average of G's parameters; buffers (BatchNorm statistics) are copied.

    Until step `start` the average is G itself (decay 0); from there the decay warms up as
    min(decay, (1 + t) / (10 + t)) with t counted from `start`, so a short run is not dominated by early weights.
    """

    def __init__(self, model: nn.Module, decay: float, start: int = 0):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.start = decay, start
        self._ema_params: list[torch.Tensor] = list(self.model.parameters())
        self._ema_buffers = list(self.model.buffers())

    def decay_at(self, step: int) -> float:
        """The weight the average keeps at 0-based global `step`."""
        t = step - self.start
        return 0.0 if t < 0 else min(self.decay, (1 + t) / (10 + t))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = self.decay_at(step)
        torch._foreach_lerp_(self._ema_params, [p.detach() for p in model.parameters()], 1.0 - decay)
        torch._foreach_copy_(self._ema_buffers, list(model.buffers()))

    @torch.no_grad()
    def standing_statistics(self, draw: Callable[[], tuple], batches: int) -> None:
        """Re-estimate the average's BatchNorm statistics on its own activations (BigGAN's "standing statistics").

        Why: update() copies G's running statistics, which describe the raw G's activations, not the averaged
        weights'; the shipped (eval-mode) EMA G then normalises with the wrong mean and variance. Measured on the
        MNIST MLP GAN (width 32, 2,000 steps, `edgegan eval` features, n 2,000): FID 432 -> 370, grey pixels 27%
        -> 18% (real: 8.5%); the DCGANs' FID moved by under 2 (benchmarks/results/recipes/mnist_noise.md).
        `draw()` -> (z [B, nz], labels [B] | None); the statistics are a plain average over `batches` batches.
        """
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # None: cumulative average over the batches below
        self.model.train()
        for _ in range(batches):
            self.model(*draw())
        self.model.eval()
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum


class GANStep:
    """G, D, both Adam optimizers, the EMA of G and this rank's noise stream; `step()` trains one batch.

    Args:
        cfg: the recipe, validated, with model.channels / num_classes already set from the data. Used:
            model, loss, lr, lr_d, betas, lr_schedule, ema, ema_decay, ema_start, top_k, seed, amp, channels_last,
            compile; unset recipe keys are filled by trainer/recipes.py's apply_recipe.
        device: where G, D and the batches live.
        ctx: the data-parallel context (None: one process). Under DDP G and D are wrapped.
        adam: "fused" (default), "foreach" or "for-loop"; an ablation knob for the benchmark.
        freeze_d: freeze D's parameters in the G step (default). False computes D weight gradients there and
            throws them away, as pytorch/examples' loop does; one process only (DDP's hooks would fire).
        total_steps: the run's planned steps, which an lr schedule other than "constant" reads (train() passes
            max_steps, else epochs x steps per epoch); None: cfg.max_steps. With neither, a schedule the user set is
            refused (ValueError) and one a recipe row filled runs as "constant".
    """

    def __init__(
        self,
        cfg: TrainConfig,
        device: torch.device,
        ctx: dist_utils.DistContext | None = None,
        *,
        adam: str = "fused",
        freeze_d: bool = True,
        total_steps: int | None = None,
    ):
        ctx = ctx or dist_utils.DistContext(device=device)
        cfg = apply_recipe(cfg)  # a config built in code (benchmarks, tests) gets the recipe train() applies
        if not freeze_d and ctx.enabled:
            raise ValueError("freeze_d=False is a single-process benchmark setting; DDP needs D frozen in the G step")
        self.cfg, self.device, self.rank = cfg, device, ctx.rank
        self.amp = resolve_amp(cfg.amp, device)
        self.freeze_d = freeze_d
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
            self.G = build_generator(cfg.model).to(device)
            d_norm, d_depth = recipe_value(cfg.d_norm, "d_norm"), recipe_value(cfg.d_depth, "d_depth")
            self.D = build_discriminator(cfg.model, d_norm, d_depth).to(device)
        self.channels_last = cfg.use_channels_last
        if self.channels_last:  # NHWC convolutions: faster on CPU (oneDNN) and on tensor cores
            self.G.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # documented, not in its stubs
            self.D.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # documented, not in its stubs
        self.opt_G = make_adam(output_param_groups(self.G, recipe_value(cfg.out_decay, "out_decay")), cfg, adam)
        self.opt_D = make_adam(self.D.parameters(), cfg, adam, lr=cfg.lr_d)
        # The lr schedule: begin_step sets each optimizer's lr to its base x lr_factor(t); "constant" leaves them.
        self.lr_schedule = recipe_value(cfg.lr_schedule, "lr_schedule")
        self.total_steps = total_steps if total_steps is not None else cfg.max_steps
        if self.lr_schedule != "constant" and self.total_steps is None:
            if "lr_schedule" not in (cfg.recipe or {}).get("filled", {}):
                raise ValueError(
                    f"lr_schedule {self.lr_schedule!r} reads the run's planned steps: give GANStep total_steps "
                    "(train() does) or set max_steps"
                )
            # A recipe row's schedule (Fashion-MNIST DCGAN) and a caller that steps without a plan (a throughput
            # benchmark, a test): there is no end to decay towards, so the row's other values run at a constant lr.
            self.lr_schedule = "constant"
        # each optimizer's rate as make_adam set it (D: lr_d, else lr): what lr_factor scales
        self._base_lr = tuple((opt, float(opt.param_groups[0]["lr"])) for opt in (self.opt_G, self.opt_D))
        self.ema = (
            EMA(self.G, recipe_value(cfg.ema_decay, "ema_decay"), recipe_value(cfg.ema_start, "ema_start"))
            if cfg.ema
            else None
        )
        self.noise = torch.Generator(device=device).manual_seed(noise_seed(cfg.seed, ctx.rank))
        self.fake_multiple = recipe_value(cfg.fake_multiple, "fake_multiple")  # fakes per step: this x the batch
        self.scaler_G, self.scaler_D = (torch.amp.GradScaler("cuda", enabled=self.amp == "fp16") for _ in range(2))
        self.G_train, self.D_train = dist_utils.wrap(self.G, ctx), dist_utils.wrap(self.D, ctx)
        self.D_gen = self.D  # the G step's D: bare (frozen parameters, no DDP hooks)
        self.r1 = recipe_value(cfg.r1, "r1")
        if cfg.compile:
            self.G_train, self.D_gen = _compile(self.G_train), _compile(self.D)
            # R1 differentiates D's gradient (a double backward), which torch.compile's AOTAutograd refuses: with R1
            # on, the D step's D stays eager (G and the G step's D are still compiled)
            if not self.r1:
                self.D_train = _compile(self.D_train)
        if not freeze_d:
            self.D_gen = self.D_train
        self.loss = get_loss(recipe_value(cfg.loss, "loss"))
        # Mode seeking (Mao et al. 2019): the default is on for a conditional G whose label is joined to z, off
        # otherwise (unconditional figures in benchmarks/results/ are without it); an explicit weight is used as
        # given, conditional or not (unconditional latent pairs need no shared label).
        ms_default = 1.0 if cfg.model.num_classes and cfg.model.conditioning == "concat" else 0.0
        self.mode_seeking = ms_default if cfg.mode_seeking is None else cfg.mode_seeking
        # Top-k: the kept fraction lives on the device (float64 []) and begin_step refills it each step, so the
        # captured CUDA graph of train_batch reads the step's value; None when off (top_k 1: G's loss as it was).
        self.top_k = recipe_value(cfg.top_k, "top_k")
        self.consistency = cfg.consistency
        # Consistency regularisation's per-image shifts [real / fake, B, (row, column)], drawn by begin_step from
        # the noise stream into this fixed buffer, as top-k's fraction is: a captured CUDA graph reads this step's.
        self._offsets = (
            torch.zeros(
                2, recipe_value(cfg.batch_size, "batch_size") * self.fake_multiple, 2, dtype=torch.long, device=device
            )
            if self.consistency
            else None
        )
        self._kept = torch.ones((), dtype=torch.float64, device=device) if self.top_k < 1.0 else None
        self._kept_set = False  # begin_step has run: train_batch refuses to train with an unset fraction
        self.G_train.train()
        self.D_train.train()

    def _translate(self, images: torch.Tensor, which: int) -> torch.Tensor:
        """images [B, C, H, W] each shifted by this step's offsets (trainer/regularisers.py); which: 0 real, 1 fake."""
        offsets = self._offsets  # [2, batch x fake_multiple, 2] with consistency on
        if offsets is None or images.shape[0] > offsets.shape[1]:
            drawn = 0 if offsets is None else offsets.shape[1]
            raise ValueError(f"consistency regularisation draws offsets for batches of up to {drawn} images")
        return translate(images, offsets[which, : images.shape[0]], max_shift(images.shape[-1]))

    def _consistency(
        self, images: torch.Tensor, y: torch.Tensor | None, logits: torch.Tensor, which: int
    ) -> torch.Tensor:
        """consistency x mean (D(x) - D(T(x)))^2 for images [B, C, H, W] (which: 0 real, 1 fake) whose logits [B]
        D gave. D(T(x)) is its own forward (its own BatchNorm batch)."""
        with autocast(self.amp, self.device):
            moved = self.D_train(self._translate(images, which), y).float()  # [B]
        return self.consistency * consistency_penalty(logits, moved)

    @property
    def sample_model(self) -> nn.Module:
        """The G that samples and export use: the EMA copy when there is one."""
        return self.ema.model if self.ema is not None else self.G

    def prepare_sample_model(self, step: int, batches: int = 16, batch: int = 256) -> None:
        """Before a grid, a diversity check or a checkpoint: the EMA G's BatchNorm statistics from its own
        activations (EMA.standing_statistics). Its latents come from a generator seeded by (seed, step), never
        from the training noise stream, so a resumed run stays exact."""
        if self.ema is None:
            return
        cfg = self.cfg.model
        gen = torch.Generator(device=self.device).manual_seed(noise_seed(self.cfg.seed, 0, step) + 7)

        def draw() -> tuple[torch.Tensor, torch.Tensor | None]:
            z = torch.randn(batch, cfg.nz, device=self.device, generator=gen)  # [B, nz]
            y = torch.randint(cfg.num_classes, (batch,), device=self.device, generator=gen) if cfg.num_classes else None
            return z, y

        self.ema.standing_statistics(draw, batches)

    @property
    def has_output_bias(self) -> bool:
        """G has a per-pixel output bias that init_output_bias sets (the MLP G)."""
        return hasattr(self.G, "init_output_bias")

    @torch.no_grad()
    def init_output_bias(self, mean_image: torch.Tensor) -> None:
        """Start G's last layer at the data's mean image, where the architecture has a per-pixel bias (the MLP G).

        Why: with a zero bias every pixel of the MLP G starts at tanh(0), mid-grey, and the background of MNIST is
        exactly -1: 784 independent outputs must each be pushed into tanh's tail, and the ones that lag show as grey
        speckle ("salt") for thousands of steps. From atanh(mean pixel) the background starts black. Measured (MNIST
        MLP GAN, width 32, 2,000 steps, n 2,000): FID 432 -> 316, grey pixels 27% -> 17%; with standing statistics
        279 (benchmarks/results/recipes/mnist_noise.md). Convolutional G's have no per-pixel bias: unchanged.
        mean_image: float [C, H, W] in [-1, 1].
        """
        if not self.has_output_bias:
            return
        for model in (self.G, self.sample_model):  # the EMA copy was made from the zero-bias G
            model.init_output_bias(mean_image.to(self.device))  # type: ignore[operator]  # the MLP G's own method

    def step(self, x: torch.Tensor, y_real: torch.Tensor | None, t: int) -> torch.Tensor:
        """Train D then G on one real batch; `t` is the 0-based global step (for the EMA warm-up).

        Args:
            x: real images float32 [B, C, H, W] in [-1, 1]. y_real: int64 [B] labels, or None (unconditional).
        Returns:
            float32 [4] on the device: loss_D, loss_G, mean D(x), mean D(G(z)) (GANLoss.scores: probabilities
            for bce, for rasgan those of the relative logits, the relative logits for rahinge, raw scores
            otherwise). Reading it is a host sync; train() reads a window's sum once per log interval.
        """
        self.begin_step(t)
        z, y_fake = self.draw_noise(x.shape[0] * self.fake_multiple)
        stats = self.train_batch(x, y_real, z, y_fake)
        if self.ema is not None:
            self.ema.update(self.G, t)
        return stats

    def begin_step(self, t: int) -> None:
        """What train_batch reads that depends on the 0-based global step `t`, written without a host sync:
        top-k's kept fraction (trainer/losses.py top_k_fraction) and, with an lr schedule, both optimizers' lr
        (a float, or filled into the device tensor a CUDA graph's Adam reads: trainer/cuda_step.py). A step that
        replays a captured train_batch must call this before each replay."""
        if self._kept is not None:
            self._kept.fill_(top_k_fraction(self.top_k, t))
            self._kept_set = True
        if self._offsets is not None:
            self._offsets.random_(0, 2 * max_shift(self.cfg.model.image_size) + 1, generator=self.noise)
        if self.lr_schedule != "constant":
            factor = lr_factor(self.lr_schedule, t, cast(int, self.total_steps))
            for opt, base in self._base_lr:
                for group in opt.param_groups:
                    if isinstance(group["lr"], torch.Tensor):
                        group["lr"].fill_(base * factor)
                    else:
                        group["lr"] = base * factor

    def draw_noise(self, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This step's latents z [B, nz] and fake labels [B] (None: unconditional) from the rank's noise stream.
        With mode seeking, y[i] == y[i + B // 2] for i < B // 2 (the latent pairs share a label)."""
        cfg = self.cfg.model
        z = torch.randn(batch, cfg.nz, device=self.device, generator=self.noise)  # [B, nz]
        pairs = batch // 2 if self.mode_seeking else 0  # latent pairs (i, i + pairs) under one label
        y_fake = None
        if cfg.num_classes:
            y_fake = torch.randint(cfg.num_classes, (batch - pairs,), device=self.device, generator=self.noise)
            y_fake = torch.cat([y_fake[:pairs], y_fake])  # [B]; y[i] == y[i + pairs] for i < pairs
        return z, y_fake

    def train_batch(
        self, x: torch.Tensor, y_real: torch.Tensor | None, z: torch.Tensor, y_fake: torch.Tensor | None
    ) -> torch.Tensor:
        """The D step then the G step on one batch with the given noise (no host sync, no EMA): the part
        trainer/cuda_step.py captures in a CUDA graph. Returns the [4] statistics of `step`."""
        pairs = z.shape[0] // 2 if self.mode_seeking else 0  # draw_noise's latent pairs: over the fakes, not x

        # D step. The real half skips DDP's all-reduce; the fake half's backward reduces both halves' gradients.
        if self.freeze_d:
            self.D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)  # also drops what an unfrozen G step left in D
        with autocast(self.amp, self.device):
            fake = self.G_train(z, y_fake)  # [B, C, H, W]; its graph is reused by the G step
        # A relativistic loss's terms each read both halves' logits: its two forwards (still separate BatchNorm
        # batches) are followed by one backward of the sum. Under DDP its real forward still runs under no_sync: DDP
        # decides at forward time whether the next backward reduces, and a second synchronising forward before that
        # backward is an error; the fake forward prepares the reduction, and the one backward fires each parameter's
        # hook once, with both halves' gradient summed, so it all-reduces what the two-backward path reduces.
        # D's regularisers (trainer/regularisers.py; none by default), added to the loss of the half they read
        real_terms: list[torch.Tensor] = []
        fake_terms: list[torch.Tensor] = []
        with dist_utils.no_sync(self.D_train):
            if self.r1:
                x = x.detach().requires_grad_(True)  # R1 differentiates D at the real images
            with autocast(self.amp, self.device):
                d_real = self.D_train(x, y_real).float()  # [B] logits
            if self.r1:
                real_terms.append(self.r1 * r1_penalty(d_real, x))
            if self.consistency:
                real_terms.append(self._consistency(x, y_real, d_real, 0))
                # D of the shifted fakes, before the synchronising fake forward: its backward is the fake half's
                with autocast(self.amp, self.device):
                    d_fake_moved = self.D_train(self._translate(fake.detach(), 1), y_fake).float()  # [B]
            if not self.loss.relativistic:
                loss_real = self.loss.d_real(d_real)
                self.scaler_D.scale(sum(real_terms, loss_real)).backward()
        with autocast(self.amp, self.device):
            d_fake = self.D_train(fake.detach(), y_fake).float()
        if self.consistency:
            fake_terms.append(self.consistency * consistency_penalty(d_fake, d_fake_moved))
        if self.loss.relativistic:
            loss_real, loss_fake = self.loss.d(d_real, d_fake)
            self.scaler_D.scale(sum(real_terms + fake_terms, loss_real + loss_fake)).backward()
        else:
            loss_fake = self.loss.d_fake(d_fake)
            self.scaler_D.scale(sum(fake_terms, loss_fake)).backward()
        self.scaler_D.step(self.opt_D)
        self.scaler_D.update()

        # G step: make the updated D call the same fakes real.
        if self.freeze_d:
            self.D.requires_grad_(False)
        with autocast(self.amp, self.device):
            d_gen = self.D_gen(fake, y_fake).float()
        # A relativistic G loss also reads C(x_r): the D step's real logits, detached, i.e. those of D *before* this
        # step's update (Algorithm 2 of the paper evaluates the updated D on reals; that is a third D forward and
        # a third BatchNorm batch per step, for logits one Adam step apart). None for the plain losses.
        real_logits = d_real.detach() if self.loss.relativistic else None
        # The adversarial part (over the top k fakes with top-k): what the logs and the loss curve show.
        if self._kept is None:
            loss_g = self.loss.g(d_gen, real_logits)
        elif not self._kept_set:
            raise RuntimeError(
                "top_k < 1 reads its kept fraction from GANStep.begin_step(t), which no step has called: "
                "a step that runs train_batch itself (a CUDA graph's) must call it before each batch"
            )
        else:
            loss_g = self.loss.g_top_k(d_gen, self._kept, real_logits)
        total_g = loss_g
        if pairs:
            a, b = fake[:pairs].float(), fake[pairs : 2 * pairs].float()  # [P, C, H, W] each
            lz = (a - b).abs().mean() / (z[:pairs] - z[pairs : 2 * pairs]).abs().mean()
            total_g = loss_g + self.mode_seeking / (lz + 1e-5)
        self.scaler_G.scale(total_g).backward()
        self.scaler_G.step(self.opt_G)
        self.scaler_G.update()
        self.opt_G.zero_grad(set_to_none=True)

        with torch.no_grad():
            return torch.stack([loss_real + loss_fake, loss_g, *self.loss.scores(d_real, d_fake)])

    def state_dict(self) -> dict:
        """Checkpoint entries G, D, G_ema (None without EMA), opt_G, opt_D (rng is the caller's: see rng_state)."""
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.ema.model.state_dict() if self.ema is not None else None,
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
        }

    def rng_state(self) -> dict:
        """This rank's noise stream (and fp16 loss-scaler state): what an exact resume needs besides weights."""
        state: dict[str, Any] = {"noise": self.noise.get_state()}
        if self.amp == "fp16":
            state.update(scaler_G=self.scaler_G.state_dict(), scaler_D=self.scaler_D.state_dict())
        return state

    def load_state_dict(self, ckpt: dict) -> None:
        """Restore weights, optimizer moments and, when the checkpoint recorded this rank, its noise stream."""
        self.G.load_state_dict(ckpt["G"])
        self.D.load_state_dict(ckpt["D"])
        self.opt_G.load_state_dict(ckpt["opt_G"])
        self.opt_D.load_state_dict(ckpt["opt_D"])
        if self.ema is not None:
            self.ema.model.load_state_dict(ckpt["G_ema"] if ckpt.get("G_ema") is not None else ckpt["G"])
        rng = ckpt.get("rng", {})
        key = f"noise_rank{self.rank}"
        if key in rng:
            self.noise.set_state(rng[key])
        else:  # a checkpoint from another world size: a fresh, step-derived stream
            self.noise.manual_seed(noise_seed(self.cfg.seed, self.rank, int(ckpt["step"])))
        for scaler, name in ((self.scaler_G, "scaler_G"), (self.scaler_D, "scaler_D")):
            if rng.get(name):
                scaler.load_state_dict(rng[name])


class StepStats:
    """On-device sums of step statistics over one logging window, and the first step whose losses were not finite.

    `add` never syncs with the host; `first_bad_step` and `mean` do (once per window in train()).
    """

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(len(STAT_NAMES), device=device)  # [4]
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self._step = torch.zeros((), dtype=torch.long, device=device)
        self.count = 0

    @torch.no_grad()
    def add(self, stats: torch.Tensor, step: int) -> None:
        """Accumulate one step's [4] statistics; `step` is 1-based (the step the message will name)."""
        self.sums += stats
        self._step.fill_(step)
        bad = ~torch.isfinite(stats[:2]).all()
        self.first_bad.copy_(torch.where(bad & (self.first_bad < 0), self._step, self.first_bad))
        self.count += 1

    def mean(self) -> dict[str, float]:
        """Window means by name, then an empty window (one host sync)."""
        values = (self.sums / max(self.count, 1)).tolist()
        self.sums.zero_()
        self.count = 0
        return dict(zip(STAT_NAMES, values))
