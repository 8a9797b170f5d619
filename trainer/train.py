"""The training run: data, checkpoints, samples, metrics and the progress display around `edgegan.trainer.step.GANStep`.

The per-step work (D on real and generated batches, then G, then the EMA) lives in trainer/step.py, so the
benchmark times exactly what a run does. Here: resume, logging every `log_every` steps (the only host syncs:
progress, metrics, NaN check), a sample grid and checkpoint each epoch, and data-parallel bookkeeping
(rank 0 alone writes; every rank's noise stream is gathered into the checkpoint so DDP resumes exactly too).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.files import atomic_write
from edgegan.runtime.images import save_grid, to_uint8_nhwc
from edgegan.runtime.progress import Progress
from edgegan.trainer import distributed as dist_utils
from edgegan.trainer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, state_dict_problem
from edgegan.trainer.config import TrainConfig
from edgegan.trainer.cuda_step import choose_step, make_step
from edgegan.trainer.data import BatchSource
from edgegan.trainer.divergence import TrainingDiverged, check_finite, check_weights, first_nonfinite
from edgegan.trainer.diversity import DiversityMonitor
from edgegan.trainer.recipes import apply_recipe, recipe_value
from edgegan.trainer.run_folder import RunBusy, RunExists, hold_run, open_out_dir, writing
from edgegan.trainer.sample import generate_images
from edgegan.trainer.step import GANStep, StepStats, resolve_amp

__all__ = ["RunBusy", "RunExists", "SAMPLE_GRID_SIZE", "TrainResult", "TrainingDiverged", "train"]

SAMPLE_GRID_SIZE = 64


@dataclass
class TrainResult:
    """What a run reached. `config` is the recipe that ran (the checkpoint's on resume, fitted to the data, amp
    resolved): what config.json holds; the caller's TrainConfig is left as it was. `is_main`: this process is
    rank 0 (always, without torchrun), the one that writes and reports."""

    out_dir: Path
    step: int
    epoch: int
    checkpoint: Path
    images_per_second: float
    last_metrics: dict
    config: TrainConfig
    is_main: bool = True


def _load_data(cfg: TrainConfig, progress: bool):
    from edgegan.runtime.evaluation.datasets import load_images

    return load_images(
        cfg.dataset,
        "train",
        data_dir=cfg.data_dir,
        image_size=cfg.model.image_size,
        channels=cfg.channels,
        progress=progress,
    )


def train(cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train (or continue) a run in `out_dir`. See the module docstring for the step.

    Args:
        cfg: the recipe; not modified (the effective one comes back as TrainResult.config). On resume the
            checkpoint's recipe wins; only epochs / max_steps / device / logging settings are taken from `cfg`.
        out_dir: the run folder (config.json, checkpoints/, samples/, metrics.jsonl, train.log).
        resume: continue from out_dir/checkpoints/last.pt.
        progress: show progress on stderr (rank 0 only): a tqdm bar on a terminal, otherwise a plain line every
            $EDGEGAN_PROGRESS_SECONDS (default 10) and one at the end (edgegan.runtime.progress).
    """
    from edgegan.runtime.evaluation.datasets import check_data_dir

    if not str(out_dir).strip():
        raise EdgeganError("--out is empty; name the run folder (e.g. --out runs/NAME)")
    check_data_dir(cfg.data_dir)  # before any folder is made: an explicit --data-dir must exist
    out = Path(out_dir)
    ctx = dist_utils.init_distributed(cfg.device, cfg.amp)
    try:
        # Rank 0, the one writer, holds the run folder's lock until every rank is done (run_folder.hold_run).
        with hold_run(out, resume) if ctx.is_main else contextlib.nullcontext() as resume_from:
            result = _train(cfg, out, resume, resume_from, progress, ctx)
            # Leave together: a rank that tears down gloo while rank 0 still writes or talks aborts the job.
            dist_utils.barrier(ctx)
        return result
    finally:
        dist_utils.shutdown(ctx)


def _restore_recipe(cfg: TrainConfig, ckpt: dict) -> TrainConfig:
    """On resume the recipe is the checkpoint's; how long, where and how verbosely to run is the caller's."""
    saved = TrainConfig.from_dict(ckpt["config"])
    for key in ("epochs", "max_steps", "device", "log_every", "checkpoint_every", "data_dir", "compile"):
        setattr(saved, key, getattr(cfg, key))
    return saved


def _fit_to_data(cfg: TrainConfig, data) -> TrainConfig:
    """-> a copy of `cfg` whose channels, classes and class names come from the data."""
    num_classes, class_names = 0, []
    if cfg.conditional:
        if data.labels is None:
            raise EdgeganError(f"--conditional needs labels, but dataset {cfg.dataset!r} ({data.source}) has none")
        num_classes = max(len(data.class_names), int(data.labels.max()) + 1)
        class_names = list(data.class_names) or [str(i) for i in range(num_classes)]
    model = replace(cfg.model, channels=int(data.images.shape[-1]), num_classes=num_classes)
    model.validate()
    return replace(cfg, model=model, class_names=class_names)


def _train(
    cfg: TrainConfig, out: Path, resume: bool, resume_from: Path | None, progress: bool, ctx: dist_utils.DistContext
) -> TrainResult:
    # Everything that can refuse the run (options, device, checkpoint, data, model) runs before the first write,
    # so a failed start leaves nothing on disk. resume_from: rank 0's checkpoint to continue (hold_run found it).
    ckpt = None
    if ctx.is_main:
        ckpt = load_checkpoint(resume_from, map_location="cpu") if resume_from is not None else None
    if resume and ctx.enabled:  # rank 0 alone reads: other nodes need no shared file system
        ckpt = dist_utils.broadcast_object(ckpt, ctx)
    if ckpt is not None:
        cfg = _restore_recipe(cfg, ckpt)
    cfg.validate()
    cfg = apply_recipe(cfg)  # unset lr / EMA / loss from the recipe table; config.json records which
    device = ctx.device
    # Every change below makes a new config (dataclasses.replace): the caller's TrainConfig is never modified.
    cfg = replace(cfg, amp=resolve_amp(cfg.amp, device))  # config.json and checkpoints record what ran
    dist_utils.check_amp(cfg.amp, device)  # a resumed recipe's amp too
    data = _load_data(cfg, progress and ctx.is_main)
    cfg = _fit_to_data(cfg, data)
    source = BatchSource(
        data,
        recipe_value(cfg.batch_size, "batch_size"),
        cfg.seed,
        device,
        ctx.rank,
        ctx.world_size,
        cfg.use_channels_last,
    )
    steps_per_epoch = source.steps_per_epoch
    total_steps = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch

    # GANStep, or on CUDA its one-graph form (trainer/cuda_step.py); an lr schedule reads the planned total
    engine = make_step(cfg, device, ctx, total_steps=total_steps)
    step = 0
    if ckpt is None and engine.has_output_bias:  # a fresh MLP G starts at the data's mean image
        mean = data.images.mean(axis=0, dtype=np.float32) / 127.5 - 1  # [H, W, C] in [-1, 1]
        engine.init_output_bias(torch.from_numpy(mean).permute(2, 0, 1))
    if ckpt is not None:
        try:
            engine.load_state_dict(ckpt)
        except (RuntimeError, KeyError, ValueError) as exc:  # a config that lies about nz / size / width
            raise CheckpointError(
                f"{resume_from or 'the checkpoint'} cannot be resumed: its weights do not fit "
                f"the model its config describes: {state_dict_problem(exc)}"
            ) from exc
        step = int(ckpt["step"])
        bad = first_nonfinite(engine)
        if bad is not None:  # written before the guard checked weights: refuse rather than train on it
            raise CheckpointError(
                f"{resume_from or 'the checkpoint'} holds NaN/Inf weights ({bad}) at step {step} and cannot be "
                "resumed; copy an earlier checkpoints/epoch_*.pt over last.pt, or start a new run"
            )
    if step >= total_steps:
        raise EdgeganError(
            f"the run is already at step {step}; ask for more with --max-steps N (N > {step}) or more --epochs"
        )

    leftovers: list[Path] = []
    if ctx.is_main:
        leftovers = open_out_dir(out, step)
        with writing(out / "config.json", "the run config"):
            atomic_write(out / "config.json", lambda f: f.write(json.dumps(cfg.to_dict(), indent=2)), binary=False)
    metrics_file = open(out / "metrics.jsonl", "a") if ctx.is_main else None
    log_file = open(out / "train.log", "a") if ctx.is_main else None
    bar = Progress(
        total_steps, unit="step", desc=f"train {out.name}", initial=step, quiet=not (ctx.is_main and progress)
    )

    def log(message: str) -> None:
        if log_file is not None:
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
            log_file.flush()

    log(
        f"{'resume' if ckpt else 'start'} at step {step}/{total_steps} on {device} x{ctx.world_size}, "
        f"{len(data.images)} images from {data.source}, {steps_per_epoch} steps/epoch"
    )
    if cfg.recipe is not None:
        filled = ", ".join(f"{k} {v}" for k, v in cfg.recipe["filled"].items())
        log(f"recipe {cfg.recipe['name']!r} (trainer/recipes.py) for the options left unset: {filled}")
    log("step: {} ({})".format(*choose_step(cfg, device, ctx.world_size)))
    if cfg.lr_schedule == "linear_half":
        log(
            f"lr schedule linear_half over the {total_steps} planned steps: the set lr to step {total_steps / 2:g}, "
            f"then linear to 0 at step {total_steps} (a resume with other --max-steps / --epochs re-plans it)"
        )
    if leftovers:
        log(
            f"removed {len(leftovers)} leftover temp file(s) of an interrupted run: {', '.join(p.name for p in leftovers)}"
        )

    diversity = DiversityMonitor(cfg, data, device, log, bar, enabled=ctx.is_main)  # samples vs real: collapse
    stats = StepStats(device)
    window_start = run_start = time.perf_counter()
    window_from, run_start_step = step, step
    last_metrics: dict = {}
    last_ckpt = out / "checkpoints" / "last.pt"
    saved = {"step": step if ckpt is not None else None}  # the last finite checkpoint, for the guard's message

    def checkpoint(epoch: int, epoch_end: bool) -> None:
        check_finite(stats.first_bad, ctx, saved["step"])
        check_weights(engine, step, saved["step"], ctx)  # before the grid and any save: no NaN file is written
        engine.prepare_sample_model(step)  # the EMA G's BatchNorm statistics, for the grid, diversity and the file
        noise_states = dist_utils.gather_objects(engine.rng_state(), ctx)  # a collective: every rank takes part
        if not ctx.is_main:
            return
        name = f"epoch_{epoch:04d}.png" if epoch_end else f"step_{step:07d}.png"
        _save_samples(engine.sample_model, cfg, out / "samples" / name, device)
        diversity.measure(engine.sample_model, step)  # train.log, warns on collapse (once per step)
        rng = {f"noise_rank{r}": s["noise"] for r, s in enumerate(noise_states)}
        rng.update({k: v for k, v in noise_states[0].items() if k != "noise"})  # fp16 loss scalers
        state = {
            "config": cfg.to_dict(),
            "class_names": cfg.class_names,
            **engine.state_dict(),
            "step": step,
            "epoch": epoch,
            "rng": rng,
        }
        save_checkpoint(state, last_ckpt)
        if epoch_end:
            save_checkpoint(state, out / "checkpoints" / f"epoch_{epoch:04d}.pt")
        saved["step"] = step
        log(f"checkpoint at step {step} (epoch {epoch})")

    try:
        while step < total_steps:
            epoch, index = divmod(step, steps_per_epoch)
            x, y = source.batch(epoch, index)  # [B, C, H, W] in [-1, 1], labels [B] | None
            stats.add(engine.step(x, y, step), step + 1)
            step += 1

            epoch_end = step % steps_per_epoch == 0
            if step % cfg.log_every == 0 or step == total_steps or epoch_end:
                check_finite(stats.first_bad, ctx, saved["step"])
                check_weights(engine, step, saved["step"], ctx)
                dist_utils.all_reduce_mean_(stats.sums, ctx)  # metrics are the mean over ranks
                now = time.perf_counter()
                ips = (step - window_from) * source.batch_size * ctx.world_size / max(now - window_start, 1e-9)
                last_metrics = {
                    "step": step,
                    "epoch": step / steps_per_epoch,
                    **stats.mean(),
                    "images_per_s": ips,
                    "time": time.time(),
                }
                if epoch_end or step == total_steps or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
                    last_metrics.update(diversity.measure(engine.sample_model, step))  # checkpoint() reuses it
                if metrics_file is not None:
                    with writing(out / "metrics.jsonl", "metrics"):
                        metrics_file.write(json.dumps(last_metrics) + "\n")
                        metrics_file.flush()
                m = last_metrics
                bar.set_postfix(
                    img_s=f"{ips:.0f}",
                    loss_d=f"{m['loss_d']:.3f}",
                    loss_g=f"{m['loss_g']:.3f}",
                    D_x=f"{m['d_x']:.2f}",
                    D_G_z=f"{m['d_g_z']:.2f}",
                )
                bar.update(step - bar.n)
                window_start, window_from = now, step
            if epoch_end or step == total_steps or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
                checkpoint(step // steps_per_epoch if epoch_end else epoch, epoch_end)
        if ctx.enabled:
            _record_replicas(engine, ctx, log)
    finally:
        bar.close()
        for f in (metrics_file, log_file):
            if f is not None:
                f.close()

    ips = (step - run_start_step) * source.batch_size * ctx.world_size / max(time.perf_counter() - run_start, 1e-9)
    if ctx.is_main:
        with writing(out / "loss_curve.png", "loss curve"):
            _plot_losses(out)
    return TrainResult(out, step, step // steps_per_epoch, last_ckpt, ips, last_metrics, cfg, ctx.is_main)


def _record_replicas(engine: GANStep, ctx: dist_utils.DistContext, log: Callable[[str], None]) -> None:
    """Every rank's digest of its G, D and G_ema parameters, written to train.log by rank 0 (`replicas {...}`).

    Data parallelism is correct only if these agree; BatchNorm running statistics are left out (each rank's
    drift after rank 0's last broadcast; rank 0's are the ones saved).
    """
    models = {"G": engine.G, "D": engine.D}
    if engine.ema is not None:
        models["G_ema"] = engine.ema.model
    digests = dist_utils.gather_objects({k: dist_utils.parameter_digest(m) for k, m in models.items()}, ctx)
    if ctx.is_main:
        same = all(d == digests[0] for d in digests)
        log(f"replicas {json.dumps({'identical': same, 'ranks': digests})}")
        if not same:
            warnings.warn(
                "data-parallel replicas hold different parameters: see train.log", RuntimeWarning, stacklevel=2
            )


def _save_samples(model: nn.Module, cfg: TrainConfig, path: Path, device: torch.device) -> None:
    """The fixed-seed grid: contract latents draw_latents(64, nz, sample_seed) [64, nz], default labels."""
    images = generate_images(
        model, SAMPLE_GRID_SIZE, cfg.sample_seed, device=device, nz=cfg.model.nz, num_classes=cfg.model.num_classes
    )  # [64, C, H, W]
    with writing(path, "sample grid"):
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
    atomic_write(out / "loss_curve.png", lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
