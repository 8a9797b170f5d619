"""The CUDA paths proven on the CPU provider: provider options composed without a GPU, IO binding to buffers bound
once per batch size (reuse, the bounded cache), the on-device uint8 pixel tail, device output through DLPack, the
copy back through page-locked memory (the CPU's own memory standing in for it, through the same onnxruntime calls)
and its fallbacks, and the choice of the CUDA-graph, pinned-memory and per-provider paths with only onnxruntime's
provider and device lists standing in for a GPU."""

from __future__ import annotations

import dataclasses
import inspect
import shutil
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest

from edgegan.runtime import providers as providers_module
from edgegan.runtime.contract import KEY_GRAPH_FORM, ContractError, draw_latents, to_uint8_nhwc
from edgegan.runtime.generator import Generator, GeneratorInputError
from edgegan.runtime.io_binding import BindingCache, HostMemory, PixelTail
from edgegan.runtime.providers import (
    CudaOptions,
    ProviderError,
    cuda_provider_options,
    pinned_memory_info,
    provider_chain,
)
from edgegan.runtime.session import (
    PROVIDER_FORMS,
    SessionRunner,
    load_session,
    open_runner,
    read_contract,
    resolve_model_path,
)


# ------------------------------------------------------------------------------------ provider options
def test_cuda_provider_options_write_every_lever():
    options = cuda_provider_options()
    assert options == {
        "device_id": "0",
        "cudnn_conv_algo_search": "EXHAUSTIVE",
        "prefer_nhwc": "1",
        "enable_cuda_graph": "0",
        "use_tf32": "0",
        "cudnn_conv_use_max_workspace": "1",
        "do_copy_in_default_stream": "1",
    }
    tuned = cuda_provider_options(
        CudaOptions(device_id=1, conv_algo_search="HEURISTIC", prefer_nhwc=False, cuda_graph=True, tf32=True)
    )
    assert tuned["device_id"] == "1" and tuned["cudnn_conv_algo_search"] == "HEURISTIC"
    assert (tuned["prefer_nhwc"], tuned["enable_cuda_graph"], tuned["use_tf32"]) == ("0", "1", "1")


@pytest.mark.parametrize(
    "options, message",
    [
        (CudaOptions(conv_algo_search="FASTEST"), "unknown cuDNN algorithm search 'FASTEST'"),
        (CudaOptions(device_id=-1), "device id must be >= 0"),
    ],
)
def test_bad_cuda_options_are_refused(options, message):
    with pytest.raises(ProviderError, match=message):
        cuda_provider_options(options)


def test_the_chain_carries_the_cuda_options_to_cuda_and_behind_tensorrt():
    graph = CudaOptions(cuda_graph=True)
    assert provider_chain("CUDAExecutionProvider", graph) == [
        ("CUDAExecutionProvider", cuda_provider_options(graph)),
        "CPUExecutionProvider",
    ]
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
    np.testing.assert_array_equal(
        bound.generate_float(draw_latents(6, bound.nz, 1)), plain.generate_float(draw_latents(6, plain.nz, 1))
    )
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
    np.testing.assert_array_equal(np.from_dlpack(already.sample(7, seed=1)), Generator(uint8_model).sample(7, seed=1))


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
    shutil.copy(float_model, tmp_path / PROVIDER_FORMS["CUDAExecutionProvider"].file)
    assert resolve_model_path(tmp_path, "cuda") == tmp_path / "generator.cuda.onnx"
    assert resolve_model_path(tmp_path, "auto") == tmp_path / "generator.cuda.onnx"  # auto is CUDA here
    assert resolve_model_path(tmp_path, "cpu") == tmp_path / "generator.onnx"
    assert resolve_model_path(tmp_path / "generator.onnx", "cuda") == tmp_path / "generator.onnx"


class RunsOnCuda:
    """The real CPU session, reporting the provider list a CUDA session reports."""

    def __init__(self, real):
        self.real = real

    def get_providers(self):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def cuda_sessions(monkeypatch):
    """open_runner's own sessions (the PixelTail's) made on the CPU although the model's session says CUDA."""
    monkeypatch.setattr("edgegan.runtime.session.check_provider", lambda *a, **k: None)
    monkeypatch.setattr("edgegan.runtime.session.provider_chain", lambda running, cuda: ["CPUExecutionProvider"])


@pytest.mark.filterwarnings("ignore:asked for CUDAExecutionProvider:RuntimeWarning")  # "auto" on this CPU build
@pytest.mark.parametrize("recorded", ["convtranspose", None, "convtranspose-nhwc-fp16"])  # its own, none, unknown
def test_a_folder_opens_its_cuda_file_by_the_graph_form_it_records(make_model, cuda_listed, recorded):
    folder = make_model(f"form-{recorded}/generator.onnx", nz=6).parent
    make_model(f"form-{recorded}/generator.cuda.onnx", nz=6, seed=1, metadata={KEY_GRAPH_FORM: recorded})
    on_cuda = Generator(folder, provider="auto")  # CUDA as far as the provider list goes; runs on the CPU here
    assert on_cuda.path.name == "generator.cuda.onnx" and on_cuda.contract.graph_form == recorded
    plain = Generator(folder)  # the CPU provider: generator.onnx, which records no form
    assert plain.path.name == "generator.onnx" and plain.contract.graph_form is None
    assert on_cuda.contract.with_graph_form(None) == plain.contract  # the same contract but for the form


@pytest.mark.filterwarnings("ignore:asked for CUDAExecutionProvider:RuntimeWarning")
def test_a_cuda_file_recording_another_providers_form_is_refused(make_model, cuda_listed):
    folder = make_model("mixed/generator.onnx").parent
    cuda_file = make_model("mixed/generator.cuda.onnx", metadata={KEY_GRAPH_FORM: "phase"})
    with pytest.raises(
        ContractError,
        match=r"records the graph form 'phase' \(edgegan.graph_form\), not the "
        r"'convtranspose' form its name stands for: .* load .*generator.onnx",
    ):
        Generator(folder, provider="auto")
    assert Generator(cuda_file, provider="auto").contract.graph_form == "phase"  # a file by its path: as it is


def test_cuda_graph_sessions_are_chosen_only_where_cuda_runs(float_model, cuda_listed, cuda_sessions):
    session = _session(float_model)
    contract = read_contract(session)
    graph = CudaOptions(cuda_graph=True)
    on_cpu = open_runner(float_model, session, None, contract, None, "cpu", None, False, graph)
    assert on_cpu.cache is None and on_cpu.tail is None  # the CPU provider: no graph, no bound buffers

    runner = open_runner(float_model, RunsOnCuda(session), None, contract, None, "cuda", None, True, graph)
    assert runner.device == "cuda" and runner.io_binding and runner.cache.per_batch_sessions
    assert runner.tail is not None  # uint8 pixels made where the images are
    plain = open_runner(
        float_model,
        RunsOnCuda(session),
        None,
        contract,
        None,
        "cuda",
        None,
        True,
        dataclasses.replace(graph, cuda_graph=False),
    )
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


# --------------------------------------------------------------------------- the copy back, page-locked
#: Whether this onnxruntime allocates an OrtValue from a memory info (the `memory_info` parameter, newer than
#: get_ep_devices: 1.27 lacks it): without it every page-locked request falls back to ordinary memory.
ALLOCATES_FROM_MEMORY_INFO = "memory_info" in inspect.signature(ort.OrtValue.ortvalue_from_shape_and_type).parameters


class EpDevice:
    """An OrtEpDevice as onnxruntime lists it: its provider's name and a memory info per memory kind."""

    def __init__(self, ep_name, infos):
        self.ep_name, self.infos = ep_name, infos

    def memory_info(self, kind):
        return self.infos.get(kind)


def ort_listing(devices, version="1.31.1"):
    """A stand-in for the onnxruntime module: its version, EP device list and memory kinds only."""
    kinds = SimpleNamespace(DEFAULT="DEFAULT", HOST_ACCESSIBLE="HOST_ACCESSIBLE")
    return SimpleNamespace(__version__=version, get_ep_devices=lambda: list(devices), OrtDeviceMemoryType=kinds)


def test_pinned_memory_is_the_running_providers_host_accessible_memory():
    pinned = [SimpleNamespace(device_id=i) for i in range(2)]
    gpus = [
        EpDevice("CUDAExecutionProvider", {"HOST_ACCESSIBLE": p, "DEFAULT": SimpleNamespace(device_id=i)})
        for i, p in enumerate(pinned)
    ]
    listing = ort_listing([EpDevice("CPUExecutionProvider", {}), *gpus])
    assert pinned_memory_info("CUDAExecutionProvider", 1, listing) == (
        pinned[1],
        "page-locked host memory of CUDAExecutionProvider device 1",
    )
    info, reason = pinned_memory_info("TensorrtExecutionProvider", 0, listing)  # TensorRT runs behind CUDA
    assert info is pinned[0] and reason.endswith("CUDAExecutionProvider device 0")
    trt_own = SimpleNamespace(device_id=0)
    with_trt = ort_listing([*gpus, EpDevice("TensorrtExecutionProvider", {"HOST_ACCESSIBLE": trt_own})])
    assert pinned_memory_info("TensorrtExecutionProvider", 0, with_trt)[0] is trt_own  # its own device first


CPU_DEVICE = EpDevice("CPUExecutionProvider", {})
GPU_WITHOUT_PINNED = EpDevice("CUDAExecutionProvider", {})  # memory_info(HOST_ACCESSIBLE) is None
GPU_0 = EpDevice("CUDAExecutionProvider", {"HOST_ACCESSIBLE": SimpleNamespace(device_id=0)})


@pytest.mark.parametrize(
    "provider, device_id, listing, says",
    [
        (
            "CPUExecutionProvider",
            0,
            ort_listing([CPU_DEVICE]),
            "CPUExecutionProvider leaves its outputs in host memory",
        ),
        (
            "CUDAExecutionProvider",
            0,
            SimpleNamespace(__version__="1.17.3"),
            "onnxruntime 1.17.3 lists no execution provider devices",
        ),
        (
            "CUDAExecutionProvider",
            0,
            ort_listing([CPU_DEVICE, GPU_WITHOUT_PINNED]),
            "(devices listed: CPUExecutionProvider, CUDAExecutionProvider)",
        ),
        (
            "CUDAExecutionProvider",
            3,
            ort_listing([GPU_0]),
            "offers host-accessible memory for device 3",
        ),  # another GPU's
    ],
)
def test_without_pinned_memory_the_reason_is_given(provider, device_id, listing, says):
    info, reason = pinned_memory_info(provider, device_id, listing)
    assert info is None and says in reason


@pytest.fixture(scope="module")
def cpu_memory_info():
    """The CPU's own memory as an OrtMemoryInfo with a shared allocator: the stand-in for the CUDA provider's
    page-locked memory, allocated through the same calls (ortvalue_from_shape_and_type(memory_info=...))."""
    info = ort.OrtMemoryInfo.create_v2(
        "Cpu",
        ort.OrtMemoryInfoDeviceType.CPU,
        0,
        0,
        ort.OrtDeviceMemoryType.DEFAULT,
        0,
        ort.OrtAllocatorType.ORT_DEVICE_ALLOCATOR,
    )
    ort.create_and_register_allocator(info, None)  # the CUDA provider registers its own for its device's memory
    return info


def _feeds(contract, n, seed=0):
    return {"z": draw_latents(n, contract.nz, seed), "label": np.arange(n, dtype=np.int64) % contract.num_classes}


def test_copy_backs_land_in_a_host_buffer_bound_once_per_batch(cond_model, cpu_memory_info):
    session = _session(cond_model)
    contract = read_contract(session)
    tail = ort.InferenceSession(PixelTail.model(contract.image_shape_nchw), providers=["CPUExecutionProvider"])
    runner = SessionRunner(
        session,
        None,
        io_binding=True,
        contract=contract,
        tail_session=tail,
        host=HostMemory(cpu_memory_info, "the CPU's memory, standing in"),
    )
    feeds, other = _feeds(contract, 5), _feeds(contract, 5, seed=1)
    want = {seed: session.run(["image"], f)[0] for seed, f in ((0, feeds), (1, other))}
    first = runner.run(feeds)
    entry = runner.cache.entry(5)
    np.testing.assert_array_equal(first, want[0])
    if not ALLOCATES_FROM_MEMORY_INFO:  # this onnxruntime cannot: the fallback, said once for every batch size
        assert not runner.pinned and not entry.pinned
        assert "cannot allocate an OrtValue from a memory info" in runner.pinned_reason
        np.testing.assert_array_equal(runner.run(feeds, pixels=True), to_uint8_nhwc(want[0]))
        return
    assert runner.pinned and entry.pinned and runner.pinned_reason == "the CPU's memory, standing in"
    image = entry.host_buffer("image", [5, 3, 4, 5], np.float32)
    second = runner.run(other)
    np.testing.assert_array_equal(second, want[1])
    assert not np.shares_memory(first, second)  # the caller's own arrays, not views of the reused buffer
    assert entry.host_buffer("image", [5, 3, 4, 5], np.float32) is image and entry.runs == 2
    pixels = runner.run(feeds, pixels=True)  # the model's output stays in its own buffer; the tail's comes back
    np.testing.assert_array_equal(pixels, to_uint8_nhwc(want[0]))
    assert entry.pinned and entry.pixels is None  # no device pixel buffer was needed
    np.testing.assert_array_equal(runner.run(other, pixels=True), to_uint8_nhwc(want[1]))
    # device output still writes the caller's buffer (a bind to its address), then the host buffer again
    target = runner.device_buffer([5, 3, 4, 5], np.float32)
    runner.run_into(feeds, target, 0)
    np.testing.assert_array_equal(target.numpy(), want[0])
    np.testing.assert_array_equal(runner.run(other), want[1])
    assert entry.pinned and runner.cache.batches() == [5]


def test_an_onnxruntime_that_cannot_allocate_pinned_memory_binds_its_own_buffers(
    cond_model, cpu_memory_info, monkeypatch
):
    real = ort.OrtValue.ortvalue_from_shape_and_type

    def older(shape, element_type, device_type="cpu", device_id=0, vendor_id=-1, **kwargs):
        """onnxruntime 1.27's signature: no memory_info."""
        if kwargs:
            raise TypeError(f"ortvalue_from_shape_and_type() got an unexpected keyword argument {next(iter(kwargs))!r}")
        return real(shape, element_type, device_type, device_id, vendor_id)

    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_shape_and_type", staticmethod(older))
    session = _session(cond_model)
    contract = read_contract(session)
    runner = SessionRunner(session, None, io_binding=True, contract=contract, host=HostMemory(cpu_memory_info))
    assert runner.pinned  # offered, not yet tried
    feeds = _feeds(contract, 4)
    first = runner.run(feeds)
    entry = runner.cache.entry(4)
    address = entry.output.data_ptr()
    second = runner.run(feeds)
    np.testing.assert_array_equal(first, session.run(["image"], feeds)[0])
    np.testing.assert_array_equal(second, first)
    assert not runner.pinned and not entry.pinned and entry.runs == 2 and entry.output.data_ptr() == address
    assert runner.pinned_reason.endswith("cannot allocate an OrtValue from a memory info")


class PlainHostMemory(HostMemory):
    """Host buffers allocated the ordinary way (any onnxruntime): for the tests of what happens around them."""

    def allocate(self, shape, dtype):
        return ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype) if self.pinned else None


def test_a_refused_run_into_pinned_memory_falls_back_for_good(cond_model):
    session = _session(cond_model)
    contract = read_contract(session)

    class RefusesOnce(RunsOnCuda):
        """onnxruntime refusing the first run into the host buffer, as a provider without that copy would."""

        calls = 0

        def get_providers(self):
            return self.real.get_providers()

        def run_with_iobinding(self, binding, *args):
            RefusesOnce.calls += 1
            if RefusesOnce.calls == 1:
                raise RuntimeError("Fail: no data transfer registered\n(and more lines)")
            return self.real.run_with_iobinding(binding, *args)

    runner = SessionRunner(
        RefusesOnce(session),
        None,
        io_binding=True,
        contract=contract,
        host=PlainHostMemory(SimpleNamespace(device_id=0)),
    )
    feeds = _feeds(contract, 3)
    np.testing.assert_array_equal(runner.run(feeds), session.run(["image"], feeds)[0])  # the run again, unpinned
    assert RefusesOnce.calls == 2 and not runner.pinned and not runner.cache.entry(3).pinned
    assert runner.pinned_reason == "a run into page-locked memory failed: Fail: no data transfer registered"
    plain = SessionRunner(RefusesOnce(session), None, io_binding=True, contract=contract)
    RefusesOnce.calls = 0
    with pytest.raises(RuntimeError, match="no data transfer"):  # a run that was not into pinned memory: raised
        plain.run(feeds)


def test_pinned_memory_is_asked_for_only_where_outputs_live_on_a_device(
    float_model, cuda_listed, cuda_sessions, monkeypatch
):
    session = _session(float_model)
    contract = read_contract(session)
    on_cpu = open_runner(float_model, session, None, contract, True, "cpu", None, False, None)
    assert on_cpu.cache is not None and not on_cpu.pinned
    assert on_cpu.pinned_reason == "CPUExecutionProvider leaves its outputs in host memory already"
    assert not Generator(float_model).pinned_output and not Generator(float_model, io_binding=True).pinned_output
    stand_in = SimpleNamespace(device_id=0)
    monkeypatch.setattr(
        ort,
        "get_ep_devices",
        lambda: [
            EpDevice("CPUExecutionProvider", {}),
            EpDevice("CUDAExecutionProvider", {ort.OrtDeviceMemoryType.HOST_ACCESSIBLE: stand_in}),
        ],
    )
    on_cuda = open_runner(float_model, RunsOnCuda(session), None, contract, None, "cuda", None, True, None)
    assert on_cuda.pinned and on_cuda.cache.host.memory_info is stand_in  # the default: pinned_output on
    off = open_runner(
        float_model, RunsOnCuda(session), None, contract, None, "cuda", None, True, CudaOptions(pinned_output=False)
    )
    assert not off.pinned and off.pinned_reason == "CudaOptions(pinned_output=False)"
    graph = open_runner(
        float_model, RunsOnCuda(session), None, contract, None, "cuda", None, True, CudaOptions(cuda_graph=True)
    )
    assert graph.pinned and graph.cache.per_batch_sessions  # the PixelTail after the graph still copies back pinned


def test_a_cuda_graphs_output_stays_in_its_own_buffer(float_model):
    session = _session(float_model)
    contract = read_contract(session)
    cache = BindingCache(
        session,
        contract.io_spec(),
        open_session=lambda: _session(float_model),
        host=PlainHostMemory(SimpleNamespace(device_id=0)),
    )
    entry = cache.entry(2)
    feeds = {"z": draw_latents(2, contract.nz, 0)}
    out = entry.run(feeds, host=True)  # the graph's output address is fixed at capture: no host binding
    assert out is entry.output and not entry.pinned and entry.fixed_output
    np.testing.assert_array_equal(out.numpy(), session.run(["image"], feeds)[0])
    assert entry.host_buffer("pixels", [2, 4, 5, 1], np.uint8) is not None  # the PixelTail's, after it, may be
