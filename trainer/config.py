"""Configuration dataclasses; saved in every checkpoint and carried into each exported ONNX file."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.evaluation.datasets import DATASETS
from edgegan.trainer.architectures import ARCHITECTURE_MODULES, D_NORMS

LOSSES = ("bce", "hinge", "lsgan", "rasgan", "rahinge")  # trainer/losses.py LOSSES
AMP_MODES = ("auto", "off", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
G_CONDITIONINGS = ("cbn", "concat")
# How the learning rate moves over a run (trainer/step.py lr_factor): "constant", or "linear_half": the set lr for
# the first half of the run's planned steps, then linear to 0 at its end.
LR_SCHEDULES = ("constant", "linear_half")


class ConfigError(EdgeganError, ValueError):
    """An option value no run can use (the CLI shows it as a usage error, before anything is written)."""


@dataclass
class ModelConfig:
    """Everything needed to rebuild G and D: `build_generator(ModelConfig(**ckpt["config"]["model"]))`."""

    arch: str = "dcgan"
    nz: int = 100
    image_size: int = 28
    channels: int = 1
    num_classes: int = 0  # 0 = unconditional
    width: int = 64  # DCGAN: ngf = ndf; GAN: hidden widths are width*4, *8, *16 (256, 512, 1024 at 64)
    label_embed_dim: int = 50  # conditional G with g_conditioning="concat": label embedding joined to z
    # How a conditional G takes its label: "concat" (a label embedding joined to z) or "cbn" (class-conditional
    # BatchNorm gains and biases, z alone feeds the first layer); None: the arch's Architecture.g_conditioning,
    # chosen by measurement (trainer/models/layers.py ConditionalBatchNorm says what was measured).
    g_conditioning: str | None = None

    @property
    def conditioning(self) -> str:
        """The conditional G's label path: g_conditioning, or the arch's default."""
        from edgegan.trainer.models import ARCHITECTURES  # torch: here, so the CLI imports this module without it

        arch = ARCHITECTURES.get(self.arch)
        return self.g_conditioning or (arch.g_conditioning if arch is not None else "concat")

    def validate(self) -> None:
        if self.arch not in ARCHITECTURE_MODULES:
            raise ConfigError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHITECTURE_MODULES)}")
        from edgegan.trainer.models import ARCHITECTURES

        if self.g_conditioning is not None and self.g_conditioning not in G_CONDITIONINGS:
            raise ConfigError(
                f"unknown g_conditioning {self.g_conditioning!r}; choose one of {', '.join(G_CONDITIONINGS)}"
            )
        arch = ARCHITECTURES[self.arch]
        if not arch.image_size_ok(self.image_size):
            raise ConfigError(arch.image_size_error.format(size=self.image_size))
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        if self.nz <= 0 or self.width <= 0 or self.num_classes < 0:
            raise ConfigError("nz and width must be positive and num_classes >= 0")


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    conditional: bool = False  # num_classes and class_names then come from the data
    channels: int | None = None  # None: as stored in the data (folder: RGB unless all grey)
    class_names: list[str] = field(default_factory=list)
    # None: from the recipe table (trainer/recipes.py), applied when a run starts; config.json holds the values
    loss: str | None = None
    lr: float | None = None
    lr_d: float | None = None  # D's learning rate (two time-scale update rule, Heusel et al. 2017); None: lr
    beta1: float | None = None  # Adam's betas: None until a recipe (trainer/recipes.py) or the user sets them
    beta2: float | None = None
    # G's and D's learning rate over the run (LR_SCHEDULES; trainer/step.py lr_factor); it reads the planned steps
    # (max_steps, else epochs x steps per epoch). None until a recipe sets it.
    lr_schedule: str | None = None
    # Images per optimizer step (per rank). None until a recipe sets it: 64 where no row says otherwise.
    batch_size: int | None = None
    # Generated images per step as a multiple of batch_size: D's fake half and G's loss see fake_multiple x
    # batch_size of them, D's real half batch_size real ones, so an epoch is as many steps as with 1. None until a
    # recipe sets it: 1 where no row says otherwise.
    fake_multiple: int | None = None
    # Decoupled weight decay (AdamW's) on G's output layer weights alone: each step they shrink by lr x out_decay.
    # Output weights that get little gradient (a pixel that is background in every digit) otherwise wander under
    # Adam's normalised steps and light that pixel now and then (trainer/step.py output_param_groups). 0 = off. None
    # until a recipe sets it.
    out_decay: float | None = None
    epochs: int = 5
    max_steps: int | None = None  # when set, overrides epochs
    # Conditional G only: weight of the mode-seeking term (MSGAN) that keeps G from ignoring z within a class
    # (trainer/step.py says why); None: 1 where the label is joined to z (dcgan), 0 with conditional BatchNorm
    # (gan: measured, the term blurred its labels there); 0 turns it off.
    mode_seeking: float | None = None
    # Top-k training (Sinha et al. 2020): G's loss over only the top_k fraction of fakes D rates most real, the
    # fraction annealed from 1 over trainer/losses.py's TOP_K_ANNEAL_STEPS; 1 = off. None until a recipe sets it.
    top_k: float | None = None
    ema: bool = True
    ema_decay: float | None = None
    ema_start: int | None = None  # steps before the EMA starts averaging (it copies G until then)
    d_norm: str | None = None  # D's normalisation, one of D_NORMS (trainer/architectures.py)
    # Layers D adds to each stage (DCGAN: a 3x3 convolution after each strided one); 0: as published. None until a
    # recipe sets it.
    d_depth: int | None = None
    # Balanced consistency regularisation (Zhao et al. 2020, bCR): D is also trained to give a randomly translated
    # real or fake image the logit of the image itself, weight `consistency` on each squared difference; 0 = off.
    consistency: float = 0.0
    # R1 (Mescheder et al. 2018): D also minimises r1 / 2 x E ||grad_x D(x)||^2 on real images; 0 = off. None until a
    # recipe sets it.
    r1: float | None = None
    seed: int = 0
    sample_seed: int = 0  # the grid each epoch: contract latents draw_latents(64, nz, sample_seed)
    device: str = "auto"
    # auto: bf16 autocast on CPUs with AVX-512 BF16 or AMX (~1.5-1.8x faster there, same losses and samples:
    # benchmarks/results/train_throughput.md), off elsewhere; resolved when a run starts (config.json shows it)
    amp: str = "auto"
    channels_last: bool = True
    compile: bool = False
    log_every: int = 10  # progress bar / metrics.jsonl / NaN check interval, in steps
    checkpoint_every: int = 0  # 0: at each epoch end and at the end only
    recipe: dict[str, Any] | None = None  # set by apply_recipe: the row's name and the values it filled

    @property
    def use_channels_last(self) -> bool:
        """NHWC memory format for G, D and the batches: asked for (channels_last) and paying for this arch."""
        from edgegan.trainer.models import ARCHITECTURES

        return self.channels_last and ARCHITECTURES[self.model.arch].channels_last

    def validate(self) -> None:
        """Raise ConfigError for a value no run can use; nothing is written before this passes."""
        self.model.validate()
        if self.loss is not None and self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.lr_schedule is not None and self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"unknown --lr-schedule {self.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
        if self.d_norm is not None and self.d_norm not in D_NORMS:
            raise ConfigError(f"unknown --d-norm {self.d_norm!r}; choose one of {', '.join(D_NORMS)}")
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"unknown amp mode {self.amp!r}; choose one of {', '.join(AMP_MODES)}")
        if self.device not in DEVICES:
            raise ConfigError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.batch_size is not None and self.batch_size <= 0:
            raise ConfigError(f"--batch-size must be positive, got {self.batch_size}")
        # `not (x > 0)` also refuses NaN, which every comparison calls False.
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--lr must be a finite number > 0, got {self.lr}")
        if self.lr_d is not None and not (math.isfinite(self.lr_d) and self.lr_d > 0):
            raise ConfigError(f"--lr-d must be a finite number > 0, got {self.lr_d}")
        for name, value in (("--beta1", self.beta1), ("--beta2", self.beta2), ("--ema-decay", self.ema_decay)):
            if value is not None and not (
                0.0 <= value < 1.0
            ):  # Adam needs beta < 1 (bias correction divides by 1 - beta**t)
                raise ConfigError(f"{name} must be in [0, 1), got {value}")
        if self.mode_seeking is not None and not (math.isfinite(self.mode_seeking) and self.mode_seeking >= 0):
            raise ConfigError(f"--mode-seeking must be a finite number >= 0, got {self.mode_seeking}")
        if not (math.isfinite(self.consistency) and self.consistency >= 0):
            raise ConfigError(f"--consistency must be a finite number >= 0, got {self.consistency}")
        if self.fake_multiple is not None and self.fake_multiple < 1:
            raise ConfigError(f"--fake-multiple must be >= 1, got {self.fake_multiple}")
        if self.out_decay is not None and not (math.isfinite(self.out_decay) and self.out_decay >= 0):
            raise ConfigError(f"--out-decay must be a finite number >= 0, got {self.out_decay}")
        if self.d_depth is not None and self.d_depth < 0:
            raise ConfigError(f"--d-depth must be >= 0, got {self.d_depth}")
        if self.r1 is not None and not (math.isfinite(self.r1) and self.r1 >= 0):
            raise ConfigError(f"--r1 must be a finite number >= 0, got {self.r1}")
        if self.top_k is not None and not (0.0 < self.top_k <= 1.0):
            raise ConfigError(f"--top-k must be in (0, 1], got {self.top_k}")
        if self.ema_start is not None and self.ema_start < 0:
            raise ConfigError(f"ema_start must be >= 0, got {self.ema_start}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ConfigError("--max-steps must be positive")
        if self.max_steps is None and self.epochs <= 0:
            raise ConfigError("--epochs must be positive")
        if self.log_every <= 0:
            raise ConfigError(f"--log-every must be positive, got {self.log_every}")
        if self.checkpoint_every < 0:
            raise ConfigError(
                f"--checkpoint-every must be >= 0 (0: each epoch and the end), got {self.checkpoint_every}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from a saved dict; unknown keys are ignored and new keys take their defaults."""
        data = dict(data)
        model_data = dict(data.pop("model", {}))
        # Checkpoints from before g_conditioning existed joined the label to z: rebuild them that way.
        model_data.setdefault("g_conditioning", "concat")
        # Runs from before top_k, d_norm, d_depth, r1, lr_schedule, fake_multiple and out_decay existed trained
        # without top-k, with the architecture's D, a constant lr, one generated image per real one and no weight
        # decay: a resume keeps that, whatever a later recipe row sets.
        data.setdefault("top_k", 1.0)
        data.setdefault("d_norm", "batch")
        data.setdefault("d_depth", 0)
        data.setdefault("r1", 0.0)
        data.setdefault("lr_schedule", "constant")
        data.setdefault("fake_multiple", 1)
        data.setdefault("out_decay", 0.0)
        model = ModelConfig(**_known(ModelConfig, model_data))
        return cls(model=model, **_known(cls, data))

    def digest(self) -> str:
        """Short digest of the training recipe (device/log settings excluded) for provenance."""
        recipe = self.to_dict()
        for key in ("device", "log_every", "checkpoint_every", "max_steps", "epochs", "data_dir", "recipe"):
            recipe.pop(key, None)
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


class EvaluatorError(EdgeganError):
    """The evaluator cannot be trained on the data given (its export's failures are export's errors)."""


@dataclass
class EvaluatorConfig:
    """How to train an evaluator (trainer/evaluator_training.py); saved (as JSON) in the exported evaluator's edgegan.evaluator.train metadata."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    image_size: int | None = None  # None: the size the data is stored at
    channels: int | None = None  # None: as stored
    epochs: int = 3
    batch_size: int = 128
    lr: float = 3e-3  # AdamW peak: linear warm-up over a quarter of the steps, then cosine decay to 0
    weight_decay: float = 5e-4
    width: int = 32
    feature_dim: int = 128
    dropout: float = 0.3
    seed: int = 0
    max_images: int | None = None  # train on a random subset of this many images (quick runs, tests)
    max_steps: int | None = None  # stop after this many steps (tests)
    device: str = "auto"
    threads: int | None = None  # torch intra-op threads (None: torch's default, one per core)

    def validate(self) -> None:
        if self.epochs <= 0 or self.batch_size <= 0 or self.lr <= 0:
            raise EvaluatorError("--epochs, --batch-size and --lr must be positive")
        if self.width <= 0 or self.feature_dim <= 0 or not 0 <= self.dropout < 1:
            raise EvaluatorError("--width and --feature-dim must be positive and dropout in [0, 1)")
        if self.max_images is not None and self.max_images <= 1:
            raise EvaluatorError("--max-images must be at least 2")
        if self.max_steps is not None and self.max_steps <= 0:
            raise EvaluatorError("--max-steps must be positive")
        if self.threads is not None and self.threads <= 0:
            raise EvaluatorError("--threads must be positive")
