"""Training throughput, side by side: edgegan's training step vs a plain pytorch/examples-style DCGAN loop.

Both train the same DCGAN 28x28 (width 64: G 100 -> 256x7x7 -> 128x14x14 -> 1x28x28; D the mirror, 1x28x28 ->
128x14x14 -> 256x7x7 -> logit, with a 7x7 conv head where edgegan has the equal Linear) on the real
Fashion-MNIST, batch 64, BCE, Adam 2e-4 / (0.5, 0.999). Every configuration holds its own models and runs blocks
of `--steps` steps in turn, round after round (rotating who goes first), so drifting machine load hits all of them
alike; each row reports the median images/s over rounds and the median of its per-round ratio to the plain loop
run in the same round.

  plain     pytorch/examples' dcgan/main.py loop: a DataLoader (single process) over a map-style dataset that
            makes a PIL image per sample and applies ToTensor + Normalize((0.5,), (0.5,)) (torchvision's code,
            inlined: torchvision is not installed here); Sigmoid + BCELoss; errD_real.backward() and
            errD_fake.backward(); D not frozen in the G step; per-tensor Adam (PyTorch's CPU default); five
            `.item()` per step (D(x), D(G(z)) twice, both losses) as its progress print reads them.
  edgegan   edgegan.trainer.step.GANStep (what `edgegan train` runs) fed by edgegan.trainer.data.BatchSource, with train()'s
            bookkeeping: statistics summed on the device, read once every 10 steps. TrainConfig defaults.
  levers    edgegan with one setting changed, each its own row.

Usage: python -m benchmarks.train_throughput [--steps 2] [--rounds 30] [--threads 2] [--no-compile]
       [--only NAME ...] [--markdown benchmarks/results/train_throughput.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.examples_data import ExamplesFashionMNIST
from edgegan.runtime.cpu import cpu_info
from edgegan.runtime.evaluation.datasets import load_images
from edgegan.runtime.files import atomic_write
from edgegan.trainer.config import ModelConfig, TrainConfig
from edgegan.trainer.data import BatchSource
from edgegan.trainer.step import GANStep, StepStats, resolve_amp

REPO = Path(__file__).resolve().parents[1]

NZ, WIDTH, BATCH, LOG_EVERY = 100, 64, 64, 10


# ------------------------------------------------------------------------------------------------ the plain loop
class ExamplesGenerator(nn.Module):
    """pytorch/examples' netG laid out for 28x28: z [B, nz, 1, 1] -> [B, 1, 28, 28]."""

    def __init__(self, nz: int = NZ, ngf: int = WIDTH):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 7, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # state size. (ngf*4) x 7 x 7
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 14 x 14
            nn.ConvTranspose2d(ngf * 2, 1, 4, 2, 1, bias=False),
            nn.Tanh(),
            # state size. 1 x 28 x 28
        )

    def forward(self, z):
        return self.main(z)


class ExamplesDiscriminator(nn.Module):
    """pytorch/examples' netD laid out as edgegan's 28x28 D (ndf, 2*ndf channels) -> probabilities [B]."""

    def __init__(self, ndf: int = WIDTH):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 14 x 14
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*2) x 7 x 7
            nn.Conv2d(ndf * 2, 1, 7, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


def examples_weights_init(m: nn.Module) -> None:
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class ExamplesBatches:
    """pytorch/examples' DataLoader: shuffled, batch 64, the default single process; restarts at epoch end."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.loader = torch.utils.data.DataLoader(
            ExamplesFashionMNIST(images, labels), batch_size=BATCH, shuffle=True, num_workers=0
        )
        self._it = iter(self.loader)

    def next(self) -> list[torch.Tensor]:
        try:
            return next(self._it)
        except StopIteration:
            self._it = iter(self.loader)
            return next(self._it)


class PlainLoop:
    """pytorch/examples/dcgan/main.py's training loop body, step for step."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device, seed: int = 0):
        torch.manual_seed(seed)
        self.device = device
        self.netG = ExamplesGenerator().to(device)
        self.netG.apply(examples_weights_init)
        self.netD = ExamplesDiscriminator().to(device)
        self.netD.apply(examples_weights_init)
        self.criterion = nn.BCELoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.batches = ExamplesBatches(images, labels)
        self.last: tuple = ()

    def run(self, steps: int) -> None:
        real_label, fake_label = 1.0, 0.0
        netD, netG, criterion, device = self.netD, self.netG, self.criterion, self.device
        for _ in range(steps):
            data = self.batches.next()
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            netD.zero_grad()
            real_cpu = data[0].to(device)
            batch_size = real_cpu.size(0)
            label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=device)
            output = netD(real_cpu)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = output.mean().item()
            noise = torch.randn(batch_size, NZ, 1, 1, device=device)
            fake = netG(noise)
            label.fill_(fake_label)
            output = netD(fake.detach())
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = output.mean().item()
            errD = errD_real + errD_fake
            self.optimizerD.step()
            # (2) Update G network: maximize log(D(G(z)))
            netG.zero_grad()
            label.fill_(real_label)
            output = netD(fake)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = output.mean().item()
            self.optimizerG.step()
            self.last = (errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)  # what its print line shows


# ------------------------------------------------------------------------------------------------ edgegan
class EdgeganLoop:
    """train()'s per-step work: a batch from BatchSource, GANStep.step, on-device statistics read every 10 steps."""

    def __init__(self, data, cfg: TrainConfig, device: torch.device, sync_every_step: bool = False, **engine_kw):
        cfg.validate()
        self.engine = GANStep(cfg, device, **engine_kw)
        self.source = BatchSource(
            data, self.engine.cfg.batch_size, cfg.seed, device, channels_last=cfg.use_channels_last
        )
        self.stats = StepStats(device)
        self.sync_every_step = sync_every_step
        self.t = 0
        self.last: dict = {}

    def run(self, steps: int) -> None:
        for _ in range(steps):
            epoch, index = divmod(self.t, self.source.steps_per_epoch)
            x, y = self.source.batch(epoch, index)
            out = self.engine.step(x, y, self.t)
            self.t += 1
            self.stats.add(out, self.t)
            if self.sync_every_step:
                out.tolist()  # what a per-step progress print costs: one read-back per step
            if self.t % LOG_EVERY == 0 or self.sync_every_step:
                int(self.stats.first_bad.item())  # train()'s NaN check
                self.last = self.stats.mean()


class DataLoaderEdgeganLoop(EdgeganLoop):
    """edgegan's step, but fed by the plain loop's DataLoader (to price the data path alone)."""

    def __init__(self, data, cfg: TrainConfig, device: torch.device):
        super().__init__(data, cfg, device)
        self.batches = ExamplesBatches(data.images, data.labels)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            x, _ = self.batches.next()
            x = x.to(self.source.device)
            if self.engine.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out = self.engine.step(x, None, self.t)
            self.t += 1
            self.stats.add(out, self.t)
            if self.t % LOG_EVERY == 0:
                int(self.stats.first_bad.item())
                self.last = self.stats.mean()


@dataclass
class Row:
    name: str
    what: str
    make: Callable[[], object]
    times: list[float] | None = None  # wall seconds per block, one per round
    cpu: list[float] | None = None  # process CPU seconds per block (all threads)
    ratios: list[float] | None = None  # plain block time / this block time, same round
    setup_s: float = 0.0
    error: str | None = None


def build_rows(data, device: torch.device, compile_: bool, base: TrainConfig) -> list[Row]:
    def edge(what: str, cfg_changes: dict | None = None, **kw) -> Callable[[], object]:
        return lambda: EdgeganLoop(data, replace(base, **(cfg_changes or {})), device, **kw)

    amp = resolve_amp(base.amp, device)
    flip_amp = "off" if amp == "bf16" else "bf16"
    rows = [
        Row("plain", "pytorch/examples-style loop (baseline)", lambda: PlainLoop(data.images, data.labels, device)),
        Row(
            "edgegan",
            f"edgegan defaults (channels_last={base.channels_last}, amp={base.amp} -> {amp}, fused Adam, "
            "D frozen in G step, EMA, syncs every 10 steps)",
            edge("defaults"),
        ),
        Row(
            "channels_last",
            f"edgegan, channels_last={not base.channels_last}",
            edge("", {"channels_last": not base.channels_last}),
        ),
        Row("amp", f"edgegan, amp={flip_amp}", edge("", {"amp": flip_amp})),
        Row(
            "amp_channels_last",
            f"edgegan, amp={flip_amp} and channels_last={not base.channels_last}",
            edge("", {"amp": flip_amp, "channels_last": not base.channels_last}),
        ),
        Row("adam_foreach", "edgegan, foreach Adam instead of fused", edge("", adam="foreach")),
        Row("adam_loop", "edgegan, per-tensor (for-loop) Adam instead of fused", edge("", adam="for-loop")),
        Row("d_unfrozen", "edgegan, D not frozen in the G step", edge("", freeze_d=False)),
        Row("sync_each_step", "edgegan, statistics read back every step", edge("", sync_every_step=True)),
        Row("no_ema", "edgegan, EMA off", edge("", {"ema": False})),
        Row(
            "dataloader",
            "edgegan step fed by the plain loop's DataLoader",
            lambda: DataLoaderEdgeganLoop(data, base, device),
        ),
    ]
    if compile_:
        rows.append(Row("compile", "edgegan, torch.compile(G, D) (inductor)", edge("", {"compile": True})))
    return rows


def measure(rows: list[Row], steps: int, rounds: int, warmup: int) -> None:
    runners = {}
    for row in rows:
        t0 = time.perf_counter()
        try:
            runner = row.make()
            runner.run(warmup)  # first steps: allocator, oneDNN primitive cache, compilation
        except Exception as exc:  # a lever that cannot run here (e.g. torch.compile without a compiler)
            row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            print(f"  {row.name}: failed: {row.error}", file=sys.stderr)
            continue
        row.setup_s = time.perf_counter() - t0
        row.times, row.cpu, row.ratios = [], [], []
        runners[row.name] = runner
        print(f"  {row.name}: set up and warmed up in {row.setup_s:.1f} s", file=sys.stderr)
    live = [r for r in rows if r.error is None]
    for k in range(rounds):
        order = live[k % len(live) :] + live[: k % len(live)]  # rotate who goes first
        block, cpu = {}, {}
        for row in order:
            c0, t0 = time.process_time(), time.perf_counter()
            runners[row.name].run(steps)
            block[row.name], cpu[row.name] = time.perf_counter() - t0, time.process_time() - c0
        for row in live:
            row.times.append(block[row.name])
            row.cpu.append(cpu[row.name])
            row.ratios.append(block["plain"] / block[row.name])
        print(
            f"  round {k + 1}/{rounds}: " + ", ".join(f"{r.name} {steps * BATCH / block[r.name]:.0f}" for r in live),
            file=sys.stderr,
        )


def render(rows: list[Row], args, base: TrainConfig, load: tuple[str, str]) -> str:
    plain = next(r for r in rows if r.name == "plain")
    edge = next(r for r in rows if r.name == "edgegan")
    cpu = cpu_info()["model"]
    lines = [
        "# Training throughput: edgegan vs a pytorch/examples-style loop",
        "",
        f"DCGAN 28x28, width {WIDTH}, batch {BATCH}, BCE, Adam 2e-4/(0.5, 0.999), real Fashion-MNIST; device {args.device}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, {cpu}. {args.rounds} rounds of {args.steps} steps "
        f"per configuration, interleaved (rotating order), after {args.warmup} warm-up steps. Load average before / "
        f"after: {load[0]} / {load[1]}.",
        "",
        "| configuration | images/s (median) | images/s (best block) | vs plain loop (median of per-round ratios) "
        "| per-round ratio, quartiles | vs plain, CPU time | vs edgegan defaults |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if row.error:
            lines.append(f"| {row.what} | failed: {row.error} | | | | | |")
            continue
        ips = statistics.median(args.steps * BATCH / t for t in row.times)
        ratio = statistics.median(row.ratios)
        vs_edge = statistics.median(e / t for e, t in zip(edge.times, row.times))
        lo, _, hi = statistics.quantiles(row.ratios, n=4) if len(row.ratios) > 1 else (ratio, ratio, ratio)
        best = args.steps * BATCH / min(row.times)
        cpu_ratio = statistics.median(p / c for p, c in zip(plain.cpu, row.cpu))
        setup = f" (setup + warm-up {row.setup_s:.0f} s)" if row.setup_s > 30 or row.name == "compile" else ""
        lines.append(
            f"| {row.what}{setup} | {ips:.0f} | {best:.0f} | {ratio:.2f}x | {lo:.2f}–{hi:.2f} | {cpu_ratio:.2f}x "
            f"| {vs_edge:.2f}x |"
        )
    plain_ips = [args.steps * BATCH / t for t in plain.times]
    spread = [statistics.pstdev(r.times) / statistics.mean(r.times) for r in rows if r.times and len(r.times) > 1]
    lines += [
        "",
        f"Noise: the plain loop ran at {min(plain_ips):.0f}–{max(plain_ips):.0f} images/s across rounds (median "
        f"{statistics.median(plain_ips):.0f}); block times varied by {100 * statistics.median(spread):.0f}% (coefficient "
        "of variation, median over rows) as other processes came and went on the same cores.",
        "Ratios compare blocks run back to back in the same round, so they drift less than absolute images/s. "
        "'CPU time' compares process CPU seconds per block (all threads; OpenMP spin-waits included).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--steps", type=int, default=2, help="steps per block (short blocks: load shifts less within a round)"
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10, help="steps each configuration runs before timing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder (default: the usual search)")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile row")
    parser.add_argument("--only", nargs="*", help="row names to run (plain and edgegan always run)")
    parser.add_argument("--markdown", default=str(REPO / "benchmarks" / "results" / "train_throughput.md"))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = load_images("fashion-mnist", "train", data_dir=args.data_dir, progress=False)
    base = TrainConfig(
        model=ModelConfig(arch="dcgan", nz=NZ, image_size=28, width=WIDTH, channels=1),
        dataset="fashion-mnist",
        batch_size=BATCH,
        device=args.device,
        d_depth=0,  # the plain loop's D: the same networks on both sides (the row's deeper D is a quality choice)
        r1=0.0,  # nor R1's double backward: the same work per step on both sides
    )
    rows = build_rows(data, device, args.compile, base)
    if args.only:
        rows = [r for r in rows if r.name in {"plain", "edgegan", *args.only}]
    load_before = f"{os.getloadavg()[0]:.1f}"
    measure(rows, args.steps, args.rounds, args.warmup)
    load_after = f"{os.getloadavg()[0]:.1f}"
    text = render(rows, args, base, (load_before, load_after))
    print(text)
    if args.markdown:
        out = Path(args.markdown)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda f: f.write(text), binary=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
