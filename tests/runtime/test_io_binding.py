"""The CUDA paths proven on the CPU provider: provider options composed without a GPU, IO binding to buffers bound
once per batch size (reuse, the bounded cache), the on-device uint8 pixel tail, device output through DLPack, and
the choice of the CUDA-graph and per-provider paths with only onnxruntime's provider list standing in for a GPU."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import onnxruntime as ort
import pytest

from edgegan.runtime import providers as providers_module
from edgegan.runtime.contract import draw_latents, to_uint8_nhwc
from edgegan.runtime.generator import Generator, GeneratorInputError
from edgegan.runtime.io_binding import BindingCache, PixelTail
from edgegan.runtime.providers import (
    CudaOptions,
    ProviderError,
    cuda_provider_options,
    provider_chain,
)
from edgegan.runtime.session import PROVIDER_FORMS, SessionRunner, load_session, open_runner, read_contract
from edgegan.runtime.session import resolve_model_path


# ------------------------------------------------------------------------------------ provider options
def test_cuda_provider_options_write_every_lever():
    options = cuda_provider_options()
    assert options == {
        "device_id": "0", "cudnn_conv_algo_search": "EXHAUSTIVE", "prefer_nhwc": "1", "enable_cuda_graph": "0",
        "use_tf32": "0", "cudnn_conv_use_max_workspace": "1", "do_copy_in_default_stream": "1",
    }
    tuned = cuda_provider_options(CudaOptions(device_id=1, conv_algo_search="HEURISTIC", prefer_nhwc=False,
                                              cuda_graph=True, tf32=True))
    assert tuned["device_id"] == "1" and tuned["cudnn_conv_algo_search"] == "HEURISTIC"
    assert (tuned["prefer_nhwc"], tuned["enable_cuda_graph"], tuned["use_tf32"]) == ("0", "1", "1")


@pytest.mark.parametrize("options, message", [
    (CudaOptions(conv_algo_search="FASTEST"), "unknown cuDNN algorithm search 'FASTEST'"),
    (CudaOptions(device_id=-1), "device id must be >= 0"),
])
def test_bad_cuda_options_are_refused(options, message):
    with pytest.raises(ProviderError, match=message):
        cuda_provider_options(options)


def test_the_chain_carries_the_cuda_options_to_cuda_and_behind_tensorrt():
    graph = CudaOptions(cuda_graph=True)
    assert provider_chain("CUDAExecutionProvider", graph) == [
        ("CUDAExecutionProvider", cuda_provider_options(graph)), "CPUExecutionProvider"]
    trt = provider_chain("TensorrtExecutionProvider")
    assert trt[1] == ("CUDAExecutionProvider", cuda_provider_options()) and trt[2] == "CPUExecutionProvider"
    assert provider_chain("CPUExecutionProvider") == ["CPUExecutionProvider"]


# ------------------------------------------------------------------------------------------ IO binding
def _session(path):
    return load_session(path, "cpu")[0]


def test_buffers_are_bound_once_per_batch_and_reused(cond_model):
    session = _session(cond_model)
    contract = read_contract(session)
    runner = SessionRunner(session, None, io_binding=True, contract=contract)
    z = draw_latents(5, contract.nz, 0)
    labels = np.array([0, 1, 2, 0, 1], np.int64)
    want = session.run(["image"], {"z": z, "label": labels})[0]
    first = runner.run({"z": z, "label": labels})
    entry = runner.cache.entry(5)
    address = entry.output.data_ptr()
    second = runner.run({"z": z[::-1].copy(), "label": labels[::-1].copy()})
    np.testing.assert_array_equal(first, want)
    np.testing.assert_array_equal(second, want[::-1])  # new inputs went into the same buffers
    assert runner.cache.entry(5) is entry and entry.runs == 2 and entry.output.data_ptr() == address
    assert not np.shares_memory(first, second)  # a host result is the caller's own, not the reused buffer


def test_the_cache_keeps_a_bounded_number_of_batch_sizes(float_model):
    session = _session(float_model)
    contract = read_contract(session)
    cache = BindingCache(session, contract.io_spec(), capacity=2)
    a, b = cache.entry(1), cache.entry(2)
    assert cache.entry(1) is a  # a hit makes 1 the most recent
    cache.entry(3)  # full: 2, the least recently used, goes
    assert cache.batches() == [1, 3] and cache.evicted == 1
    assert cache.entry(2) is not b
    with pytest.raises(ValueError, match="at least one batch size"):
        BindingCache(session, contract.io_spec(), capacity=0)


def test_per_batch_sessions_open_one_session_per_batch_size(float_model):
    session = _session(float_model)
    contract = read_contract(session)
    opened = []

    def open_session():
        opened.append(_session(float_model))
        return opened[-1]

    cache = BindingCache(session, contract.io_spec(), open_session=open_session)
    assert cache.per_batch_sessions
    one, four = cache.entry(1), cache.entry(4)
    cache.entry(1)
    assert len(opened) == 2 and one.session is opened[0] and four.session is opened[1]


def test_generator_results_do_not_depend_on_io_binding(cond_model):
    plain = Generator(cond_model, batch_size=4)
    bound = Generator(cond_model, batch_size=4, io_binding=True)
    assert bound._runner.cache is not None
    np.testing.assert_array_equal(bound.sample(10, seed=3), plain.sample(10, seed=3))
    np.testing.assert_array_equal(bound.generate_float(draw_latents(6, bound.nz, 1)),
                                  plain.generate_float(draw_latents(6, plain.nz, 1)))
    assert sorted(bound._runner.cache.batches()) == [2, 4]  # 10 = 4 + 4 + 2, then 6 = 4 + 2


# -------------------------------------------------------------------------------- pixels on the device
def test_the_pixel_tail_is_the_contracts_uint8_rule():
    tail = ort.InferenceSession(PixelTail.model((3, 4, 5)), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.2, 1.2, (7, 3, 4, 5)).astype(np.float32)
    x.flat[:6] = [-1.0, 1.0, -1 + 0.5 / 127.5, -1 + 1.5 / 127.5, 0.0, 1.5]  # half-way points round to even
    np.testing.assert_array_equal(tail.run(["pixels"], {"x": x})[0], to_uint8_nhwc(x))


def test_pixels_made_on_the_device_equal_the_host_conversion(cond_model):
    session = _session(cond_model)
    contract = read_contract(session)
    runner = open_runner(cond_model, session, None, contract, None, "cpu", None, False, None, device_pixels=True)
    assert runner.device_pixels and runner.io_binding  # the tail asks for bound buffers
    z, labels = draw_latents(6, contract.nz, 2), np.arange(6, dtype=np.int64) % 3
    pixels = runner.run({"z": z, "label": labels}, pixels=True)
    assert pixels.dtype == np.uint8 and pixels.shape == (6, 4, 5, 3)
    np.testing.assert_array_equal(pixels, to_uint8_nhwc(session.run(["image"], {"z": z, "label": labels})[0]))


# ------------------------------------------------------------------------------------ device output
def test_dlpack_output_is_the_numpy_output_left_in_place(cond_model, uint8_model):
    host = Generator(cond_model, batch_size=4)
    device = Generator(cond_model, batch_size=4, output="dlpack")
    images = device.sample(10, seed=5)
    assert isinstance(images, ort.OrtValue) and images.shape() == [10, 4, 5, 3]
    np.testing.assert_array_equal(np.from_dlpack(images), host.sample(10, seed=5))
    z = draw_latents(9, host.nz, 1)
    np.testing.assert_array_equal(np.from_dlpack(device.generate_float(z, labels=1)), host.generate_float(z, labels=1))
    result = device(5, seed=2, labels="Trouser")
    np.testing.assert_array_equal(np.from_dlpack(result.images), host(5, seed=2, labels="Trouser").images)
    parts = list(device.iter_sample(10, seed=5))
    assert [p.shape()[0] for p in parts] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([np.from_dlpack(p) for p in parts]), host.sample(10, seed=5))
    already = Generator(uint8_model, batch_size=3, output="dlpack")  # the model's own uint8 tail
    np.testing.assert_array_equal(np.from_dlpack(already.sample(7, seed=1)),
                                  Generator(uint8_model).sample(7, seed=1))


def test_unknown_output_is_refused(float_model):
    with pytest.raises(GeneratorInputError, match="unknown output 'torch'"):
        Generator(float_model, output="torch")


# ------------------------------------------------- path choice with only the provider list standing in
@pytest.fixture
def cuda_listed(monkeypatch):
    """onnxruntime's provider list as a CUDA build reports it; the sessions themselves stay real."""
    listed = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(listed))


def test_a_folder_opens_the_cuda_form_on_cuda_only(tmp_path, float_model, cuda_listed):
    shutil.copy(float_model, tmp_path / "generator.onnx")
    assert resolve_model_path(tmp_path, "cuda") == tmp_path / "generator.onnx"  # no cuda form written
    shutil.copy(float_model, tmp_path / PROVIDER_FORMS["CUDAExecutionProvider"])
    assert resolve_model_path(tmp_path, "cuda") == tmp_path / "generator.cuda.onnx"
    assert resolve_model_path(tmp_path, "auto") == tmp_path / "generator.cuda.onnx"  # auto is CUDA here
    assert resolve_model_path(tmp_path, "cpu") == tmp_path / "generator.onnx"
    assert resolve_model_path(tmp_path / "generator.onnx", "cuda") == tmp_path / "generator.onnx"


def test_cuda_graph_sessions_are_chosen_only_where_cuda_runs(float_model, cuda_listed, monkeypatch):
    session = _session(float_model)
    contract = read_contract(session)
    graph = CudaOptions(cuda_graph=True)
    on_cpu = open_runner(float_model, session, None, contract, None, "cpu", None, False, graph)
    assert on_cpu.cache is None and on_cpu.tail is None  # the CPU provider: no graph, no bound buffers

    class RunsOnCuda:
        """The real CPU session, reporting the provider list a CUDA session reports."""

        def __init__(self, real):
            self.real = real

        def get_providers(self):
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

        def __getattr__(self, name):
            return getattr(self.real, name)

    monkeypatch.setattr("edgegan.runtime.session.check_provider", lambda *a, **k: None)
    monkeypatch.setattr("edgegan.runtime.session.provider_chain", lambda running, cuda: ["CPUExecutionProvider"])
    runner = open_runner(float_model, RunsOnCuda(session), None, contract, None, "cuda", None, True, graph)
    assert runner.device == "cuda" and runner.io_binding and runner.cache.per_batch_sessions
    assert runner.tail is not None  # uint8 pixels made where the images are
    plain = open_runner(float_model, RunsOnCuda(session), None, contract, None, "cuda", None, True,
                        dataclasses.replace(graph, cuda_graph=False))
    assert not plain.cache.per_batch_sessions
    with pytest.raises(ProviderError, match="CUDA graph replays fixed buffers, which need IO binding"):
        open_runner(float_model, RunsOnCuda(session), None, contract, False, "cuda", None, True, graph)


def test_device_output_turns_the_cuda_graph_off(float_model, monkeypatch):
    seen = []
    real = providers_module.create_session

    def record(path, provider, options, allow_fallback, cuda):
        seen.append(cuda)
        return real(path, provider, options, allow_fallback, cuda)

    monkeypatch.setattr("edgegan.runtime.session.create_session", record)
    Generator(float_model, output="dlpack", cuda=CudaOptions(cuda_graph=True))
    assert seen[-1].cuda_graph is False

