"""The GAN training loop: D on real and generated batches, then G to make D call its output real.

Per step (B = batch size):
  x [B, C, H, W] real in [-1, 1], z [B, nz] ~ N(0, 1), fake = G(z) [B, C, H, W]
  D step: loss_D = d_real(D(x)) + d_fake(D(fake.detach()))
  G step: loss_G = g(D(fake)), with D's parameters frozen so no weight gradients are computed for D
  EMA:    G_ema <- lerp(G_ema, G, 1 - decay_t), decay_t = min(decay, (1 + t) / (10 + t))
Host syncs happen only every `log_every` steps (progress, metrics, NaN check), never per step.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from runtime.contract import default_labels, draw_latents
from runtime.errors import EdgeganError
from runtime.images import save_grid, to_uint8_nhwc
from trainer import distributed as dist_utils
from trainer.checkpoint import load_checkpoint, save_checkpoint
from trainer.config import TrainConfig
from trainer.data import BatchSource
from trainer.losses import get_loss
from trainer.models import build_discriminator, build_generator

SAMPLE_GRID_SIZE = 64


class TrainingDiverged(EdgeganError):
    """A loss became NaN or Inf; the last good checkpoint is left untouched."""


class RunExists(EdgeganError):
    """--out already holds a run and --resume was not given."""


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    epoch: int
    checkpoint: Path
    images_per_second: float
    last_metrics: dict


def _make_optimizer(params, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    # fused Adam: one kernel for all parameters (CPU and CUDA in torch >= 2.4); foreach as the fallback.
    try:
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), foreach=True)


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.amp == "off":
        return contextlib.nullcontext()
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ValueError("--amp fp16 needs CUDA; on CPU use --amp bf16 (CPUs with AVX-512 BF16 or AMX run it fast)")
    dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class EMA:
    """Exponential moving average of G's parameters; buffers (BatchNorm statistics) are copied."""

    def __init__(self, model: nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))  # short runs are not dominated by the initial weights
        ema_p = list(self.model.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in model.parameters()], 1.0 - decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _prepare_out_dir(out: Path, resume: bool) -> Path | None:
    """-> the checkpoint to resume from, or None for a fresh run. Refuses to clobber an existing run."""
    last = out / "checkpoints" / "last.pt"
    if resume:
        if not last.is_file():
            raise EdgeganError(f"--resume: {out} holds no checkpoints/last.pt to continue from")
        return last
    if last.exists():
        raise RunExists(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise EdgeganError(f"cannot write to --out {out}: {exc.strerror or exc}") from exc
    return None


def _load_data(cfg: TrainConfig, progress: bool):
    from runtime.datasets import load_images

    return load_images(
        cfg.dataset, "train", data_dir=cfg.data_dir, image_size=cfg.model.image_size, channels=cfg.channels,
        progress=progress,
    )


def train(cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train (or continue) a run in `out_dir`. See the module docstring for the step.

    Args:
        cfg: the recipe. On resume the checkpoint's recipe wins; only epochs / max_steps / device / logging
            settings are taken from `cfg`.
        out_dir: the run folder (config.json, checkpoints/, samples/, metrics.jsonl, train.log).
        resume: continue from out_dir/checkpoints/last.pt.
        progress: show a tqdm bar (rank 0 only).
    """
    out = Path(out_dir)
    ctx = dist_utils.init_distributed(cfg.device)
    try:
        return _train(cfg, out, resume, progress, ctx)
    finally:
        dist_utils.shutdown(ctx)


def _train(cfg: TrainConfig, out: Path, resume: bool, progress: bool, ctx: dist_utils.DistContext) -> TrainResult:
    resume_from = _prepare_out_dir(out, resume) if ctx.is_main else (out / "checkpoints" / "last.pt" if resume else None)
    ckpt = None
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from, map_location="cpu")
        saved = TrainConfig.from_dict(ckpt["config"])
        # The recipe is the checkpoint's; how long and where to run is the caller's.
        for key in ("epochs", "max_steps", "device", "log_every", "checkpoint_every", "data_dir", "compile"):
            setattr(saved, key, getattr(cfg, key))
        cfg = saved
    cfg.validate()
    device = ctx.device

    data = _load_data(cfg, progress and ctx.is_main)
    cfg.model.channels = int(data.images.shape[-1])
    if cfg.conditional:
        if data.labels is None:
            raise EdgeganError(f"--conditional needs labels, but dataset {cfg.dataset!r} ({data.source}) has none")
        cfg.model.num_classes = max(len(data.class_names), int(data.labels.max()) + 1)
        cfg.class_names = list(data.class_names) or [str(i) for i in range(cfg.model.num_classes)]
    else:
        cfg.model.num_classes, cfg.class_names = 0, []
    cfg.model.validate()
    source = BatchSource(
        data, cfg.batch_size, cfg.seed, device, ctx.rank, ctx.world_size, cfg.channels_last and cfg.model.arch == "dcgan"
    )
    steps_per_epoch = source.steps_per_epoch
    total_steps = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch

    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    G, D = build_generator(cfg.model).to(device), build_discriminator(cfg.model).to(device)
    if cfg.channels_last and cfg.model.arch == "dcgan":
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_G, opt_D = _make_optimizer(G.parameters(), cfg, device), _make_optimizer(D.parameters(), cfg, device)
    ema = EMA(G, cfg.ema_decay) if cfg.ema else None
    noise = torch.Generator(device=device).manual_seed(cfg.seed * 7919 + 17 + ctx.rank)
    scalers = [torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16") for _ in range(2)]
    step = 0
    if ckpt is not None:
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        opt_G.load_state_dict(ckpt["opt_G"])
        opt_D.load_state_dict(ckpt["opt_D"])
        if ema is not None and ckpt.get("G_ema") is not None:
            ema.model.load_state_dict(ckpt["G_ema"])
        rng = ckpt.get("rng", {})
        # Other ranks' noise streams are not saved (only rank 0 writes): they restart from a step-derived seed.
        if f"noise_rank{ctx.rank}" in rng:
            noise.set_state(rng[f"noise_rank{ctx.rank}"])
        else:
            noise.manual_seed(cfg.seed * 7919 + 17 + ctx.rank + 1_000_003 * int(ckpt["step"]))
        for scaler, key in zip(scalers, ("scaler_G", "scaler_D")):
            if key in rng and rng[key]:
                scaler.load_state_dict(rng[key])
        step = int(ckpt["step"])
    if step >= total_steps:
        raise EdgeganError(
            f"the run is already at step {step}; ask for more with --max-steps N (N > {step}) or more --epochs"
        )

    G_train, D_train = dist_utils.wrap(G, ctx), dist_utils.wrap(D, ctx)
    if cfg.compile:
        G_train, D_train = torch.compile(G_train), torch.compile(D_train)
    loss = get_loss(cfg.loss)
    nz, num_classes, batch = cfg.model.nz, cfg.model.num_classes, cfg.batch_size
    autocast = lambda: _autocast(cfg, device)  # noqa: E731

    if ctx.is_main:
        _atomic_write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2))
    metrics_file = open(out / "metrics.jsonl", "a") if ctx.is_main else None
    log_file = open(out / "train.log", "a") if ctx.is_main else None
    bar = None
    if ctx.is_main and progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True, desc=f"train {out.name}")

    def log(message: str) -> None:
        if log_file is not None:
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
            log_file.flush()

    log(f"{'resume' if ckpt else 'start'} at step {step}/{total_steps} on {device} x{ctx.world_size}, "
        f"{len(data.images)} images from {data.source}, {steps_per_epoch} steps/epoch")

    # On-device accumulators over one logging window: [loss_D, loss_G, D(x), D(G(z))] and the first bad step.
    window = torch.zeros(4, device=device)
    first_bad = torch.full((), -1, dtype=torch.long, device=device)
    step_tensor = torch.zeros((), dtype=torch.long, device=device)
    to_prob = torch.sigmoid if cfg.loss == "bce" else (lambda t: t)
    window_steps, window_start = 0, time.perf_counter()
    run_start, run_start_step = window_start, step
    last_metrics: dict = {}
    last_ckpt = out / "checkpoints" / "last.pt"

    def checkpoint(epoch: int, epoch_end: bool) -> None:
        _check_finite(first_bad, ctx)
        if not ctx.is_main:
            return
        sample_model = ema.model if ema is not None else G
        _save_samples(sample_model, cfg, out / "samples" / (f"epoch_{epoch:04d}.png" if epoch_end else f"step_{step:07d}.png"), device)
        rng = {f"noise_rank{ctx.rank}": noise.get_state()}
        if cfg.amp == "fp16":
            rng.update(scaler_G=scalers[0].state_dict(), scaler_D=scalers[1].state_dict())
        state = {
            "config": cfg.to_dict(), "class_names": cfg.class_names,
            "G": G.state_dict(), "D": D.state_dict(), "G_ema": ema.model.state_dict() if ema is not None else None,
            "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
            "step": step, "epoch": epoch, "rng": rng,
        }
        save_checkpoint(state, last_ckpt)
        if epoch_end:
            save_checkpoint(state, out / "checkpoints" / f"epoch_{epoch:04d}.pt")
        log(f"checkpoint at step {step} (epoch {epoch})")

    G_train.train()
    D_train.train()
    try:
        while step < total_steps:
            epoch, index = divmod(step, steps_per_epoch)
            x, y_real = source.batch(epoch, index)
            z = torch.randn(batch, nz, device=device, generator=noise)
            y_fake = torch.randint(num_classes, (batch,), device=device, generator=noise) if num_classes else None

            # D step: real half without the all-reduce, fake half reduces both (one all-reduce per step).
            D.requires_grad_(True)
            with autocast():
                fake = G_train(z, y_fake)
            with dist_utils.no_sync(D_train):
                with autocast():
                    d_real = D_train(x, y_real)
                    loss_real = loss.d_real(d_real.float())
                scalers[1].scale(loss_real).backward()
            with autocast():
                d_fake = D_train(fake.detach(), y_fake)
                loss_fake = loss.d_fake(d_fake.float())
            scalers[1].scale(loss_fake).backward()
            scalers[1].step(opt_D)
            scalers[1].update()
            opt_D.zero_grad(set_to_none=True)

            # G step through the bare D: frozen, so no D weight gradients and no DDP reduction for D.
            D.requires_grad_(False)
            with autocast():
                d_gen = D(fake, y_fake)
                loss_g = loss.g(d_gen.float())
            scalers[0].scale(loss_g).backward()
            scalers[0].step(opt_G)
            scalers[0].update()
            opt_G.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(G, step)

            with torch.no_grad():
                loss_d = loss_real + loss_fake
                stats = torch.stack([loss_d, loss_g, to_prob(d_real.float()).mean(), to_prob(d_fake.float()).mean()])
                window += stats
                step_tensor.fill_(step + 1)
                bad = ~torch.isfinite(stats[:2]).all()
                first_bad.copy_(torch.where(bad & (first_bad < 0), step_tensor, first_bad))
            step += 1
            window_steps += 1

            epoch_end = step % steps_per_epoch == 0
            if step % cfg.log_every == 0 or step == total_steps or epoch_end:
                _check_finite(first_bad, ctx)
                now = time.perf_counter()
                values = (window / window_steps).tolist()  # the one host sync of the window
                ips = window_steps * batch * ctx.world_size / max(now - window_start, 1e-9)
                last_metrics = {
                    "step": step, "epoch": step / steps_per_epoch, "loss_d": values[0], "loss_g": values[1],
                    "d_x": values[2], "d_g_z": values[3], "images_per_s": ips, "time": time.time(),
                }
                if metrics_file is not None:
                    metrics_file.write(json.dumps(last_metrics) + "\n")
                    metrics_file.flush()
                if bar is not None:
                    bar.set_postfix(
                        img_s=f"{ips:.0f}", loss_d=f"{values[0]:.3f}", loss_g=f"{values[1]:.3f}",
                        D_x=f"{values[2]:.2f}", D_G_z=f"{values[3]:.2f}", refresh=False,
                    )
                    bar.update(step - bar.n)
                window.zero_()
                window_steps, window_start = 0, now
            if epoch_end or step == total_steps or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
                checkpoint(step // steps_per_epoch if epoch_end else epoch, epoch_end)
    finally:
        if bar is not None:
            bar.close()
        for f in (metrics_file, log_file):
            if f is not None:
                f.close()

    elapsed = time.perf_counter() - run_start
    ips = (step - run_start_step) * batch * ctx.world_size / max(elapsed, 1e-9)
    if ctx.is_main:
        _plot_losses(out)
    return TrainResult(out, step, step // steps_per_epoch, last_ckpt, ips, last_metrics)


def _check_finite(first_bad: torch.Tensor, ctx: dist_utils.DistContext) -> None:
    if dist_utils.any_flag((first_bad >= 0).to(torch.long), ctx):
        bad_step = int(first_bad.item())
        where = f"at step {bad_step}" if bad_step >= 0 else "on another rank"
        raise TrainingDiverged(
            f"training diverged: a loss became NaN/Inf {where}; the last good checkpoint was left untouched. "
            "Try a lower --lr, another --loss, or --amp off."
        )


@torch.no_grad()
def _save_samples(model: nn.Module, cfg: TrainConfig, path: Path, device: torch.device) -> None:
    """The fixed-seed grid: contract latents draw_latents(64, nz, sample_seed) [64, nz], default labels."""
    z = torch.from_numpy(draw_latents(SAMPLE_GRID_SIZE, cfg.model.nz, cfg.sample_seed)).to(device)
    y = torch.from_numpy(default_labels(SAMPLE_GRID_SIZE, cfg.model.num_classes)).to(device) if cfg.model.num_classes else None
    was_training = model.training
    model.eval()
    images = model(z, y).float().cpu().numpy()  # [64, C, H, W]
    model.train(was_training)
    save_grid(to_uint8_nhwc(images), path, nrow=8)


def _plot_losses(out: Path) -> None:
    """loss_curve.png from metrics.jsonl (matplotlib is in the train extra; skipped if it is absent)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if all(math.isfinite(r[k]) for k in ("loss_d", "loss_g"))]
    if not rows:
        return
    fig, (ax_loss, ax_d) = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = [r["step"] for r in rows]
    ax_loss.plot(steps, [r["loss_d"] for r in rows], label="loss D")
    ax_loss.plot(steps, [r["loss_g"] for r in rows], label="loss G")
    ax_d.plot(steps, [r["d_x"] for r in rows], label="D(x)")
    ax_d.plot(steps, [r["d_g_z"] for r in rows], label="D(G(z))")
    for ax in (ax_loss, ax_d):
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = out / f".loss_curve.tmp{os.getpid()}.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out / "loss_curve.png")
