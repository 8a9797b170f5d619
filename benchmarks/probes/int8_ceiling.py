"""How far int8 can go on this CPU: onnxruntime's integer kernels against its float ones, side by side.

Two measurements, interleaved in one run so machine load hits both alike:

1. Kernel ceilings: one matrix product at the shape of the generator's upsampling layer (im2col of a 2x2 phase
   Conv at batch 64: [64*49, 1024] x [1024, 128], and the wider [M, 1024] x [1024, 512]) as float MatMul,
   u8 x s8 MatMulInteger (onnxruntime's fast path on x86: vpmaddubsw on AVX2, vpdpbusd with VNNI) and u8 x u8.
2. Where each shipped file spends its time: onnxruntime's per-node profile of generator.onnx and
   generator.int8.onnx at one batch and thread count, grouped into the upsampling Convs, the first layer, the
   image layer and the rest (layout, Q/DQ, concat), with the share of the whole. From it the floor: the int8 /
   fp32 ratio if everything but the int8 Convs were free.

Profiles are summed kernel times (`SessionOptions.enable_profiling`), so they leave out the per-call overhead of
`run`; the wall-time medians of the same sessions, timed without profiling, are printed beside them.

Usage: python -m benchmarks.probes.int8_ceiling MODELS_DIR [--batch 64] [--threads 1] [--runs 30] [--markdown F]
(MODELS_DIR holds generator.onnx and generator.int8.onnx, as `edgegan export RUN --int8` writes them.)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgegan.runtime.bench.machine import cpu_summary

PARTS = ("upsampling Convs", "first layer", "image layer", "rest")


def session(model: bytes | str, threads: int, profile_prefix: str | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def matmul_model(op: str, m: int, k: int, n: int, rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    """(serialized model, input) of one matrix product [m, k] x [k, n] with constant weights."""
    if op == "fp32":
        weight, x_type = rng.standard_normal((k, n)).astype(np.float32), TensorProto.FLOAT
        node, out_type, x = helper.make_node("MatMul", ["x", "w"], ["y"]), TensorProto.FLOAT, rng.random((m, k))
        x = x.astype(np.float32)
        extra = []
    else:
        weight = (
            rng.integers(-127, 128, (k, n)).astype(np.int8)
            if op == "u8s8"
            else rng.integers(0, 256, (k, n)).astype(np.uint8)
        )
        x_type, out_type = TensorProto.UINT8, TensorProto.INT32
        node = helper.make_node("MatMulInteger", ["x", "w", "x_zero"], ["y"])
        x = rng.integers(0, 128, (m, k)).astype(np.uint8)
        extra = [numpy_helper.from_array(np.uint8(0), "x_zero")]
    graph = helper.make_graph(
        [node],
        op,
        [helper.make_tensor_value_info("x", x_type, [m, k])],
        [helper.make_tensor_value_info("y", out_type, None)],
        [numpy_helper.from_array(weight, "w")] + extra,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString(), x


def interleaved_medians(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each callable, called in turn `rounds` times after 3 warm-up calls each."""
    for call in calls.values():
        for _ in range(3):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def kernel_ceilings(threads: int, rounds: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for m, k, n in ((64 * 49, 1024, 128), (64 * 49, 1024, 512)):
        calls = {}
        for op in ("fp32", "u8s8", "u8u8"):
            model, x = matmul_model(op, m, k, n, rng)
            sess = session(model, threads)
            calls[op] = lambda s=sess, x=x: s.run(None, {"x": x})
        medians = interleaved_medians(calls, rounds)
        for op, seconds in medians.items():
            rows.append(
                {
                    "shape": f"[{m}, {k}] x [{k}, {n}]",
                    "kernel": op,
                    "ms": seconds * 1e3,
                    "gmac_s": m * k * n / seconds / 1e9,
                    "x_fp32": seconds / medians["fp32"],
                }
            )
    return rows


def part_of(node_name: str, op: str) -> str:
    if op in ("Conv", "QLinearConv"):
        return "upsampling Convs"
    if op == "ConvTranspose":
        return "image layer"
    if "gemm" in node_name.lower() or op in ("FusedGemm", "Gemm", "MatMulInteger", "MatMul"):
        return "first layer"
    return "rest"


def profiled_parts(paths: dict[str, Path], batch: int, threads: int, runs: int) -> tuple[dict, dict]:
    """Per-file {part: ms per run} from onnxruntime's node profile, and wall medians of unprofiled sessions."""
    with tempfile.TemporaryDirectory(prefix="edgegan-int8-ceiling-") as tmp:
        profiled = {name: session(str(path), threads, f"{tmp}/{name}") for name, path in paths.items()}
        plain = {name: session(str(path), threads) for name, path in paths.items()}
        feeds = {}
        for name, sess in plain.items():
            feed = {}
            for spec in sess.get_inputs():
                shape = [batch if not isinstance(d, int) else d for d in spec.shape]
                feed[spec.name] = (
                    np.zeros(shape, np.int64)
                    if "int" in spec.type
                    else np.random.default_rng(0).standard_normal(shape).astype(np.float32)
                )
            feeds[name] = feed
        for name, sess in profiled.items():  # warm-up calls land in the profile too: subtracted below
            sess.run(None, feeds[name])
        wall = interleaved_medians({n: (lambda s=s, n=n: s.run(None, feeds[n])) for n, s in plain.items()}, runs)
        for _ in range(runs):
            for name, sess in profiled.items():
                sess.run(None, feeds[name])
        parts = {}
        for name, sess in profiled.items():
            events = json.loads(Path(sess.end_profiling()).read_text())
            per_node = collections.defaultdict(list)
            for event in events:
                if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                    per_node[(event["name"][: -len("_kernel_time")], event["args"].get("op_name", ""))].append(
                        event["dur"]
                    )
            sums = dict.fromkeys(PARTS, 0.0)
            for (node, op), durations in per_node.items():
                sums[part_of(node, op)] += sum(durations[-runs:]) / runs / 1e3  # the last `runs` calls: no warm-up
            parts[name] = sums
    return parts, {name: seconds * 1e3 for name, seconds in wall.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, help="folder with generator.onnx and generator.int8.onnx")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30, help="profiled / timed calls per file")
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    args = parser.parse_args(argv)
    paths = {"fp32": args.models / "generator.onnx", "int8": args.models / "generator.int8.onnx"}
    for path in paths.values():
        if not path.is_file():
            parser.error(f"{path} not found: export with `edgegan export RUN --out {args.models} --int8`")
    load_start = os.getloadavg()[0]
    ceilings = kernel_ceilings(args.threads, rounds=15)
    parts, wall = profiled_parts(paths, args.batch, args.threads, args.runs)
    lines = [
        f"# int8 ceiling: onnxruntime {ort.__version__}, {args.threads} thread(s), batch {args.batch}",
        "",
        f"Machine: {cpu_summary()}; load average {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end.",
        "",
        "| matrix product | kernel | ms | GMAC/s | x fp32 |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['shape']} | {r['kernel']} | {r['ms']:.2f} | {r['gmac_s']:.1f} | {r['x_fp32']:.2f} |" for r in ceilings
    ]
    total = {name: sum(p.values()) for name, p in parts.items()}
    lines += [
        "",
        "| part (profiled kernel time per call) | fp32 ms | int8 ms | int8 / fp32 | int8 share |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for part in PARTS:
        f, i = parts["fp32"][part], parts["int8"][part]
        lines.append(f"| {part} | {f:.2f} | {i:.2f} | {i / f if f else float('nan'):.2f} | {i / total['int8']:.0%} |")
    lines.append(f"| whole graph | {total['fp32']:.2f} | {total['int8']:.2f} | {total['int8'] / total['fp32']:.2f} | |")
    lines.append(
        f"| wall median of `run` (unprofiled) | {wall['fp32']:.2f} | {wall['int8']:.2f} | "
        f"{wall['int8'] / wall['fp32']:.2f} | |"
    )
    floor = parts["int8"]["upsampling Convs"] / total["fp32"]
    lines += [
        "",
        f"Floor: int8 Convs alone / whole fp32 graph = {floor:.2f} (the int8 / fp32 ratio if every other "
        "int8 node took no time).",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
