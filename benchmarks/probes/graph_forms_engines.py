"""The engines of benchmarks/probes/graph_forms.py: one column each, something that maps latents to images at a given
intra-op thread count (onnxruntime sessions under chosen options, PyTorch eager, a MatMul for the peak)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from edgegan.export.ir_version import cap_ir_version

PEAK_N = 2048


@dataclass
class Engine:
    """One column of the benchmark: something that maps a feed to images at a given thread count."""

    name: str
    group: str  # "main", "form", "int8", "options"
    make: Callable[[int], Callable[[np.ndarray], np.ndarray]]  # threads -> (z -> images)
    note: str = ""
    runners: dict[int, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)

    def runner(self, threads: int) -> Callable[[np.ndarray], np.ndarray]:
        if threads not in self.runners:
            self.runners[threads] = self.make(threads)
        return self.runners[threads]


def session_options(
    threads: int,
    level: str = "all",
    spinning: bool = True,
    parallel: bool = False,
) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1 if parallel else threads
    so.inter_op_num_threads = threads if parallel else 1
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    }[level]
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3
    return so


def ort_engine(name: str, group: str, model_bytes: bytes, note: str = "", **options) -> Engine:
    def make(threads: int):
        session = ort.InferenceSession(
            model_bytes, session_options(threads, **options), providers=["CPUExecutionProvider"]
        )
        return lambda z: session.run(None, {"z": z})[0]

    return Engine(name, group, make, note)


def split_engine(name: str, model_bytes: bytes, note: str) -> Engine:
    """Two 1-thread sessions on the two halves of the batch, run concurrently (onnxruntime drops the GIL)."""

    def make(threads: int):
        sessions = [
            ort.InferenceSession(model_bytes, session_options(1), providers=["CPUExecutionProvider"])
            for _ in range(threads)
        ]
        pool = concurrent.futures.ThreadPoolExecutor(threads)

        def run(z: np.ndarray) -> np.ndarray:
            if len(z) < threads:
                return sessions[0].run(None, {"z": z})[0]
            parts = np.array_split(z, threads)
            futures = [pool.submit(s.run, None, {"z": p}) for s, p in zip(sessions, parts)]
            return np.concatenate([f.result()[0] for f in futures])

        return run

    return Engine(name, "options", make, note)


def torch_engine(G: torch.nn.Module) -> Engine:
    def make(threads: int):
        def run(z: np.ndarray) -> np.ndarray:
            torch.set_num_threads(threads)
            with torch.inference_mode():
                return G(torch.from_numpy(z)).numpy()

        return run

    return Engine("torch", "main", make, "PyTorch eager, G.eval(), inference_mode")


def peak_engine() -> tuple[Engine, np.ndarray]:
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((PEAK_N, PEAK_N)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["z", "w"], ["y"])],
        "peak",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [PEAK_N, PEAK_N])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [PEAK_N, PEAK_N])],
        [w],
    )
    model = cap_ir_version(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    return ort_engine("matmul2048", "peak", model.SerializeToString()), rng.standard_normal((PEAK_N, PEAK_N)).astype(
        np.float32
    )
