"""`edgegan train`: options map one-to-one onto TrainConfig; the work is edgegan.trainer.train.train."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edgegan.runtime.cli_options import (
    EdgeganCommand,
    Say,
    batch_size_option,
    check_json_path,
    deprecated_alias,
    json_option,
    output_option,
    quiet_option,
    threads_option,
)
from edgegan.trainer.architectures import ARCHS, D_NORMS
from edgegan.trainer.config import (
    AMP_MODES,
    DATASETS,
    DEVICES,
    LOSSES,
    LR_SCHEDULES,
    EvaluatorConfig,
    ModelConfig,
    TrainConfig,
)

if TYPE_CHECKING:  # annotations only: train() imports the trainer lazily (a thin CLI)
    from edgegan.trainer.train import TrainResult

# Every `edgegan train` default is the config dataclasses' (trainer/config.py), read here, never retyped; an option
# is the field of the same name (--compile: `compile`), TrainConfig's unless it is one of MODEL_OPTIONS.
_TRAIN = TrainConfig()
_EVAL = EvaluatorConfig()
_MODEL = _TRAIN.model
MODEL_OPTIONS = ("arch", "nz", "image_size", "width")


def config_from_options(opts: dict[str, Any]) -> TrainConfig:
    """The TrainConfig `edgegan train`'s options describe (not validated yet)."""
    values = dict(opts, compile=opts["compile_"], channels=int(opts["channels"]) if opts["channels"] else None)
    model = ModelConfig(**{name: values[name] for name in MODEL_OPTIONS})
    return TrainConfig(
        model=model, **{f.name: values[f.name] for f in fields(TrainConfig) if f.name != "model" and f.name in values}
    )


def recipe_default(key: str) -> str:
    """What a recipe key defaults to, read from trainer/recipes.py: per architecture for any dataset, then each
    dataset's row that differs, e.g. "the recipe's: dcgan 0.0005, gan 0.0005, unconditional dcgan on mnist 0.001"
    ("gan hinge (conditional: bce)" where conditioning changes it)."""
    from edgegan.trainer.recipes import BASE, RECIPES, recipe_for

    def value(arch: str, conditional: bool) -> str:
        got = recipe_for(arch, conditional, "").values.get(key, BASE[key])  # "": no dataset's row, the generic one
        return format(got, "g") if isinstance(got, float) else str(got)

    parts = []
    for arch in ARCHS:
        plain, conditional = value(arch, False), value(arch, True)
        parts.append(f"{arch} {plain}" + (f" (conditional: {conditional})" if conditional != plain else ""))
    for row in RECIPES:  # a dataset's own rows, where they differ from the generic one
        got = row.values.get(key)
        if row.dataset is None or got is None:
            continue
        shown = format(got, "g") if isinstance(got, float) else str(got)
        if shown != value(row.arch or ARCHS[0], bool(row.conditional)):
            kind = {True: "conditional ", False: "unconditional ", None: ""}[row.conditional]
            parts.append(f"{kind}{row.arch or 'any'} on {row.dataset} {shown}")
    return "the recipe's: " + ", ".join(parts)


@click.command(cls=EdgeganCommand)
@click.option("--arch", type=click.Choice(ARCHS), default=_MODEL.arch, show_default=True)
@click.option("--dataset", type=click.Choice(DATASETS), default=_TRAIN.dataset, show_default=True)
@click.option("--data-dir", type=click.Path(), default=_TRAIN.data_dir, help="IDX folder, image tree or .npz file.")
@click.option(
    "--conditional", is_flag=True, default=_TRAIN.conditional, help="Class-conditional G and D (labels from the data)."
)
@click.option(
    "--mode-seeking",
    type=float,
    default=_TRAIN.mode_seeking,
    help="Weight of the mode-seeking term (Mao et al. 2019) that keeps G from ignoring z; default 1 for a "
    "conditional dcgan (label joined to z), 0 otherwise; a weight given applies to any model.",
)
@click.option(
    "--image-size", type=int, default=_MODEL.image_size, show_default=True, help="28 or a power of two >= 32."
)
@click.option(
    "--channels", type=click.Choice(["1", "3"]), default=_TRAIN.channels, help="Default: as the data is stored."
)
@click.option(
    "--width", type=int, default=_MODEL.width, show_default=True, help="DCGAN ngf=ndf; GAN hidden = 4/8/16 x width."
)
@click.option("--nz", type=int, default=_MODEL.nz, show_default=True, help="Latent size.")
@click.option("--epochs", type=int, default=_TRAIN.epochs, show_default=True)
@click.option(
    "--max-steps", type=int, default=_TRAIN.max_steps, help="Stop after N optimizer steps (overrides --epochs)."
)
@batch_size_option(None, f"Images per optimizer step; default: {recipe_default('batch_size')}.")
@click.option(
    "--fake-multiple",
    type=int,
    default=_TRAIN.fake_multiple,
    metavar="M",
    help="Generated images per step, as M x the batch size: D's fake half and G's loss see M x as many, D's real "
    f"half the batch (an epoch is as many steps); default: {recipe_default('fake_multiple')}.",
)
@click.option(
    "--lr", type=float, default=_TRAIN.lr, help=f"Adam learning rate (finite, > 0); default: {recipe_default('lr')}."
)
@click.option(
    "--lr-d", type=float, default=_TRAIN.lr_d, help="D's own learning rate (two time-scale rule); default: --lr."
)
@click.option(
    "--beta1", type=float, default=_TRAIN.beta1, help=f"Adam beta1, in [0, 1); default: {recipe_default('beta1')}."
)
@click.option(
    "--beta2", type=float, default=_TRAIN.beta2, help=f"Adam beta2, in [0, 1); default: {recipe_default('beta2')}."
)
@click.option(
    "--lr-schedule",
    type=click.Choice(LR_SCHEDULES),
    default=_TRAIN.lr_schedule,
    help="G's and D's learning rate over the run: constant, or linear_half (the set lr for the first half of the "
    "planned steps, --max-steps or --epochs, then linear to 0 at the end); "
    f"default: {recipe_default('lr_schedule')}.",
)
@click.option("--loss", type=click.Choice(LOSSES), default=_TRAIN.loss, help=f"Default: {recipe_default('loss')}.")
@click.option(
    "--top-k",
    type=float,
    default=_TRAIN.top_k,
    metavar="F",
    help="Top-k training (Sinha et al. 2020): G's loss over the fraction F in (0, 1] of fakes D rates most real, "
    f"annealed from 1 over the first steps (trainer/losses.py); 1 = off; default: {recipe_default('top_k')}.",
)
@click.option("--ema/--no-ema", default=_TRAIN.ema, show_default=True, help="Keep an EMA copy of G for samples/export.")
@click.option(
    "--ema-decay", type=float, default=_TRAIN.ema_decay, help=f"In [0, 1); default: {recipe_default('ema_decay')}."
)
@click.option(
    "--ema-start",
    type=int,
    default=_TRAIN.ema_start,
    help=f"Steps before the EMA starts averaging (it copies G until then); default: {recipe_default('ema_start')}.",
)
@click.option(
    "--d-norm",
    type=click.Choice(D_NORMS),
    default=_TRAIN.d_norm,
    help="D's normalisation: its BatchNorms, or spectral normalisation of every weight (BatchNorms removed); "
    f"default: {recipe_default('d_norm')}.",
)
@click.option("--seed", type=int, default=_TRAIN.seed, show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default=_TRAIN.device, show_default=True)
@click.option(
    "--amp",
    type=click.Choice(AMP_MODES),
    default=_TRAIN.amp,
    show_default=True,
    help="Mixed precision: bf16 (CUDA, or CPUs with AVX-512 BF16/AMX) or fp16 (CUDA); auto = bf16 on "
    "CPUs with AVX-512 BF16/AMX (1.5x training speed measured) and on GPUs with bf16 Tensor Cores, "
    "off elsewhere.",
)
@click.option(
    "--deterministic",
    is_flag=True,
    help="Bit-reproducible CUDA training, so --resume continues exactly: cuDNN deterministic algorithms, "
    "no TF32 (cost unmeasured until the H200 run). CPU runs are exact without it.",
)
@click.option("--channels-last/--no-channels-last", default=_TRAIN.channels_last, show_default=True)
@click.option(
    "--compile/--no-compile", "compile_", default=_TRAIN.compile, show_default=True, help="torch.compile G and D."
)
@click.option("--log-every", type=int, default=_TRAIN.log_every, show_default=True)
@click.option(
    "--checkpoint-every",
    type=int,
    default=_TRAIN.checkpoint_every,
    show_default=True,
    help="Steps; 0 = each epoch and the end.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), metavar="DIR", help="Run folder.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from checkpoints/last.pt.")
@json_option("the final step's figures (step, losses, images/s, checkpoint)")
@quiet_option("No progress bar or lines on stderr.")
@click.option(
    "--d-depth",
    type=int,
    default=_TRAIN.d_depth,
    metavar="N",
    help="Layers D adds to each stage (dcgan: a 3x3 convolution after each strided one; gan: a hidden layer); "
    f"0: the published D; default: {recipe_default('d_depth')}.",
)
@click.option(
    "--consistency",
    type=float,
    default=_TRAIN.consistency,
    show_default=True,
    metavar="W",
    help="Balanced consistency regularisation (Zhao et al. 2020): D also gives each real and fake image, shifted by "
    "up to an eighth of its size, the logit of the image itself, weight W on the squared difference; 0 = off.",
)
@click.option(
    "--out-decay",
    type=float,
    default=_TRAIN.out_decay,
    metavar="W",
    help="Decoupled weight decay on G's output layer weights alone (each step they shrink by lr x W): pixels that "
    f"are background in every image stay dark; 0 = off; default: {recipe_default('out_decay')}.",
)
@click.option(
    "--r1",
    type=float,
    default=_TRAIN.r1,
    metavar="GAMMA",
    help="R1 penalty (Mescheder et al. 2018): D also minimises GAMMA / 2 x |grad of D at real images|^2; 0 = off; "
    f"default: {recipe_default('r1')}.",
)
def train(**opts) -> None:
    """Train a GAN (Goodfellow 2014) or DCGAN (Radford 2015) generator.

    Options left unset (--batch-size, --fake-multiple, --lr, --beta1, --beta2, --lr-schedule, --ema-decay,
    --ema-start, --loss, --top-k, --d-norm, --d-depth, --out-decay, --r1)
    come from the measured recipe for the architecture, conditioning and dataset (trainer/recipes.py); config.json
    records them under "recipe".

    Example: edgegan train --arch dcgan --dataset fashion-mnist --max-steps 200 --out runs/fm
    """
    from edgegan.trainer.distributed import launched_world_size
    from edgegan.trainer.train import train as run_training

    cfg = config_from_options(opts)
    try:  # every option is checked here and device/amp in train(), before anything is written
        cfg.validate()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    check_json_path(opts["json_path"])
    if opts["deterministic"]:
        from edgegan.trainer.cuda_step import deterministic

        deterministic()  # process-wide, before the first CUDA kernel
    result = run_training(cfg, opts["out"], resume=opts["resume"], progress=not opts["quiet"])
    if result.is_main:  # under torchrun only rank 0 reports
        report_training(result, opts)
    if launched_world_size() > 1:
        # Every rank has left the process group (train() tears it down together); what is left is interpreter
        # finalisation, where a gloo/c10d C++ thread still joinable at static destruction aborts the process
        # ("terminate called without an active exception", exit -6) now and then after a finished run, and
        # torchrun then fails the job. The run's files are written and closed: flush and leave without it.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def report_training(result: TrainResult, opts: dict[str, Any]) -> None:
    """Rank 0's last line (and --json record) for a finished run."""
    m = result.last_metrics
    say = Say(opts["quiet"], opts["json_path"])
    say.result(
        f"step {result.step}: loss_D {m.get('loss_d', float('nan')):.3f}  loss_G {m.get('loss_g', float('nan')):.3f}  "
        f"{result.images_per_second:.0f} images/s  checkpoint {result.checkpoint}"
    )
    say.json(
        {
            "run": str(opts["out"]),
            "step": result.step,
            "metrics": m,
            "images_per_second": result.images_per_second,
            "checkpoint": str(result.checkpoint),
        },
        opts["json_path"],
    )


@click.group()
def evaluator() -> None:
    """The domain classifier that `edgegan eval` and the export quality gate score images with."""


@evaluator.command("train", cls=EdgeganCommand)
@click.option("--dataset", type=click.Choice(DATASETS), default=_EVAL.dataset, show_default=True)
@click.option("--data-dir", type=click.Path(), default=_EVAL.data_dir, help="IDX folder, image tree or .npz file.")
@click.option("--image-size", type=int, default=_EVAL.image_size, help="Resize to N x N (default: as stored).")
@click.option("--epochs", type=int, default=_EVAL.epochs, show_default=True)
@batch_size_option(_EVAL.batch_size, "Images per optimizer step.")
@click.option(
    "--lr", type=float, default=_EVAL.lr, show_default=True, help="Peak learning rate (AdamW, warm-up then cosine)."
)
@click.option("--width", type=int, default=_EVAL.width, show_default=True, help="Channels of the first conv stage.")
@click.option(
    "--feature-dim", type=int, default=_EVAL.feature_dim, show_default=True, help="Size of the features FID uses."
)
@click.option("--seed", type=int, default=_EVAL.seed, show_default=True)
@click.option("--max-images", type=int, default=_EVAL.max_images, help="Train on a random subset of N images.")
@click.option("--max-steps", type=int, default=_EVAL.max_steps, help="Stop after N steps.")
@click.option("--device", type=click.Choice(DEVICES), default=_EVAL.device, show_default=True)
@threads_option("PyTorch")
@output_option("Evaluator .onnx to write [default: ~/.cache/edgegan/evaluators/DATASET.onnx, where eval looks].")
@deprecated_alias("--out", "output", "-o/--output", type=click.Path(dir_okay=False, path_type=Path))
@json_option("the evaluator's figures (file, dataset, accuracy, steps)")
@quiet_option("No progress bar or lines on stderr.")
def evaluator_train(**opts) -> None:
    """Train a small CNN classifier on the real training split and export it to ONNX with its metadata.

    Example: edgegan evaluator train --dataset fashion-mnist
    """
    # The CLI glue joins the packages: export writes the evaluator's ONNX file (the trainer knows nothing of ONNX).
    import edgegan.trainer.evaluator_training  # noqa: F401 - first: without torch, the missing extra is "train"

    # isort: split
    from edgegan.export.evaluator_onnx import train_and_export_evaluator

    if opts["output"] is not None:  # a file the user named: its folder must exist (none is created for them)
        from edgegan.runtime.files import check_writable

        check_writable(opts["output"], "-o")
    check_json_path(opts["json_path"])
    cfg = EvaluatorConfig(**{f.name: opts[f.name] for f in fields(EvaluatorConfig) if f.name in opts})
    result = train_and_export_evaluator(cfg, opts["output"], progress=not opts["quiet"])
    info = result.info
    say = Say(opts["quiet"], opts["json_path"])
    say.result(
        f"wrote {result.path}: {info.dataset} {info.height}x{info.width}x{info.channels}, {info.num_classes} classes, "
        f"{info.feature_dim}-d features; accuracy {info.test_accuracy:.2%} on {info.train['accuracy_split']} "
        f"({result.steps} steps, {result.seconds:.0f} s)"
    )
    say.json(
        {
            "path": str(result.path),
            "dataset": info.dataset,
            "image": {"height": info.height, "width": info.width, "channels": info.channels},
            "num_classes": info.num_classes,
            "feature_dim": info.feature_dim,
            "test_accuracy": info.test_accuracy,
            "steps": result.steps,
            "seconds": result.seconds,
        },
        opts["json_path"],
    )
