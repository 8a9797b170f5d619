"""Peaks per precision: what `% peak` divides by, so that a share of peak is a share of an upper bound.

A row's `% peak` used to divide every row by one in-run float32 MatMul: on an AMD EPYC with AVX-512 VNNI the
generator's own convolutions beat it (fp32 rows at 107-126%) and int8 rows, whose u8 x s8 kernels do four times
the multiply-adds per instruction, showed 260-386% (issue 20). The bound is now taken per precision, from what was
measured in the same run at the same provider and threads:

  fp32 (and fp16, which the CPU provider computes in float32)  the best of the float32 MatMul and every fp32/fp16
                                                               row's own GFLOP/s
  int8   the best of a u8 x s8 MatMulInteger (MLAS's VNNI / AVX2 integer GEMM on the CPU) and every int8 row's own

and each row says which (`peak_source`), so no share exceeds 100% and an int8 row is never divided by a float peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgegan.runtime.bench.runners import PEAK_SIZE, MatmulRunner
from edgegan.runtime.onnx_bytes import INT8, INT32, UINT8, model, node, value_info

FLOAT_PRECISIONS = ("fp32", "fp16")


def integer_matmul_model(n: int) -> bytes:
    """C = MatMulInteger(A uint8 [n, n], B int8 [n, n]) -> int32: the int8 peak (opset 17; onnx is not a runtime
    dependency, so runtime/onnx_bytes.py writes it like the float peak)."""
    return model(
        [node("MatMulInteger", ["A", "B"], ["C"], "matmul_integer")],
        [value_info("A", UINT8, [n, n]), value_info("B", INT8, [n, n])],
        [value_info("C", INT32, [n, n])],
        [],
        "peak_int8",
        17,
    )


class IntegerMatmulRunner(MatmulRunner):
    """The int8 peak: a u8 x s8 -> s32 n x n x n MatMulInteger on the CPU provider (the int8 rows' kernel family)."""

    name = "matmul_integer"
    precision = "int8"

    def __init__(self, provider: str, threads: int, size: int = PEAK_SIZE):
        super().__init__(provider, threads, size)
        self.model = f"matmulinteger {size}^3 u8 x s8"

    def load(self) -> None:
        import onnxruntime as ort

        from edgegan.runtime.providers import session_options

        session = ort.InferenceSession(
            integer_matmul_model(self.size),
            session_options(self.threads, spinning=False),
            providers=["CPUExecutionProvider"],
        )
        self.provider = session.get_providers()[0]
        rng = np.random.default_rng(0)
        a = rng.integers(0, 256, (self.size, self.size), dtype=np.uint8)
        b = rng.integers(-127, 128, (self.size, self.size), dtype=np.int8)
        self._run = lambda: session.run(["C"], {"A": a, "B": b})


def peak_runners(providers: Sequence[str], threads: Sequence[int], size: int) -> list[MatmulRunner]:
    """The float32 MatMul per provider and thread count, and the integer one where the CPU provider runs."""
    runners: list[MatmulRunner] = [MatmulRunner(p, t, size) for p in providers for t in threads]
    runners += [IntegerMatmulRunner("cpu", t, size) for t in threads if "cpu" in providers]
    return runners


def peak_family(precision: str) -> str:
    """The precision whose peak bounds a row of `precision`: fp16 on the CPU provider computes in float32."""
    return "fp32" if precision in FLOAT_PRECISIONS else precision


def row_peak(
    row: dict[str, Any], peaks: Sequence[dict], rows: Sequence[dict], key: str, peak_key: str
) -> tuple[float | None, str | None]:
    """The upper bound for `row[key]` (GFLOP/s, or per CPU-second): the largest of the kernel peak measured for
    its precision family at its provider and threads (`peak_key` of the peak rows) and every row of that family
    at the same provider and threads. Returns (bound, source), or (None, None) with no kernel peak."""
    family = peak_family(row.get("precision") or "fp32")

    def same(r: dict) -> bool:
        return r.get("threads") == row.get("threads") and r.get("provider_asked", "cpu") == row.get(
            "provider_asked", "cpu"
        )

    kernel = next((p for p in peaks if same(p) and p.get(peak_key) and p.get("precision", "fp32") == family), None)
    if kernel is None:
        return None, None
    bound, source = kernel[peak_key], f"{kernel['model']}"
    for other in rows:
        value = other.get(key)
        if value and same(other) and peak_family(other.get("precision") or "fp32") == family and value > bound:
            bound, source = value, f"best {family} row measured ({other['model']}, batch {other['batch']})"
    return bound, source


def apply_peaks(rows: list[dict], peaks: Sequence[dict]) -> None:
    """Set peak_gflops, peak_source, peak_share and peak_share_cpu on every row (<= 1 by construction)."""
    for row in rows:
        bound, source = row_peak(row, peaks, rows, "gflops", "gflops")
        row["peak_gflops"], row["peak_source"] = bound, source
        row["peak_share"] = row["gflops"] / bound if bound and row.get("gflops") else None
        cpu_bound, _ = row_peak(row, peaks, rows, "gflops_per_cpu_s", "gflops_per_cpu_s")
        row["peak_share_cpu"] = (
            row["gflops_per_cpu_s"] / cpu_bound if cpu_bound and row.get("gflops_per_cpu_s") else None
        )
