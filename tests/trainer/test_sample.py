"""trainer/sample.py: the one place the trainer runs G on the contract's latents (grid, diversity figure, torch bench
rows, the export's PyTorch reference)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from edgegan.runtime.contract import default_labels, draw_latents
from edgegan.trainer.config import ModelConfig
from edgegan.trainer.models import build_generator
from edgegan.trainer.sample import contract_inputs, generate_images

TRAINER = Path(__file__).resolve().parents[2] / "trainer"


def _generator(num_classes: int = 0) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_generator(ModelConfig(arch="dcgan", nz=16, width=8, num_classes=num_classes))


def test_contract_inputs_are_the_contract_latents_and_labels():
    z, y = contract_inputs(5, 3, 16, 4)
    assert z.dtype == torch.float32 and z.shape == (5, 16)
    assert np.array_equal(z.numpy(), draw_latents(5, 16, 3))
    assert y.dtype == torch.int64 and np.array_equal(y.numpy(), default_labels(5, 4))
    assert contract_inputs(5, 3, 16, 0)[1] is None
    assert contract_inputs(3, 3, 16, 4, labels=[2, 2, 1])[1].tolist() == [2, 2, 1]


def test_generate_images_runs_g_in_eval_mode_and_restores_training():
    G = _generator(num_classes=3).train()
    z, y = contract_inputs(6, 1, 16, 3)
    expected = G.eval()(z, y).detach().numpy()
    G.train()
    images = generate_images(G, 6, 1)
    assert G.training  # restored
    assert images.dtype == np.float32 and images.shape == (6, 1, 28, 28)
    assert np.array_equal(images, expected)


def test_a_generator_without_cfg_takes_nz_and_classes():
    G = _generator()

    class Wrapped(torch.nn.Module):  # like a DDP wrapper or a test double: no .cfg
        def __init__(self) -> None:
            super().__init__()
            self.inner = G

        def forward(self, z, y=None):
            return self.inner(z, y)

    assert np.array_equal(generate_images(Wrapped(), 4, 2, nz=16, num_classes=0), generate_images(G, 4, 2))


def test_no_other_trainer_module_draws_contract_latents():
    """Latents through G are written once: other trainer modules call contract_inputs / generate_images."""
    calls = re.compile(r"\b(draw_latents|default_labels)\(")
    others = [
        p.name
        for p in TRAINER.rglob("*.py")
        if p.name != "sample.py"
        and any(
            calls.search(line.split("#")[0]) and not line.lstrip().startswith(('"', "("))
            for line in p.read_text().splitlines()
        )
    ]
    assert others == []
