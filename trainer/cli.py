"""`edgegan train`: options map one-to-one onto TrainConfig; the work is edgegan.trainer.train.train."""
from __future__ import annotations

from pathlib import Path

import click

from edgegan.runtime.cli_options import EdgeganCommand, Say, batch_size_option, check_json_path, deprecated_alias
from edgegan.runtime.cli_options import json_option, output_option, quiet_option, threads_option
from edgegan.trainer.config import AMP_MODES, ARCHS, DATASETS, DEVICES, LOSSES


@click.command(cls=EdgeganCommand)
@click.option("--arch", type=click.Choice(ARCHS), default="dcgan", show_default=True)
@click.option("--dataset", type=click.Choice(DATASETS), default="fashion-mnist", show_default=True)
@click.option("--data-dir", type=click.Path(), default=None, help="IDX folder, image tree or .npz file.")
@click.option("--conditional", is_flag=True, help="Class-conditional G and D (labels from the data).")
@click.option("--mode-seeking", type=float, default=None,
              help="Conditional only: weight of the mode-seeking term that keeps G from ignoring z within a class; "
                   "default 1 for dcgan (label joined to z), 0 for gan (conditional BatchNorm).")
@click.option("--image-size", type=int, default=28, show_default=True, help="28 or a power of two >= 32.")
@click.option("--channels", type=click.Choice(["1", "3"]), default=None, help="Default: as the data is stored.")
@click.option("--width", type=int, default=64, show_default=True, help="DCGAN ngf=ndf; GAN hidden = 4/8/16 x width.")
@click.option("--nz", type=int, default=100, show_default=True, help="Latent size.")
@click.option("--epochs", type=int, default=5, show_default=True)
@click.option("--max-steps", type=int, default=None, help="Stop after N optimizer steps (overrides --epochs).")
@batch_size_option(64, "Images per optimizer step.")
@click.option("--lr", type=float, default=None,
              help="Adam learning rate (finite, > 0); default: the recipe for --arch (5e-4 for dcgan and gan).")
@click.option("--lr-d", type=float, default=None, help="D's own learning rate (two time-scale rule); default: --lr.")
@click.option("--beta1", type=float, default=0.5, show_default=True, help="Adam beta1, in [0, 1).")
@click.option("--beta2", type=float, default=0.999, show_default=True, help="Adam beta2, in [0, 1).")
@click.option("--loss", type=click.Choice(LOSSES), default=None, help="Default: the recipe's (bce).")
@click.option("--ema/--no-ema", default=True, show_default=True, help="Keep an EMA copy of G for samples/export.")
@click.option("--ema-decay", type=float, default=None, help="In [0, 1); default: the recipe's (0.99 for dcgan and gan).")
@click.option("--ema-start", type=int, default=None,
              help="Steps before the EMA starts averaging (it copies G until then); default: the recipe's (0).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--amp", type=click.Choice(AMP_MODES), default="auto", show_default=True,
              help="Mixed precision: bf16 (CUDA, or CPUs with AVX-512 BF16/AMX) or fp16 (CUDA); auto = bf16 on "
                   "CPUs with AVX-512 BF16/AMX (1.5x training speed measured) and on GPUs with bf16 Tensor Cores, "
                   "off elsewhere.")
@click.option("--deterministic", is_flag=True,
              help="Bit-reproducible CUDA training, so --resume continues exactly: cuDNN deterministic algorithms, "
                   "no TF32 (cost unmeasured until the H200 run). CPU runs are exact without it.")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True)
@click.option("--compile/--no-compile", "compile_", default=False, show_default=True, help="torch.compile G and D.")
@click.option("--log-every", type=int, default=10, show_default=True)
@click.option("--checkpoint-every", type=int, default=0, show_default=True, help="Steps; 0 = each epoch and the end.")
@click.option("--out", required=True, type=click.Path(file_okay=False), metavar="DIR", help="Run folder.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from checkpoints/last.pt.")
@json_option("the final step's figures (step, losses, images/s, checkpoint)")
@quiet_option("No progress bar or lines on stderr.")
def train(**opts) -> None:
    """Train a GAN (Goodfellow 2014) or DCGAN (Radford 2015) generator.

    Options left unset (--lr, --ema-decay, --ema-start, --loss) come from the measured recipe for the
    architecture, conditioning and dataset (trainer/recipes.py); config.json records them under "recipe".

    Example: edgegan train --arch dcgan --dataset fashion-mnist --max-steps 200 --out runs/fm
    """
    from edgegan.trainer.config import ModelConfig, TrainConfig
    from edgegan.trainer.train import train as run_training

    model = ModelConfig(arch=opts["arch"], nz=opts["nz"], image_size=opts["image_size"], width=opts["width"])
    cfg = TrainConfig(
        model=model, dataset=opts["dataset"], data_dir=opts["data_dir"], conditional=opts["conditional"],
        channels=int(opts["channels"]) if opts["channels"] else None, loss=opts["loss"], lr=opts["lr"],
        lr_d=opts["lr_d"], mode_seeking=opts["mode_seeking"],
        beta1=opts["beta1"], beta2=opts["beta2"], batch_size=opts["batch_size"], epochs=opts["epochs"], max_steps=opts["max_steps"],
        ema=opts["ema"], ema_decay=opts["ema_decay"], ema_start=opts["ema_start"], seed=opts["seed"], device=opts["device"], amp=opts["amp"],
        channels_last=opts["channels_last"], compile=opts["compile_"], log_every=opts["log_every"],
        checkpoint_every=opts["checkpoint_every"],
    )
    try:  # every option is checked here and device/amp in train(), before anything is written
        cfg.validate()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    check_json_path(opts["json_path"])
    if opts["deterministic"]:
        from edgegan.trainer.cuda_step import deterministic

        deterministic()  # process-wide, before the first CUDA kernel
    result = run_training(cfg, opts["out"], resume=opts["resume"], progress=not opts["quiet"])
    if not result.is_main:
        return  # under torchrun only rank 0 reports
    m = result.last_metrics
    say = Say(opts["quiet"], opts["json_path"])
    say.result(
        f"step {result.step}: loss_D {m.get('loss_d', float('nan')):.3f}  loss_G {m.get('loss_g', float('nan')):.3f}  "
        f"{result.images_per_second:.0f} images/s  checkpoint {result.checkpoint}"
    )
    say.json({"run": str(opts["out"]), "step": result.step, "metrics": m,
              "images_per_second": result.images_per_second, "checkpoint": str(result.checkpoint)}, opts["json_path"])


@click.group()
def evaluator() -> None:
    """The domain classifier that `edgegan eval` and the export quality gate score images with."""


@evaluator.command("train", cls=EdgeganCommand)
@click.option("--dataset", type=click.Choice(DATASETS), default="fashion-mnist", show_default=True)
@click.option("--data-dir", type=click.Path(), default=None, help="IDX folder, image tree or .npz file.")
@click.option("--image-size", type=int, default=None, help="Resize to N x N (default: as stored).")
@click.option("--epochs", type=int, default=3, show_default=True)
@batch_size_option(128, "Images per optimizer step.")
@click.option("--lr", type=float, default=3e-3, show_default=True, help="Peak learning rate (AdamW, warm-up then cosine).")
@click.option("--width", type=int, default=32, show_default=True, help="Channels of the first conv stage.")
@click.option("--feature-dim", type=int, default=128, show_default=True, help="Size of the features FID uses.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-images", type=int, default=None, help="Train on a random subset of N images.")
@click.option("--max-steps", type=int, default=None, help="Stop after N steps.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@threads_option("PyTorch")
@output_option("Evaluator .onnx to write [default: ~/.cache/edgegan/evaluators/DATASET.onnx, where eval looks].")
@deprecated_alias("--out", "output", "-o/--output", type=click.Path(dir_okay=False, path_type=Path))
@json_option("the evaluator's figures (file, dataset, accuracy, steps)")
@quiet_option("No progress bar or lines on stderr.")
def evaluator_train(**opts) -> None:
    """Train a small CNN classifier on the real training split and export it to ONNX with its metadata.

    Example: edgegan evaluator train --dataset fashion-mnist
    """
    from edgegan.trainer.evaluator_training import EvaluatorConfig  # first: without torch, the missing extra is "train"
    # The CLI glue joins the packages: export writes the evaluator's ONNX file (the trainer knows nothing of ONNX).
    from edgegan.export.evaluator_onnx import train_and_export_evaluator

    if opts["output"] is not None:  # a file the user named: its folder must exist (none is created for them)
        from edgegan.runtime.files import check_writable

        check_writable(opts["output"], "-o")
    check_json_path(opts["json_path"])
    cfg = EvaluatorConfig(
        dataset=opts["dataset"], data_dir=opts["data_dir"], image_size=opts["image_size"], epochs=opts["epochs"],
        batch_size=opts["batch_size"], lr=opts["lr"], width=opts["width"], feature_dim=opts["feature_dim"],
        seed=opts["seed"], max_images=opts["max_images"], max_steps=opts["max_steps"], device=opts["device"],
        threads=opts["threads"],
    )
    result = train_and_export_evaluator(cfg, opts["output"], progress=not opts["quiet"])
    info = result.info
    say = Say(opts["quiet"], opts["json_path"])
    say.result(
        f"wrote {result.path}: {info.dataset} {info.height}x{info.width}x{info.channels}, {info.num_classes} classes, "
        f"{info.feature_dim}-d features; accuracy {info.test_accuracy:.2%} on {info.train['accuracy_split']} "
        f"({result.steps} steps, {result.seconds:.0f} s)"
    )
    say.json({"path": str(result.path), "dataset": info.dataset, "image": {"height": info.height,
              "width": info.width, "channels": info.channels}, "num_classes": info.num_classes,
              "feature_dim": info.feature_dim, "test_accuracy": info.test_accuracy, "steps": result.steps,
              "seconds": result.seconds}, opts["json_path"])
