"""The runtime on onnxruntime's CUDA provider: parity with the CPU, IO binding with the CUDA graph, device output,
the pixel tail on the device, the copy back through page-locked memory, the provider's form of a folder, and bench's
cuda rows beside torch on the GPU."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from edgegan.runtime import Generator
from edgegan.runtime.contract import draw_latents
from edgegan.runtime.providers import CudaOptions

pytestmark = pytest.mark.gpu
SIZES = (1, 5, 64)


def test_cuda_matches_the_cpu_for_every_form(cuda_export, ort_cuda):
    _, out = cuda_export
    for name in ("generator.onnx", "generator.cuda.onnx"):
        cpu, gpu = Generator(out / name), Generator(out / name, provider="cuda")
        assert gpu.providers[0] == "CUDAExecutionProvider"
        z = draw_latents(37, cpu.nz, 0)
        # fp32 with TF32 off: the contract's fp32 budget (1e-4 on [-1, 1])
        np.testing.assert_allclose(gpu.generate_float(z, 1), cpu.generate_float(z, 1), atol=1e-4)
        assert np.abs(gpu.generate(z, 1).astype(int) - cpu.generate(z, 1).astype(int)).max() <= 1
    on_cuda = Generator(out, provider="cuda")
    assert on_cuda.path.name == "generator.cuda.onnx" and on_cuda.contract.graph_form == "convtranspose"


def test_cuda_graph_sessions_per_batch_size_give_the_same_images(cuda_export, ort_cuda):
    _, out = cuda_export
    plain = Generator(out, provider="cuda", batch_size=64)
    graph = Generator(out, provider="cuda", batch_size=64, cuda=CudaOptions(cuda_graph=True))
    cache = graph._runner.cache
    assert cache is not None and cache.per_batch_sessions
    for n in (*SIZES, 64, 1):  # replays of captured graphs too
        np.testing.assert_array_equal(graph.sample(n, seed=n, labels=2), plain.sample(n, seed=n, labels=2))
    assert sorted(cache.batches()) == sorted(set(SIZES))
    assert all(cache.entry(b).runs >= 1 for b in SIZES)


def test_pixels_are_made_on_the_device(cuda_export, ort_cuda):
    _, out = cuda_export
    gpu = Generator(out, provider="cuda", batch_size=16)
    assert gpu._runner.device_pixels  # the uint8 tail runs where the images are
    z = draw_latents(40, gpu.nz, 3)
    np.testing.assert_array_equal(
        gpu.generate(z, 0), Generator(out, batch_size=16, provider="cuda", io_binding=False).generate(z, 0)
    )


def test_dlpack_output_stays_on_the_device(cuda_export, ort_cuda, torch_cuda):
    torch = torch_cuda
    _, out = cuda_export
    device = Generator(out, provider="cuda", batch_size=16, output="dlpack")
    images = device.sample(40, seed=4)
    assert images.device_name().lower() == "cuda"
    tensor = torch.from_dlpack(images)
    assert tensor.is_cuda and tensor.dtype == torch.uint8 and tuple(tensor.shape) == (40, 28, 28, 1)
    np.testing.assert_array_equal(tensor.cpu().numpy(), Generator(out, provider="cuda").sample(40, seed=4))
    floats = torch.from_dlpack(device.generate_float(draw_latents(9, device.nz, 1), 2))
    assert floats.is_cuda and tuple(floats.shape) == (9, 1, 28, 28)


def test_bench_times_torch_on_the_gpu_beside_cuda_rows(cuda_export, ort_cuda, torch_cuda):
    from edgegan.runtime.bench.harness import run_bench

    ckpt, out = cuda_export
    result = run_bench(
        [out / "generator.cuda.onnx"],
        batches=(1, 64),
        threads=(1,),
        providers=("cuda",),
        torch=ckpt,
        torch_compile=False,
        warmup=2,
        iters=5,
        rounds=2,
        peak_size=1024,
    )
    rows = {(r["engine"], r["provider"], r["batch"]): r for r in result["rows"]}
    for batch in (1, 64):
        ort_row = rows[("onnxruntime", "CUDAExecutionProvider", batch)]
        base = rows[("torch eager", "torch cuda", batch)]
        assert ort_row["error"] is None and base["error"] is None
        assert ort_row["ratio"] == pytest.approx(ort_row["p50_ms"] / base["p50_ms"])
        for precision in ("fp16", "bf16"):
            assert rows[(f"torch autocast {precision}", "torch cuda", batch)]["error"] is None
    assert result["peak"][0]["provider"] == "CUDAExecutionProvider" and result["peak"][0]["gflops"] > 0


class _PointerAttributes(ctypes.Structure):
    """cudaPointerAttributes (CUDA >= 11), padded: a newer CUDA may write more fields."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("device", ctypes.c_int),
        ("device_pointer", ctypes.c_void_p),
        ("host_pointer", ctypes.c_void_p),
        ("reserved", ctypes.c_byte * 256),
    ]


def _memory_type(address: int) -> int:
    """CUDA's memory type of `address` (0 unregistered/pageable, 1 page-locked host, 2 device, 3 managed), asked of
    the libcudart this process has loaded (torch's or onnxruntime's CUDA provider's)."""
    maps = Path("/proc/self/maps").read_text().splitlines()
    path = next((line.split()[-1] for line in maps if "libcudart.so" in line), None)
    assert path is not None, "no libcudart loaded in this process"
    attributes = _PointerAttributes()
    status = ctypes.CDLL(path).cudaPointerGetAttributes(ctypes.byref(attributes), ctypes.c_void_p(address))
    assert status == 0, f"cudaPointerGetAttributes returned {status}"
    return attributes.type


def test_the_copy_back_lands_in_page_locked_memory(cuda_export, ort_cuda, torch_cuda):
    _, out = cuda_export
    pinned = Generator(out, provider="cuda", batch_size=16)  # CudaOptions().pinned_output is on
    plain = Generator(out, provider="cuda", batch_size=16, cuda=CudaOptions(pinned_output=False))
    assert pinned.pinned_output, pinned._runner.pinned_reason
    assert not plain.pinned_output and plain._runner.pinned_reason == "CudaOptions(pinned_output=False)"
    z = draw_latents(40, pinned.nz, 6)  # 16 + 16 + 8: two batch sizes
    np.testing.assert_array_equal(pinned.generate(z, 1), plain.generate(z, 1))  # the PixelTail's uint8
    np.testing.assert_array_equal(pinned.generate_float(z, 1), plain.generate_float(z, 1))  # the model's float
    entry = pinned._runner.cache.entry(16)
    assert entry.pinned
    for use, shape, dtype in (("pixels", [16, 28, 28, 1], np.uint8), ("image", [16, 1, 28, 28], np.float32)):
        buffer = entry.host_buffer(use, shape, dtype)
        assert _memory_type(buffer.data_ptr()) == 1, use  # cudaMemoryTypeHost: page-locked host memory
    assert _memory_type(entry.output.data_ptr()) == 2  # the model's own output buffer stays on the device
    graph = Generator(out, provider="cuda", batch_size=16, cuda=CudaOptions(cuda_graph=True))
    np.testing.assert_array_equal(graph.generate(z, 1), plain.generate(z, 1))  # the tail after the graph: pinned
    assert graph._runner.cache.entry(16).pinned
    np.testing.assert_array_equal(graph.generate_float(z, 1), plain.generate_float(z, 1))
    assert not graph._runner.cache.entry(16).pinned  # the graph's float output stays at its captured address
