"""Where a cold start's time goes: the runtime path and the bare onnxruntime script of cold_start.py, phase by phase.

Two views, both from fresh interpreters run in interleaved pairs (runtime, bare, runtime, bare, ...) with bytecode
cached as cold_start.py does:

  phases   each step timed inside the child: numpy import, edgegan's own modules, onnxruntime import,
           InferenceSession (timed by wrapping its __init__), the rest of Generator() (the external-data scan,
           session options, contract read and signature check), first run, Pillow import, PNG write
  imports  `python -X importtime`: median self time per module, the largest of each side and every module only
           the runtime path imports

Usage: python -m benchmarks.probes.cold_start_profile [--repeat 7] [--markdown F] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.cold_start import NZ, build_models_in_child, child_env, machine

# Each child prints one JSON line: phase name -> seconds, in the order the phases ran.
RUNTIME_PHASES = """
import time, json
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import numpy; mark("import numpy")
from edgegan.runtime import Generator
from edgegan.runtime.images import save_png
mark("import edgegan (its modules)")
import onnxruntime as ort; mark("import onnxruntime")
spent = []
_init = ort.InferenceSession.__init__
def timed(self, *args, **kwargs):
    t = time.perf_counter(); _init(self, *args, **kwargs); spent.append(time.perf_counter() - t)
ort.InferenceSession.__init__ = timed
g = Generator({model!r}); mark("Generator()")
image = g.sample(1, seed=0)[0]; mark("first run")
from PIL import Image; mark("import PIL")
save_png(image, {png!r}); mark("PNG write")
phases = {{b[0]: b[1] - a[1] for a, b in zip(marks, marks[1:])}}
phases["Generator(): InferenceSession"] = spent[0]
phases["Generator(): the rest"] = phases.pop("Generator()") - spent[0]
print(json.dumps(phases))
"""

BARE_PHASES = """
import time, json
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import numpy as np; mark("import numpy")
import onnxruntime as ort; mark("import onnxruntime")
session = ort.InferenceSession({model!r}, providers=["CPUExecutionProvider"]); mark("InferenceSession")
z = np.random.default_rng(0).standard_normal((1, {nz}), dtype=np.float32)
x = session.run(None, {{"z": z}})[0][0, 0]; mark("first run")
from PIL import Image; mark("import PIL")
Image.fromarray(np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8)).save({png!r}); mark("PNG write")
print(json.dumps({{b[0]: b[1] - a[1] for a, b in zip(marks, marks[1:])}}))
"""

# The imports each path makes (the runtime's onnxruntime and Pillow imports happen inside Generator and save_png).
RUNTIME_IMPORTS = (
    "from edgegan.runtime import Generator; from edgegan.runtime.images import save_png; "
    "import onnxruntime; from PIL import Image"
)
BARE_IMPORTS = "import numpy as np, onnxruntime as ort; from PIL import Image"
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)")


def run_json(code: str, env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def import_times(code: str, env: dict[str, str]) -> dict[str, float]:
    """Module -> self seconds, from one `python -X importtime -c code`."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed:\n{proc.stderr}")
    return {m[3]: int(m[1]) / 1e6 for m in map(_IMPORT_LINE.match, proc.stderr.splitlines()) if m}


def medians(rows: list[dict[str, float]]) -> dict[str, float]:
    """Median per key over the rows (a key missing from a row counts as 0 there)."""
    keys = dict.fromkeys(k for row in rows for k in row)
    return {k: statistics.median(row.get(k, 0.0) for row in rows) for k in keys}


def profile(models: dict[str, Path], folder: Path, repeat: int) -> dict[str, dict[str, float]]:
    env = child_env("runtime", folder / "pycache")
    png = str(folder / "profile.png")
    codes = {
        "runtime": RUNTIME_PHASES.format(model=str(models["onnx"]), png=png),
        "bare": BARE_PHASES.format(model=str(models["onnx"]), nz=NZ, png=png),
    }
    imports = {"runtime": RUNTIME_IMPORTS, "bare": BARE_IMPORTS}
    for name in codes:  # warm-up: page cache and bytecode cache
        run_json(codes[name], env)
    phases: dict[str, list] = {name: [] for name in codes}
    modules: dict[str, list] = {name: [] for name in codes}
    for _ in range(repeat):
        for name in codes:
            phases[name].append(run_json(codes[name], env))
            modules[name].append(import_times(imports[name], env))
    return {
        **{f"phases {n}": medians(rows) for n, rows in phases.items()},
        **{f"imports {n}": medians(rows) for n, rows in modules.items()},
    }


def report(result: dict[str, dict[str, float]], repeat: int, top: int = 12) -> str:
    ms = lambda s: f"{s * 1e3:.1f}"  # noqa: E731
    lines = [f"Cold start, where the time goes (medians of {repeat} interleaved runs, bytecode cached)", ""]
    for name in ("runtime", "bare"):
        rows = result[f"phases {name}"]
        lines += [
            f"{name}: "
            + ", ".join(f"{k} {ms(v)} ms" for k, v in rows.items())
            + f"; total {ms(sum(rows.values()))} ms",
            "",
        ]
    ours, bare = result["imports runtime"], result["imports bare"]
    only = {k: v for k, v in ours.items() if k not in bare}
    lines += [
        f"Import self time: runtime {ms(sum(ours.values()))} ms, bare {ms(sum(bare.values()))} ms; the "
        f"{len(only)} modules only the runtime imports: {ms(sum(only.values()))} ms",
        "",
        "| module (runtime path) | self ms | module (bare script) | self ms | runtime-only module | self ms |",
        "| --- | ---: | --- | ---: | --- | ---: |",
    ]
    columns = [sorted(d.items(), key=lambda kv: -kv[1])[:top] for d in (ours, bare, only)]
    for i in range(top):
        cells = [(c[i][0], ms(c[i][1])) if i < len(c) else ("", "") for c in columns]
        lines.append("| " + " | ".join(f"{m} | {v}" for m, v in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--keep", type=Path, help="build the models here and keep them")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        models = build_models_in_child(args.keep or Path(tmp))
        result = profile(models, Path(tmp), args.repeat)
    text = (
        report(result, args.repeat) + f"\n\nMachine: {machine()}; load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
