"""Does a discrete latent code fix the unconditional MNIST DCGAN's broken digits (issue "Defaults that win")?

The conditional DCGAN draws clean digits and the unconditional one, same code, draws broken ones and in-betweens
(benchmarks/results/recipes/mnist_noise.md: a continuous G stretched over ten disconnected digits). This asks
whether a label-like input G invents for itself is enough: an InfoGAN categorical code (Chen et al. 2016) read
from z, c = argmax(z[:, :K]) (uniform over K for iid normal z, so the exported model still takes z alone), fed to
G like a label ("concat": an embedding joined to z; "cbn": class-conditional BatchNorm), and a Q head on D's
features that G and D train to recover c (cross-entropy, weight `--lam`). `--k 0` is the control: the plain
unconditional G and D, which must reproduce the recipe row.

Training mirrors the `dcgan-mnist-unconditional` recipe row (hinge, Adam lr 1e-3, betas (0.5, 0.999), EMA 0.99 of
G's weights, standing BatchNorm statistics for the EMA G) with its own simple loop (random batches of 64, one thread);
the EMA G is exported with the contract metadata `edgegan eval` reads. Usage, from the repository root:

    python -m benchmarks.probes.infogan_code --k 10 --cond cbn --out runs/info_cbn.onnx
    edgegan eval runs/info_cbn.onnx --dataset mnist -n 5000 --evaluator EVALUATOR.onnx

Result: benchmarks/results/recipes/cpu_2026-12-05/infogan_code.md.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from edgegan.runtime.evaluation.datasets import load_images
from edgegan.trainer.config import ModelConfig
from edgegan.trainer.models import build_discriminator, build_generator
from edgegan.trainer.step import EMA

BATCH = 64


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=10, help="categories of the code (0: no code, the control)")
    p.add_argument("--cond", choices=("concat", "cbn"), default="cbn", help="how G takes the code")
    p.add_argument("--lam", type=float, default=1.0, help="weight of the code's cross-entropy")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ema", type=float, default=0.99)
    p.add_argument("--out", required=True, help="the EMA G as ONNX")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    images = torch.from_numpy(np.asarray(load_images("mnist", "train").images)).float()
    x_all = images.reshape(-1, 1, 28, 28) / 127.5 - 1.0  # [60000, 1, 28, 28] in [-1, 1]
    k = a.k
    G = build_generator(ModelConfig(num_classes=k, g_conditioning=a.cond))
    D = build_discriminator(ModelConfig())
    Q = nn.Linear(D.head.linear.in_features, max(k, 1))  # code logits from D's features [B, F]
    nn.init.normal_(Q.weight, 0.0, 0.02)
    nn.init.zeros_(Q.bias)
    opt_g = torch.optim.Adam(G.parameters(), lr=a.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*D.parameters(), *Q.parameters()], lr=a.lr, betas=(0.5, 0.999))
    ema = EMA(G, a.ema)  # updated below by a plain lerp (no warm-up): the loop this probe measured
    gen = torch.Generator().manual_seed(a.seed + 1)

    def code(z: torch.Tensor) -> torch.Tensor | None:
        return z[:, :k].argmax(1) if k else None  # [B] int64

    start = time.time()
    for step in range(a.steps):
        x = x_all[torch.randint(x_all.shape[0], (BATCH,), generator=gen)]
        z = torch.randn(BATCH, 100, generator=gen)
        c = code(z)
        fake = G(z, c)
        D.requires_grad_(True)
        opt_d.zero_grad()
        h_fake = D.features(fake.detach())
        loss_d = F.relu(1 - D(x)).mean() + F.relu(1 + D.head(h_fake, None)).mean()
        if k:
            loss_d = loss_d + a.lam * F.cross_entropy(Q(h_fake), c)
        loss_d.backward()
        opt_d.step()
        D.requires_grad_(False)
        opt_g.zero_grad()
        h = D.features(fake)
        loss_g = -D.head(h, None).mean()
        if k:
            loss_g = loss_g + a.lam * F.cross_entropy(Q(h), c)
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            for pe, pg in zip(ema.model.parameters(), G.parameters()):
                pe.lerp_(pg, 1 - a.ema)
        if step % 250 == 0:
            acc = (Q(h).argmax(1) == c).float().mean().item() if k else float("nan")
            print(
                f"step {step}: loss D {loss_d.item():.3f}, G {loss_g.item():.3f}, code recovered {acc:.2f}, "
                f"{time.time() - start:.0f} s",
                flush=True,
            )

    def draw() -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn(256, 100, generator=gen)  # [256, nz]
        return z, code(z)

    with torch.no_grad():  # the EMA G's own BatchNorm statistics, as the trainer's EMA ships them
        ema.standing_statistics(draw, 16)

    class FromZ(nn.Module):  # z [B, 100] -> images [B, 1, 28, 28]: the code is read from z inside the graph
        def __init__(self, g: nn.Module):
            super().__init__()
            self.g = g

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.g(z, code(z))

    torch.onnx.export(
        FromZ(ema.model).eval(),
        (torch.randn(2, 100),),
        a.out,
        input_names=["z"],
        output_names=["image"],
        dynamic_axes={"z": {0: "batch"}, "image": {0: "batch"}},
        opset_version=18,
        dynamo=False,
    )
    model = onnx.load(a.out)
    meta = {
        "edgegan.format": "1",
        "edgegan.arch": "dcgan",
        "edgegan.nz": "100",
        "edgegan.num_classes": "0",
        "edgegan.class_names": "[]",
        "edgegan.image": json.dumps({"channels": 1, "height": 28, "width": 28}),
        "edgegan.output": "float_nchw",
        "edgegan.precision": "fp32",
        "edgegan.dataset": "mnist",
        "edgegan.latent_rule": "splitmix64-ppnd7-v1",
        "edgegan.train": json.dumps(
            {"config_digest": f"infogan-probe-k{k}-{a.cond}", "ema": True, "epoch": 0, "seed": a.seed, "step": a.steps}
        ),
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, a.out)
    print(f"wrote {a.out} after {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
