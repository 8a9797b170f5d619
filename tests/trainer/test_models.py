from __future__ import annotations

import sys
from dataclasses import replace

import pytest
import torch

from edgegan.trainer.config import ModelConfig
from edgegan.trainer.models import build_discriminator, build_generator


@pytest.mark.parametrize("arch", ["gan", "dcgan"])
@pytest.mark.parametrize("size", [28, 32, 64, 128])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_shapes_at_every_size(arch, size, num_classes):
    channels = 3 if size == 32 else 1
    cfg = ModelConfig(arch=arch, nz=12, image_size=size, channels=channels, num_classes=num_classes, width=4)
    G, D = build_generator(cfg), build_discriminator(cfg)
    z = torch.randn(5, 12)
    y = torch.arange(5) % 10 if num_classes else None
    x = G(z, y)
    assert x.shape == (5, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    assert D(x, y).shape == (5,)


def test_dcgan_layout_follows_radford():
    cfg = ModelConfig(arch="dcgan", image_size=64, width=64)
    G, D = build_generator(cfg), build_discriminator(cfg)
    g_types = {type(m).__name__ for m in G.modules()}
    d_types = {type(m).__name__ for m in D.modules()}
    assert {"ConvTranspose2d", "BatchNorm2d", "ReLU", "Tanh"} <= g_types
    assert not g_types & {"MaxPool2d", "AvgPool2d", "Linear"}  # no pooling, no hidden fully-connected layers
    assert {"Conv2d", "BatchNorm2d", "LeakyReLU"} <= d_types and not d_types & {"MaxPool2d", "AvgPool2d"}
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 1]  # pytorch/examples' ladder at 64x64
    d_layers = list(D.features)
    assert isinstance(d_layers[0], torch.nn.Conv2d) and isinstance(d_layers[1], torch.nn.LeakyReLU)
    assert d_layers[1].negative_slope == 0.2
    # BatchNorm on every conv but the first
    d_convs = [i for i, m in enumerate(d_layers) if isinstance(m, torch.nn.Conv2d)]
    assert all(isinstance(d_layers[i + 1], torch.nn.BatchNorm2d) for i in d_convs[1:])
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for m in D.modules())
    # weights from N(0, 0.02)
    w = torch.cat([c.weight.flatten() for c in convs])
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.001


def test_dcgan_28_matches_reference_multiply_adds():
    # docs/reference_figures.md: the 28x28 DCGAN at width 64 spends 27.4 M multiply-adds per image.
    G = build_generator(ModelConfig(arch="dcgan", image_size=28, width=64))
    macs, size = 0, 1
    for m in G.modules():
        if isinstance(m, torch.nn.ConvTranspose2d):
            macs += size * size * m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            size = (size - 1) * m.stride[0] - 2 * m.padding[0] + m.kernel_size[0]
    assert size == 28 and abs(macs / 1e6 - 27.4) < 0.1


def test_gan_widths_grow_to_1024():
    G = build_generator(ModelConfig(arch="gan", width=64))
    widths = [m.out_features for m in G.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 512, 1024, 784]
    D = build_discriminator(ModelConfig(arch="gan", width=64))
    assert all(m.negative_slope == 0.2 for m in D.modules() if isinstance(m, torch.nn.LeakyReLU))


def test_conditional_generator_depends_on_label():
    cfg = ModelConfig(arch="dcgan", nz=8, image_size=28, num_classes=4, width=4)
    G = build_generator(cfg).eval()
    z = torch.randn(1, 8).repeat(4, 1)
    x = G(z, torch.arange(4))
    assert not torch.allclose(x[0], x[1])
    with pytest.raises(ValueError, match="conditional"):
        G(z)


@pytest.mark.parametrize("size", [0, 30, 48])
def test_bad_dcgan_sizes_are_refused(size):
    with pytest.raises(ValueError, match="power of two"):
        build_generator(ModelConfig(arch="dcgan", image_size=size))


@pytest.mark.parametrize("name", ["bce", "hinge", "lsgan"])
def test_losses_prefer_the_right_answer(name):
    from edgegan.trainer.losses import get_loss

    loss = get_loss(name)
    # The logits each loss calls "real" and "fake": lsgan regresses to targets 1 and 0, the others use the sign.
    real, fake = (1.0, 0.0) if name == "lsgan" else (3.0, -3.0)
    confident_real, confident_fake = torch.full((8,), real), torch.full((8,), fake)
    assert loss.d_real(confident_real) < loss.d_real(confident_fake)
    assert loss.d_fake(confident_fake) < loss.d_fake(confident_real)
    assert loss.g(confident_real) < loss.g(confident_fake)


@pytest.mark.parametrize("arch", ["gan", "dcgan"])
def test_conditional_discriminator_starts_unsaturated(arch):
    # The projection term must not dwarf the linear head at init, or BCE starts saturated (losses ~10-30).
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, image_size=28, num_classes=10, width=32)
    G, D = build_generator(cfg), build_discriminator(cfg)
    y = torch.arange(64) % 10
    logits = D(G(torch.randn(64, cfg.nz), y), y)
    assert logits.abs().mean() < 3


@pytest.mark.parametrize("arch, num_classes", [("dcgan", 0), ("dcgan", 10), ("gan", 10)])
def test_spectral_discriminator_has_unit_spectral_norms_and_no_batchnorm(arch, num_classes):
    """--d-norm spectral: every weight's largest singular value is 1 after power iteration, D keeps no batch
    statistics (its output for one image does not depend on the rest of the batch), and it starts unsaturated."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, image_size=28, num_classes=num_classes, width=16)
    D = build_discriminator(cfg, "spectral")
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in D.modules())
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    y = torch.arange(8) % num_classes if num_classes else None
    for _ in range(30):  # training-mode forwards run the power iteration
        D(x, y)
    weighted = [m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding))]
    assert weighted and all(hasattr(m, "parametrizations") for m in weighted)
    for m in weighted:
        w = m.weight.detach().reshape(m.weight.shape[0], -1)
        assert torch.linalg.matrix_norm(w, ord=2) == pytest.approx(1.0, abs=0.05), m
    D.eval()
    alone = D(x[:1], None if y is None else y[:1])
    assert torch.allclose(alone, D(x, y)[:1], atol=1e-5)
    assert D(x, y).abs().mean() < 3
    with pytest.raises(ValueError, match="spectral"):
        build_discriminator(cfg, "layer")


def test_the_registry_is_the_one_list_of_architectures():
    from edgegan.trainer.architectures import ARCHS
    from edgegan.trainer.cli import train as train_command
    from edgegan.trainer.models import ARCHITECTURES

    assert ARCHS == tuple(ARCHITECTURES) == ("gan", "dcgan")
    assert all(arch.name == name for name, arch in ARCHITECTURES.items())
    arch_option = next(p for p in train_command.params if p.name == "arch")
    assert tuple(arch_option.type.choices) == ARCHS
    assert [ModelConfig(arch=name, num_classes=3).conditioning for name in ARCHS] == ["cbn", "concat"]


def test_an_architecture_is_one_module_and_one_table_row(monkeypatch):
    import types

    from edgegan.trainer import architectures, models
    from edgegan.trainer.config import ConfigError, TrainConfig
    from edgegan.trainer.models import mlp

    # A new module with its SPEC and a row in trainer/architectures.py is all it takes: building, size validation,
    # conditioning and memory format follow it.
    module = types.ModuleType("edgegan_tiny_arch")
    module.SPEC = replace(
        mlp.SPEC,
        name="tiny",
        image_size_ok=lambda size: size == 8,
        g_conditioning="concat",
        image_size_error="tiny is 8x8 only, got {size}",
    )
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(architectures.ARCHITECTURE_MODULES, "tiny", module.__name__)
    monkeypatch.setattr(models, "ARCHITECTURES", models._load_specs())  # what importing trainer.models does
    cfg = ModelConfig(arch="tiny", nz=4, image_size=8, num_classes=2, width=2)
    G, D = build_generator(cfg), build_discriminator(cfg)
    y = torch.arange(3) % 2
    assert G(torch.randn(3, 4), y).shape == (3, 1, 8, 8) and D(G(torch.randn(3, 4), y), y).shape == (3,)
    assert cfg.conditioning == "concat" and G.join.embed is not None  # the registry's default label path
    assert TrainConfig(model=cfg).use_channels_last is False
    with pytest.raises(ConfigError, match="tiny is 8x8 only, got 16"):
        replace(cfg, image_size=16).validate()
    with pytest.raises(ConfigError, match="choose one of gan, dcgan, tiny"):
        ModelConfig(arch="huge").validate()


def test_channels_last_only_where_the_architecture_convolves():
    from edgegan.trainer.config import TrainConfig

    assert TrainConfig(model=ModelConfig(arch="dcgan")).use_channels_last
    assert not TrainConfig(model=ModelConfig(arch="dcgan"), channels_last=False).use_channels_last
    assert not TrainConfig(model=ModelConfig(arch="gan")).use_channels_last


@pytest.mark.parametrize("size, channels", [(28, 1), (32, 3), (64, 1)])
@pytest.mark.parametrize("norm", ["batch", "spectral"])
def test_d_depth_adds_a_3x3_convolution_after_each_strided_one(size, channels, norm):
    """--d-depth N: N stride-1 3x3 convolutions after each strided one, BatchNorm where the stage has one (not
    after the first), the same logits shape; 0 is the DCGAN paper's D."""
    cfg = ModelConfig(arch="dcgan", image_size=size, channels=channels, width=4)
    plain, deep = build_discriminator(cfg, norm), build_discriminator(cfg, norm, depth=2)
    strided = [m for m in plain.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.stride == (2, 2) for m in strided)
    convs = [m for m in deep.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 * len(strided)
    assert [m.kernel_size for m in convs if m.stride == (1, 1)] == [(3, 3)] * 2 * len(strided)
    layers = list(deep.features)
    after_first = layers[2:6]  # the first stage's two refinements: no BatchNorm, as its strided conv has none
    assert [isinstance(m, torch.nn.Conv2d) for m in after_first] == [True, False, True, False]
    assert all(isinstance(m, torch.nn.LeakyReLU) for m in after_first[1::2])
    if norm == "batch":
        later = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.Conv2d)][3:]
        assert all(isinstance(layers[i + 1], torch.nn.BatchNorm2d) for i in later)
    x = torch.rand(5, channels, size, size) * 2 - 1
    assert deep(x, None).shape == plain(x, None).shape == (5,)


def test_d_depth_adds_hidden_layers_to_the_mlp_d():
    cfg = ModelConfig(arch="gan", image_size=28, width=4)
    linears = [m.out_features for m in build_discriminator(cfg, depth=2).features if isinstance(m, torch.nn.Linear)]
    assert linears == [64, 32, 16, 16, 16]
