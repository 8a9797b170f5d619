"""Training recipes: the learning rate, EMA and loss `edgegan train` uses for what the user leaves unset.

A recipe is chosen per architecture, conditioning and dataset (the most specific row of RECIPES that matches), is
applied when a run starts (`apply_recipe`), and is recorded in config.json as `recipe` with the values it filled;
an explicit value always wins. Each row names the measurement it rests on (README "Training", "Recipes", has the
tables): the DCGAN paper's lr 2e-4 with a 0.999 EMA was the worst arm at 4,000 steps on Fashion-MNIST, and no
single learning rate was best for every architecture.

Adding a recipe: one row here. RECIPE_KEYS are the TrainConfig fields a recipe may set; tests/trainer/test_recipes.py
trains a few steps with each key changed and fails if a key changes nothing (a key no code reads).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from edgegan.trainer.config import TrainConfig

# TrainConfig fields a recipe sets; each is None in a TrainConfig until a recipe or the user gives it a value.
RECIPE_KEYS = (
    "lr",
    "beta1",
    "beta2",
    "ema_decay",
    "ema_start",
    "loss",
    "top_k",
    "d_norm",
    "d_depth",
    "r1",
    "lr_schedule",
    "batch_size",
    "fake_multiple",
    "out_decay",
)
# TrainConfig fields an experiment (time_to_quality.py --ablate) may change: each changes what a run learns
# (tests/trainer/test_recipes.py trains a few steps with each changed and fails if G comes out the same).
ABLATABLE = (*RECIPE_KEYS, "lr_d", "ema", "mode_seeking", "consistency")
# What a field takes where no row sets it: the DCGAN paper's Adam lr and betas, a plain, immediate EMA, G's loss
# over every fake (top_k 1: no top-k training), the architecture's own D as published (its BatchNorms, no added
# layers, no R1), a constant lr and pytorch/examples' 64 images a step, real and generated.
BASE = {
    "lr": 2e-4,
    "beta1": 0.5,
    "beta2": 0.999,
    "ema_decay": 0.999,
    "ema_start": 0,
    "loss": "bce",
    "top_k": 1.0,
    "d_norm": "batch",
    "d_depth": 0,
    "r1": 0.0,
    "lr_schedule": "constant",
    "batch_size": 64,
    "fake_multiple": 1,
    "out_decay": 0.0,
}


@dataclass(frozen=True)
class Recipe:
    """One row: where it applies (None matches anything), what it sets and the measurement behind it."""

    name: str
    values: dict[str, Any]
    evidence: str
    arch: str | None = None
    conditional: bool | None = None
    dataset: str | None = None

    def matches(self, arch: str, conditional: bool, dataset: str) -> bool:
        return all(
            want is None or want == got
            for want, got in ((self.arch, arch), (self.conditional, conditional), (self.dataset, dataset))
        )

    @property
    def specificity(self) -> int:
        return sum(want is not None for want in (self.arch, self.conditional, self.dataset))


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        "base",
        {},
        "the DCGAN paper's Adam lr 2e-4 (Radford et al. 2015) and an EMA of 0.999: no measurement here "
        "beats them for an architecture without a row of its own",
    ),
    Recipe(
        "dcgan",
        {"lr": 5e-4, "ema_decay": 0.99},
        arch="dcgan",
        evidence="H200, by steps, Fashion-MNIST DCGAN, classifier-feature FID of 10,000 samples, seeds 0 / 1: "
        "lr 5e-4 + EMA 0.99 33.1 / 33.6 at 4,080 steps and 21.0 / 21.2 at 8,160, against 49.4 / 54.5 and "
        "27.9 / 28.4 for lr 2e-4 + EMA 0.999 (the plain pytorch/examples loop: 43.1 / 34.5). lr 1e-3 was "
        "better at 4,080 steps (27.2 / 27.6) but split by seed at 8,160 (18.4 / 22.0); MNIST conditional "
        "DCGAN at 3,000 steps: 17.0 against 22.4 (2e-4) and 23.5 (1e-3)",
    ),
    Recipe(
        "dcgan-fashion-mnist-unconditional",
        {
            "lr": 1e-3,
            "beta1": 0.0,
            "beta2": 0.9,
            "ema_decay": 0.99,
            "loss": "hinge",
            "lr_schedule": "linear_half",
            "d_depth": 1,
        },
        arch="dcgan",
        conditional=False,
        dataset="fashion-mnist",
        evidence="by steps, Fashion-MNIST DCGAN, `edgegan eval` FID of 10,000 samples, seeds 0 / 1, 2-core CPU, each "
        "mark its own run (the schedule plans the run's steps): d_depth 1 (a 3x3 convolution after each of D's strided "
        "ones) FID 37.2 / 40.9 at 4,000 steps and 20.8 / 21.5 at 8,000, a D step 1.45x the published D's "
        "(benchmarks/results/recipes/cpu_2026-12-05c/README.md; there R1 0.1 or 1 scored 39.5 / 39.7 and consistency "
        "regularisation 1 / 10 47.3 / 59.5 at 8,000). Without d_depth: lr 1e-3 with linear_half (constant for half the "
        "run, then linear to 0) 67.1 / 70.2 at 4,000 steps and 45.9 / 49.8 at 8,000 "
        "(benchmarks/results/recipes/cpu_2026-12-05/fm_lr1e-3_linear_half.md), against Adam betas (0, 0.9) + hinge at "
        "lr 5e-4 constant 75.7 / 71.9 and 48.3 / 49.4 (cpu_2026-12-04/fm_dcgan_betas_cpu.md), lr 1e-3 constant 66.6 / "
        "69.2 and 45.2 / 56.8 (seed 1 unstable late; cpu_2026-12-04_late/) and linear_half at lr 5e-4 49.7 / 51.7 at "
        "8,000 (cpu_2026-12-05/); the dcgan row 80.6 / 86.2 and 51.7 / 52.2 (H200, "
        "benchmarks/results/recipes/h200_2026-12-04/fm_dcgan.md; the plain pytorch/examples loop there: 114.5 / 119.3 "
        "and 75.6 / 67.8)",
    ),
    Recipe(
        "dcgan-mnist-unconditional",
        {
            "lr": 1e-3,
            "ema_decay": 0.99,
            "loss": "hinge",
            "d_depth": 2,
            "r1": 3.0,
            "batch_size": 128,
            "fake_multiple": 4,
        },
        arch="dcgan",
        conditional=False,
        dataset="mnist",
        evidence="by steps, MNIST unconditional DCGAN at 3,000 steps, `edgegan eval -n 5000`, 2-core CPU, one "
        "evaluator (benchmarks/results/recipes/cpu_2026-12-06b/README.md): batch 128 with fake_multiple 4 (D's real "
        "half 128 images, its fake half and G's loss 512 generated ones) precision 0.760 / 0.764 / 0.755 / 0.761 on "
        "seeds 0-3 over eight eval draws, FID 9.9 / 9.4 / 9.1 / 8.7, against 0.757 / 0.750 / 0.739 / 0.739 (FID 11.0 "
        "/ 11.6 / 10.9 / 11.2) for batch 64 with fake_multiple 8, ahead at every epoch checkpoint compared on seeds 2 "
        "/ 3, for 1.12x its step (1,801 against 1,593 ms on one thread, benchmarks/probes/step_cost.py); by epochs it "
        "runs half the steps (5 epochs, 2,340 steps: 0.738 / 0.738 on seeds 2 / 3). Batch 64 with fake_multiple 8 "
        "(D's fake half and G's loss over 512 generated images, the real half 64, so an epoch is as many steps; "
        "cpu_2026-12-05g/README.md, cpu_2026-12-05f/README.md), seeds 0 / 1: FID 9.7 / 10.2, precision 0.750 / 0.754, "
        "recall 0.861 / 0.857 (seeds 2 / 3: 11.0 / 10.2, 0.735 / 0.747; averaged over eight eval draws the four seeds "
        "0.757 / 0.750 / 0.739 / 0.739, and EMA decays 0.9-0.995 or a later start 0.744-0.753 over the four on one "
        "draw, cpu_2026-12-05h/README.md; top_k 0.5 0.735 / 0.744 on seeds 2 / 3, and a deeper G alone 0.566 / 0.533 "
        "with D at chance, cpu_2026-12-05i/README.md; over eight draws on seeds 2 / 3, lr_schedule linear_half 0.742 "
        "/ 0.745 with FID 13.1 / 14.2, fake_multiple 16 0.746 with FID 9.7 on seed 2 for twice the step, "
        "cpu_2026-12-06/README.md); fake_multiple 4 12.1 / 12.9, 0.732 / 0.730, 0.864 / 0.856; one fake per real "
        "image 18.2 / 23.5, 0.688 / 0.684; fake_multiple 4 with lr 2e-3 10.9 / 13.2, 0.753 / 0.726 (split by seed); "
        "lr 2e-3 alone 21.1, 0.702, D's lr 5e-4 20.7, 0.676 (seed 0). The batch-64 eight-fake step cost 5.1x the "
        "one-fake step on one CPU thread (1,515 against 295 ms; the row's now 5.2x, 1,801 against 344 ms), so by "
        "minutes on a CPU the one-fake batch-64 row, run 5x the steps, comes close on seeds 0 / 1 (precision 0.753 at "
        "9,000 steps in cpu_2026-12-05e/README.md). Before (cpu_2026-12-05d/README.md, the evaluator of the earlier "
        "folders): d_depth 2 (two 3x3 convolutions after each of D's strided ones) with R1 3 FID 18.5 / 23.5, "
        "precision 0.699 / 0.693, recall 0.870 / 0.871; R1 1 22.4 / 22.3, 0.680 / 0.682; R1 10 (seed 0) 25.7, 0.693; "
        "R1 3 with linear_half, lr 5e-4 or lr_d 2e-3, R1 1 with linear_half, Adam (0, 0.9), EMA 0.995 or d_depth 3 "
        "(seed 0): precision 0.66-0.70. More real images per step wins by steps and loses by epochs "
        "(benchmarks/results/recipes/cpu_2026-12-05e/README.md), so batch 64 stayed until batch 128 with four fakes "
        "won at 1.12x the step: at 3,000 steps batch 128 15.3 / 16.0, precision 0.724 / 0.720, batch 384 9.0 / 9.3, "
        "0.758 / 0.755, but after the same 3 epochs batch 384 (468 steps) 119.7 against batch 64's (2,811 steps) "
        "19.5, and after the CLI's default 5 epochs 56.2 (780 steps) against 14.2 (4,685). Before "
        "(cpu_2026-12-05c/README.md): R1 0.1 FID 35.7 / 30.0, precision 0.668 / 0.665, recall 0.85 / 0.85; d_depth 2 "
        "alone 58.4 / 66.9, precision 0.633 / 0.632, recall 0.78 / 0.80, d_depth 1 65.7 / 70.2 (0.60 / 0.61), d_depth "
        "3 80.6 (seed 0) and the row without it 127.8 / 133.3 (0.55; cpu_2026-12-04_late/mnist_dcgan_row_cpu.md). "
        "Before: H200, by steps, seeds 0 / 1 (benchmarks/results/recipes/h200_2026-12-04/mnist_dcgan.md): lr 1e-3 + "
        "hinge FID 134.9 / 134.4, recall 0.82, against 174.0 / 173.3 (recall 0.78) for the dcgan row; lr 1e-3 alone "
        "148.2 / 135.3, hinge alone 183.6 / 172.6, lr_d 1e-3 174.1 / 159.4, Adam betas (0, 0.9) + hinge 159.0 / "
        "155.7, precision 0.52-0.56 in every one of those arms",
    ),
    Recipe(
        "dcgan-mnist-conditional",
        {"lr": 5e-4, "beta1": 0.0, "beta2": 0.9, "ema_decay": 0.999, "loss": "hinge"},
        arch="dcgan",
        conditional=True,
        dataset="mnist",
        evidence="by steps, MNIST conditional DCGAN at 3,000 steps, `edgegan eval -n 5000`, seeds 0 / 1 (2-core CPU, "
        "benchmarks/results/recipes/cpu_2026-12-04/): Adam betas (0, 0.9) + hinge + EMA 0.999 FID 9.36 / 9.17, label "
        "accuracy 98.7% / 98.2%, weakest class recall 0.767 / 0.777 (mnist_cdcgan_betas_cpu.md); with betas (0.5, "
        "0.999) 9.69 / 10.04, 98.5%, 0.742 / 0.754 (mnist_cdcgan_cpu.md), and with mode seeking 2 as well 15.2 / 14.2, "
        "97.2%, 0.742 / 0.766 (mnist_cdcgan_ms2_cpu.md). The dcgan row (bce, EMA 0.99): 12.30 / 11.20, 98.2%, 0.713 / "
        "0.756 (H200, benchmarks/results/recipes/h200_2026-12-04/mnist_cdcgan.md; there hinge alone 9.66 / 10.07 with "
        "weakest class 0.728 / 0.741, EMA 0.999 alone 11.31 / 11.34 with 0.733 / 0.766, lr 2e-4 15.4 / 17.6)",
    ),
    Recipe(
        "gan",
        {"lr": 5e-4, "ema_decay": 0.99},
        arch="gan",
        evidence="H200, by steps, MNIST MLP GAN at 3,000 steps: classifier-feature FID 235 with lr 5e-4 + EMA "
        "0.99 against 482 (2e-4, 0.999) and 376 (1e-3)",
    ),
    Recipe(
        "gan-mnist-unconditional",
        {
            "lr": 5e-4,
            "beta1": 0.0,
            "beta2": 0.9,
            "ema_decay": 0.995,
            "loss": "hinge",
            "r1": 3.0,
            "fake_multiple": 4,
            "out_decay": 3.0,
        },
        arch="gan",
        conditional=False,
        dataset="mnist",
        evidence="by steps, MNIST MLP GAN width 64 at 3,000 steps, `edgegan eval -n 5000`, seeds 0 / 1, 2-core CPU "
        "(benchmarks/results/recipes/cpu_2026-12-05g/README.md): 4 fakes per real image and out_decay 3 FID 78.2 / "
        "89.7, precision 0.824 / 0.824, recall 0.527 / 0.553, images with a salt dot (a lit pixel on black) 0.6% / "
        "0.5% (real test digits 0.2%), background haze 1.3% / 1.2%, against the gan-unconditional row's 96.6, "
        "0.817, 0.521, 3.0%, 1.9% (seed 0); 4 fakes alone 64.3, 0.779, 0.650, 3.6%, 0.9%; with R1 1 instead of "
        "3: out_decay 0 / 1 / 3 leave a salt dot in 5.3% / 2.6% / 0.4% of images",
    ),
    Recipe(
        "gan-unconditional",
        {"lr": 5e-4, "beta1": 0.0, "beta2": 0.9, "ema_decay": 0.995, "loss": "hinge", "r1": 3.0},
        arch="gan",
        conditional=False,
        evidence="by steps, MNIST MLP GAN width 64 at 3,000 steps, `edgegan eval -n 5000`, seeds 0 / 1, 2-core CPU "
        "(benchmarks/results/recipes/cpu_2026-12-05d/README.md): R1 3 FID 96.9 / 111.4, precision 0.823 / 0.814, "
        "recall 0.548 / 0.544, background haze (pixels > 10 levels farther than 2 px from any stroke; real 0%) 1.9% / "
        "1.9% against 5.3% / 4.9% without R1 (FID 101.2 / 110.0, precision 0.858 / 0.851, recall 0.497 / 0.512); R1 1 "
        "/ 5 / 10 (seed 0): FID 96.5 / 117.0 / 115.6, precision 0.844 / 0.795 / 0.782, haze 3.6% / 1.2% / 0.9%. Before "
        "(benchmarks/results/recipes/cpu_2026-12-04/): Adam betas (0, 0.9) FID 101.2 / 110.0, precision 0.855, recall "
        "0.504, isolated bright pixels 0.23% (mnist_gan_haze_cpu.md) against (0.5, 0.999) 131.4 / 134.1, 0.837, 0.414, "
        "0.43% (mnist_gan_cpu.md); EMA 0.995 over 0.99: 131.4 / 134.1 against 150.4 / 154.0 (H200, "
        "benchmarks/results/recipes/h200_2026-12-04/mnist_gan.md, where lr_d 1e-3, lr 2e-4 and lsgan were worse and "
        "the raw G scored 275: the EMA carries this model); hinge over bce: 142.0 / 141.4 against 172.5 / 163.8 "
        "(benchmarks/results/recipes/mnist_noise.md). Batch 64 stays "
        "(benchmarks/results/recipes/cpu_2026-12-05e/README.md): batch 256 with R1 2 scores 36.6 / 36.4 at 3,000 "
        "steps, precision 0.817 / 0.812, recall 0.73, but after the same 3 epochs 268 (703 steps) against batch 64's "
        "105 (2,811 steps), and 144 after the CLI's default 5 epochs",
    ),
)


def recipe_for(arch: str, conditional: bool, dataset: str) -> Recipe:
    """The most specific row of RECIPES matching the run (ties: the later row)."""
    rows = [r for r in RECIPES if r.matches(arch, conditional, dataset)]
    return max(reversed(rows), key=lambda r: r.specificity)


def apply_recipe(cfg: TrainConfig) -> TrainConfig:
    """-> a copy of `cfg` whose unset RECIPE_KEYS take the matching recipe's values (or BASE's), with
    `recipe` recording the row's name and what it filled. A config with every key set comes back unchanged."""
    unset = [key for key in RECIPE_KEYS if getattr(cfg, key) is None]
    if not unset:
        return cfg
    recipe = recipe_for(cfg.model.arch, cfg.conditional, cfg.dataset)
    filled = {key: recipe.values.get(key, BASE[key]) for key in unset}
    return replace(cfg, recipe={"name": recipe.name, "filled": filled}, **filled)


_V = TypeVar("_V")


def recipe_value(value: _V | None, key: str) -> _V:
    """A recipe key's value (RECIPE_KEYS), which apply_recipe fills before a run or a GANStep uses it; None is a bug."""
    if value is None:
        raise ValueError(f"TrainConfig.{key} is unset: apply_recipe fills it before a run or a GANStep uses it")
    return value


def parse_changes(text: str) -> dict[str, Any]:
    """ "lr=5e-4,ema_start=1000" -> {"lr": 0.0005, "ema_start": 1000}: ABLATABLE fields, parsed by their type and
    validated; ValueError names a key no training reads, a malformed value or one no run can use."""
    from edgegan.trainer.config import TrainConfig

    kinds = {f.name: str(f.type) for f in fields(TrainConfig)}  # "float | None": annotations are strings here
    changes: dict[str, Any] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or key not in ABLATABLE:
            raise ValueError(
                f"{text!r}: give KEY=VALUE[,KEY=VALUE] with KEY one of {', '.join(ABLATABLE)} "
                "(fields that change what a run learns)"
            )
        changes[key] = _parse_value(key, value, kinds[key])
    TrainConfig(**changes).validate()  # ConfigError (a ValueError) for a value no run can use
    return changes


def _parse_value(key: str, value: str, kind: str) -> Any:
    if "bool" in kind:
        if value.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError(f"{key}={value}: {key} takes true or false")
        return value.lower() in ("1", "true", "yes", "on")
    for name, cast in (("int", int), ("float", float)):
        if name in kind:
            try:
                return cast(value)
            except ValueError:
                raise ValueError(f"{key}={value}: {key} takes a number") from None
    return value
