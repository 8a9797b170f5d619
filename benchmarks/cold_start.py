"""Cold start, side by side: a fresh process that loads a DCGAN 28x28 generator (width 64) and writes one PNG.

Each path runs as its own `python -c` child, repeated and interleaved (a, b, c, a, b, c, ...) so drifting machine
load hits all of them alike; the table gives medians of wall time (spawn to exit) and peak resident memory
(the child's own ru_maxrss from os.wait4, not the parent's):

  runtime   `from edgegan.runtime import Generator` -> Generator(generator.onnx).sample(1, seed=0) -> save_png
  torch     import torch, build G (edgegan.trainer.models), load the weights, one image, Pillow PNG
  ort       a bare onnxruntime script: InferenceSession (onnxruntime's default options), run, Pillow PNG
  floor     `python -c` printing one line: the interpreter start every row pays
  (+ runtime variants: threads=1, onnxruntime's default session options, the .ort file, the pre-optimized model
   of providers.optimized_model read with graph optimization off, and the source compiled at every start)

Python's bytecode is cached for the children (PYTHONPYCACHEPREFIX in a temporary folder, filled by the warm-up run),
as it is for an installed package; PYTHONDONTWRITEBYTECODE=1 would make every start compile edgegan's modules
(the row "runtime, no bytecode cache" shows that cost). The summary gives, per interleaved pair, runtime / bare
onnxruntime for wall time and peak memory: the median and the range over the pairs. Every runtime row must write
the same PNG bytes as "runtime" (checked; the .ort file, optimised at the 'basic' level, is the exception).

The model is made here: a DCGAN with non-trivial BatchNorm statistics, exported with `export` when that
package provides export_checkpoint, else with torch.onnx.export plus the contract metadata.

Usage: python -m benchmarks.cold_start [--repeat 7] [--json F] [--markdown F] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NZ, WIDTH, SIZE = 100, 64, 28

# Each child prints one JSON line of phase times (seconds since its first line ran) on stdout.
RUNTIME = """
import time; t0 = time.perf_counter()
from edgegan.runtime import Generator
from edgegan.runtime.images import save_png
from edgegan.runtime.providers import session_options  # already loaded by Generator: costs nothing
t1 = time.perf_counter()
g = Generator({model!r}{options})
t2 = time.perf_counter()
image = g.sample(1, seed=0)[0]
t3 = time.perf_counter()
save_png(image, {png!r})
t4 = time.perf_counter()
print('{{"import": %f, "load": %f, "run": %f, "png": %f}}' % (t1 - t0, t2 - t1, t3 - t2, t4 - t3))
"""

TORCH = """
import time; t0 = time.perf_counter()
import numpy as np, torch
from PIL import Image
from edgegan.trainer.config import ModelConfig
from edgegan.trainer.models import build_generator
t1 = time.perf_counter()
G = build_generator(ModelConfig(arch="dcgan", nz={nz}, image_size={size}, channels=1, width={width}))
G.load_state_dict(torch.load({weights!r}, weights_only=True))
G.eval()
t2 = time.perf_counter()
with torch.no_grad():
    z = torch.from_numpy(np.random.default_rng(0).standard_normal((1, {nz}), dtype=np.float32))
    x = G(z)[0, 0].numpy()  # [H, W] in [-1, 1]
t3 = time.perf_counter()
Image.fromarray(np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8)).save({png!r})
t4 = time.perf_counter()
print('{{"import": %f, "load": %f, "run": %f, "png": %f}}' % (t1 - t0, t2 - t1, t3 - t2, t4 - t3))
"""

ORT = """
import time; t0 = time.perf_counter()
import numpy as np, onnxruntime as ort
from PIL import Image
t1 = time.perf_counter()
session = ort.InferenceSession({model!r}, providers=["CPUExecutionProvider"])
t2 = time.perf_counter()
z = np.random.default_rng(0).standard_normal((1, {nz}), dtype=np.float32)
x = session.run(None, {{"z": z}})[0][0, 0]  # [H, W] in [-1, 1]
t3 = time.perf_counter()
Image.fromarray(np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8)).save({png!r})
t4 = time.perf_counter()
print('{{"import": %f, "load": %f, "run": %f, "png": %f}}' % (t1 - t0, t2 - t1, t3 - t2, t4 - t3))
"""

# What a user types: the click group, the lazy `sample` command, Generator, save_grid (phases not split).
CLI = """
from edgegan.cli import main
main(["sample", {model!r}, "-n", "1", "-o", {png!r}], standalone_mode=False)
print('{{"import": 0, "load": 0, "run": 0, "png": 0}}')
"""

# The interpreter alone (site-packages .pth hooks included): what every row pays before its first line.
PYTHON = """print('{"import": 0, "load": 0, "run": 0, "png": 0}')"""


def build_models(folder: Path) -> dict[str, Path]:
    """Train-mode forwards for BatchNorm statistics, then G weights (torch path) and generator.onnx (+ .ort)."""
    import torch

    from edgegan.trainer.config import ModelConfig, TrainConfig
    from edgegan.trainer.models import build_generator

    torch.manual_seed(0)
    cfg = TrainConfig(
        model=ModelConfig(arch="dcgan", nz=NZ, image_size=SIZE, channels=1, width=WIDTH), dataset="fashion-mnist"
    )
    G = build_generator(cfg.model)
    G.train()
    with torch.no_grad():
        for _ in range(3):
            G(torch.randn(64, NZ))  # moves BatchNorm running stats away from 0/1
    G.eval()
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "G.pt"
    torch.save(G.state_dict(), weights)
    onnx_path = folder / "generator.onnx"
    how = _export_with_pipeline(G, cfg, folder) or _export_with_parts(G, onnx_path) or _export_plain(G, onnx_path)
    ort_path = folder / "generator.ort"
    _save_ort(onnx_path, ort_path)
    from edgegan.runtime.providers import optimized_model

    preopt = optimized_model(onnx_path, folder)  # the offline step; a later process finds the file
    return {"weights": weights, "onnx": onnx_path, "ort": ort_path, "preopt": preopt, "exported_by": how}


def _export_with_pipeline(G, cfg, folder: Path) -> str | None:
    """Use edgegan.export.pipeline.export_checkpoint when it exists (the model users ship); None when it does not."""
    try:
        from edgegan.export.pipeline import export_checkpoint
    except ImportError:
        return None
    from edgegan.trainer.checkpoint import save_weights_checkpoint

    ckpt = folder / "last.pt"
    save_weights_checkpoint(cfg, G.state_dict(), ckpt)
    export_checkpoint(ckpt, folder)
    return "edgegan.export.pipeline.export_checkpoint"


def _contract():
    """The contract of the timed model (DCGAN 28x28, NZ latents, unconditional): both export paths stamp it."""
    from edgegan.runtime.contract import GeneratorContract

    return GeneratorContract(
        arch="dcgan",
        nz=NZ,
        num_classes=0,
        channels=1,
        height=SIZE,
        width=SIZE,
        dataset="fashion-mnist",
        train={"step": 0},
    )


def _export_with_parts(G, onnx_path: Path) -> str | None:
    """edgegan.export.onnx.export_generator (+ edgegan.export.graph_forms.optimize_fp32) while edgegan.export.pipeline is not there."""
    try:
        import onnx

        from edgegan.export.onnx import export_generator
    except ImportError:
        return None
    contract = _contract()
    model, _ = export_generator(G, contract)
    how = "edgegan.export.onnx.export_generator"
    try:
        from edgegan.export.graph_forms import optimize_fp32
    except ImportError:
        pass
    else:
        model, how = optimize_fp32(model), how + " + edgegan.export.graph_forms.optimize_fp32"
    onnx.save(model, str(onnx_path))
    return how


def _export_plain(G, onnx_path: Path) -> str:
    """torch.onnx.export (TorchScript exporter, opset 18) plus the contract metadata."""
    import onnx
    import torch

    torch.onnx.export(
        G,
        (torch.zeros(1, NZ),),
        str(onnx_path),
        input_names=["z"],
        output_names=["image"],
        dynamic_axes={"z": {0: "batch"}, "image": {0: "batch"}},
        opset_version=18,
        dynamo=False,
    )
    model = onnx.load(str(onnx_path))
    contract = _contract()
    for key, value in contract.to_metadata().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(onnx_path))
    return "torch.onnx.export (opset 18, TorchScript exporter)"


def _save_ort(onnx_path: Path, ort_path: Path) -> None:
    """The ORT-format twin (what export's --ort-format writes), optimised at the portable 'basic' level."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(ort_path)
    options.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def build_models_in_child(folder: Path) -> dict[str, Path]:
    """build_models in a separate process: this one never imports torch, so its resident size stays small.

    (A child's ru_maxrss starts from the RSS of the process that forked it; a parent holding torch would make
    every child look like 300+ MiB.)
    """
    code = (
        "import json, sys; from pathlib import Path; "
        "from benchmarks.cold_start import build_models; "  # `python -c` in REPO: the root is on sys.path
        "print(json.dumps({k: str(v) for k, v in build_models(Path(sys.argv[1])).items()}))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the models failed:\n{proc.stderr}")
    built = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: (v if k == "exported_by" else Path(v)) for k, v in built.items()}


# Rows that run Generator + save_png with onnxruntime's full optimization: their PNG bytes must equal "runtime"'s.
SAME_IMAGE = (
    "runtime, threads=1",
    "runtime, ORT default options",
    "runtime, pre-optimized model",
    "runtime, no bytecode cache",
)
NO_BYTECODE = "runtime, no bytecode cache"


def scripts(models: dict[str, Path], folder: Path) -> dict[str, str]:
    """Row name -> the child's code; each row writes its own PNG in `folder` (png_path) so they can be compared."""
    onnx_model, ort_model, preopt = str(models["onnx"]), str(models["ort"]), str(models["preopt"])

    def runtime(model: str, options: str, name: str) -> str:
        return RUNTIME.format(model=model, options=options, png=png_path(folder, name))

    return {
        "runtime": runtime(onnx_model, "", "runtime"),
        "runtime, threads=1": runtime(onnx_model, ", threads=1", "runtime, threads=1"),
        "runtime, ORT default options": runtime(
            onnx_model, ", session_options=__import__('onnxruntime').SessionOptions()", "runtime, ORT default options"
        ),
        "runtime, pre-optimized model": runtime(
            preopt,
            ", session_options=session_options(spinning=False, graph_optimization='disable')",
            "runtime, pre-optimized model",
        ),
        "runtime, .ort file": runtime(ort_model, "", "runtime, .ort file"),
        NO_BYTECODE: runtime(onnx_model, "", NO_BYTECODE),
        "torch": TORCH.format(
            weights=str(models["weights"]), nz=NZ, size=SIZE, width=WIDTH, png=png_path(folder, "torch")
        ),
        "edgegan sample -n 1": CLI.format(model=onnx_model, png=png_path(folder, "edgegan sample -n 1")),
        "bare onnxruntime": ORT.format(model=onnx_model, nz=NZ, png=png_path(folder, "bare onnxruntime")),
        "python only (floor)": PYTHON,
    }


def png_path(folder: Path, name: str) -> str:
    return str(folder / ("".join(c if c.isalnum() else "_" for c in name) + ".png"))


def child_env(name: str, pycache: Path) -> dict[str, str]:
    """The children's environment: bytecode cached in `pycache` (as an installed package has it), except the row
    that shows what compiling every module at every start costs."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    if name == NO_BYTECODE:
        env.pop("PYTHONPYCACHEPREFIX")  # site-packages keep their installed __pycache__; edgegan's source has none
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_child(code: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """One fresh interpreter: wall seconds from spawn to exit, its own peak RSS (MiB) and phase times."""
    env = env or dict(os.environ)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)  # this child's rusage alone (RUSAGE_CHILDREN would take the max)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{err}")
    phases = json.loads(out.strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mib": usage.ru_maxrss / 1024,
        **phases,
    }  # ru_maxrss is KiB on Linux; CPU time is steadier than wall time on a shared machine


def machine() -> str:
    """CPU model, SIMD flags, cores and library versions: the line every figure of this file is tied to."""
    from edgegan.runtime.bench.machine import cpu_summary  # here: the parent measures nothing, its children do

    code = "import numpy, onnxruntime, PIL; print(numpy.__version__, onnxruntime.__version__, PIL.__version__)"
    versions = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split()
    cpu = cpu_summary()
    return (
        f"{cpu}; python {sys.version.split()[0]}, numpy {versions[0]}, onnxruntime {versions[1]}, Pillow {versions[2]}"
        if len(versions) == 3
        else cpu
    )


def pair_ratios(runs: dict[str, list[dict[str, float]]], name: str, base: str, key: str) -> str:
    """name / base for each interleaved pair (repeat i of both): 'median (min-max over N pairs)'."""
    ratios = sorted(a[key] / b[key] for a, b in zip(runs[name], runs[base]))
    return f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f} over {len(ratios)} pairs)"


def same_images(folder: Path, names: list[str]) -> dict[str, bool]:
    """Whether each row's PNG holds the same bytes as the "runtime" row's."""
    reference = Path(png_path(folder, "runtime")).read_bytes()
    return {name: Path(png_path(folder, name)).read_bytes() == reference for name in names}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", nargs="*", help="run only these paths (names as in the table)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--keep", type=Path, help="build the models here and keep them")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        models = build_models_in_child(folder)
        paths = scripts(models, Path(tmp))
        if args.only:
            paths = {k: v for k, v in paths.items() if k in args.only}
        envs = {name: child_env(name, Path(tmp) / "pycache") for name in paths}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
        for name, code in paths.items():  # warm the page cache and the bytecode cache once per path; not counted
            run_child(code, envs[name])
        for _ in range(args.repeat):
            for name, code in paths.items():
                runs[name].append(run_child(code, envs[name]))
        checked = [n for n in SAME_IMAGE if n in paths] if "runtime" in paths else []
        identical = same_images(Path(tmp), checked) if checked else {}

    load_after = os.getloadavg()[0]  # wall times on a busy machine stretch; say how busy it was
    keys = ("wall_s", "cpu_s", "peak_mib", "import", "load", "run", "png")
    table = {name: {k: statistics.median(r[k] for r in rows) for k in keys} for name, rows in runs.items()}
    lines = [
        f"Cold start: fresh process, DCGAN {SIZE}x{SIZE} (width {WIDTH}, nz {NZ}), one PNG; medians of {args.repeat} "
        f"interleaved runs; model by {models['exported_by']}; bytecode cached",
        f"Machine: {machine()}; load average {load_before:.1f} at the start, {load_after:.1f} at the end",
        "",
        "| path | wall s | CPU s | peak MiB | import s | load s | run s | png s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in table.items():
        lines.append(
            f"| {name} | {row['wall_s']:.3f} | {row['cpu_s']:.3f} | {row['peak_mib']:.1f} | {row['import']:.3f} | "
            f"{row['load']:.3f} | {row['run']:.3f} | {row['png']:.3f} |"
        )
    if "bare onnxruntime" in runs:
        lines.append("")
        for name in (n for n in runs if n.startswith("runtime")):
            ratios = {k: pair_ratios(runs, name, "bare onnxruntime", k) for k in ("wall_s", "cpu_s", "peak_mib")}
            lines.append(
                f"{name} / bare onnxruntime: wall {ratios['wall_s']}, CPU {ratios['cpu_s']}, "
                f"peak memory {ratios['peak_mib']}"
            )
    if identical:
        lines += [
            "",
            "Same PNG bytes as 'runtime': "
            + ", ".join(f"{n}: {'yes' if same else 'NO'}" for n, same in identical.items()),
        ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")
    result = {
        "median": table,
        "runs": runs,
        "repeat": args.repeat,
        "exported_by": models["exported_by"],
        "same_png": identical,
        "machine": machine(),
        "load_average": [load_before, load_after],
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    if identical and not all(identical.values()):
        raise SystemExit("a runtime row wrote different PNG bytes from 'runtime' (see above)")
    return result


if __name__ == "__main__":
    main()
