"""onnxruntime sessions: provider names, session options, and the check that the provider asked for runs.

PROVIDERS is the one list of provider names ("cpu", "cuda", "tensorrt", "auto") the library and the CLI accept.

onnxruntime quietly falls back to the CPU when a provider cannot load (it only warns); here the session is
checked after creation and a silent fallback becomes a ProviderError unless the caller allowed it. The bench
helper reuses `session_options` and `create_session` so every number it reports comes from the same setup.
onnxruntime is imported inside the functions: `import edgegan.runtime` stays cheap. So are hashlib (its OpenSSL
load is a few ms of every cold start), platform, tempfile and the cache root: only `optimized_model` and the
TensorRT chain need them (benchmarks/probes/cold_start_profile.py shows what each import costs).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgegan.runtime.errors import EdgeganError

if TYPE_CHECKING:  # only for annotations; never imported at run time here
    import numpy as np
    import onnxruntime as ort

PROVIDERS = ("cpu", "cuda", "tensorrt", "auto")
EXECUTION_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")
# Providers whose output lives on the GPU: IO binding keeps the image there until one copy back per batch.
DEVICE_PROVIDERS = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda"}


class ProviderError(EdgeganError):
    """The requested execution provider is unknown, missing, or was silently replaced by another one."""


#: cuDNN convolution algorithm search of onnxruntime's CUDA provider (its `cudnn_conv_algo_search`).
CONV_ALGO_SEARCH = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")


@dataclass(frozen=True)
class CudaOptions:
    """The CUDA provider's levers, one field each; `cuda_provider_options` turns them into onnxruntime's strings.

    Every default is a choice to be confirmed on the GPU (benchmarks/gpu_check.py measures them on an H200);
    none is measured yet. Why each starts where it does (docs/reference_figures.md, "Known levers", from onnxruntime's issues):

    Attributes:
        device_id: the GPU.
        conv_algo_search: "EXHAUSTIVE" (cuDNN times every algorithm once per shape: slow first call, fastest
            after), "HEURISTIC" (cuDNN's guess, no first-call search) or "DEFAULT" (since 1.20 the frontend's
            fallback, reported ~4x slower on conv models). Default EXHAUSTIVE: a Generator runs a handful of
            batch shapes many times.
        prefer_nhwc: NHWC Conv/ConvTranspose kernels (cuDNN 9, Tensor Cores); onnxruntime inserts the layout
            Transposes itself, so the graph stays NCHW and the contract is unchanged.
        cuda_graph: capture the whole run as one CUDA graph on its first call (`enable_cuda_graph`): one launch
            per call instead of one per node. Needs every node on the CUDA provider, fixed input/output
            addresses and shapes: runtime/io_binding.py keeps one bound set of buffers per batch size.
        tf32: TensorFloat-32 matrix products (`use_tf32`). Off: its 10-bit mantissa errs ~1e-3 on [-1, 1], ten
            times the fp32 export's budget (1e-4); fp16 is the precision lever that the contract records.
        max_workspace: let cuDNN use the largest workspace (`cudnn_conv_use_max_workspace`): faster algorithms.
        copy_in_default_stream: host <-> device copies on the compute stream (no cross-stream sync per call).
        pinned_output: the runtime's own lever, not a provider option: images come back to the host through
            page-locked (pinned) host memory bound as the run's output (runtime/io_binding.py), so the device ->
            host copy is one DMA from the device; a copy into pageable memory is staged by the driver through its
            own pinned buffer, in pieces. Default on, to be confirmed on the H200 (benchmarks/gpu_check.py): the
            caller still gets its own array, one host memcpy out of the reused pinned buffer. Where onnxruntime
            offers no such memory (the CPU provider, an onnxruntime without EP-device memory: see
            `pinned_memory_info`) ordinary host memory is used; `Generator.pinned_output` says which ran.
    """

    device_id: int = 0
    conv_algo_search: str = "EXHAUSTIVE"
    prefer_nhwc: bool = True
    cuda_graph: bool = False
    tf32: bool = False
    max_workspace: bool = True
    copy_in_default_stream: bool = True
    pinned_output: bool = True  # a default to be confirmed on the H200 (docstring)


def cuda_provider_options(options: CudaOptions | None = None) -> dict[str, str]:
    """onnxruntime's CUDAExecutionProvider options for `options` (a pure function: no GPU needed to test it).

    Returns:
        {"device_id": "0", "cudnn_conv_algo_search": "EXHAUSTIVE", "prefer_nhwc": "1", ...}: every key is
        always written, so the session never depends on the installed release's own defaults.

    Raises:
        ProviderError: an unknown algorithm search or a negative device id.
    """
    options = options or CudaOptions()
    if options.conv_algo_search not in CONV_ALGO_SEARCH:
        raise ProviderError(
            f"unknown cuDNN algorithm search {options.conv_algo_search!r}; choose one of {', '.join(CONV_ALGO_SEARCH)}"
        )
    if options.device_id < 0:
        raise ProviderError(f"CUDA device id must be >= 0, got {options.device_id}")
    flag = {True: "1", False: "0"}
    return {
        "device_id": str(options.device_id),
        "cudnn_conv_algo_search": options.conv_algo_search,
        "prefer_nhwc": flag[options.prefer_nhwc],
        "enable_cuda_graph": flag[options.cuda_graph],
        "use_tf32": flag[options.tf32],
        "cudnn_conv_use_max_workspace": flag[options.max_workspace],
        "do_copy_in_default_stream": flag[options.copy_in_default_stream],
    }


def pinned_memory_info(execution_provider: str, device_id: int = 0, ort_module: Any = None) -> tuple[Any, str]:
    """The page-locked host memory onnxruntime offers for the copy back from `execution_provider`'s device.

    onnxruntime lists each execution provider's devices (`get_ep_devices()`, 1.27 has it); an OrtEpDevice gives the
    OrtMemoryInfo of its memory kinds, HOST_ACCESSIBLE being host memory the device reaches by DMA (the CUDA
    provider's pinned memory; TensorRT runs behind the CUDA provider, so its device or the CUDA provider's
    serves). A pure function of the module given (tests pass a stand-in for onnxruntime; no GPU needed).

    Args:
        execution_provider: the running provider, e.g. "CUDAExecutionProvider".
        device_id: the GPU whose memory info is wanted (the OrtMemoryInfo's device_id).
        ort_module: the onnxruntime module (default: the installed one).

    Returns:
        (memory_info, reason): the OrtMemoryInfo to allocate from and what it is, or (None, why ordinary host
        memory is used instead): the CPU provider, an onnxruntime without EP devices, no device of the provider,
        or a device whose memory_info(HOST_ACCESSIBLE) is None.
    """
    if execution_provider not in DEVICE_PROVIDERS:
        return None, f"{execution_provider} leaves its outputs in host memory already"
    if ort_module is None:
        import onnxruntime

        ort_module = onnxruntime
    version = getattr(ort_module, "__version__", "?")
    ep_devices = getattr(ort_module, "get_ep_devices", None)
    kinds = getattr(ort_module, "OrtDeviceMemoryType", None)
    if ep_devices is None or kinds is None:
        return None, f"onnxruntime {version} lists no execution provider devices (it has no get_ep_devices)"
    listed = list(ep_devices())
    for name in dict.fromkeys((execution_provider, "CUDAExecutionProvider")):  # its own device first
        for ep_device in listed:
            if ep_device.ep_name != name:
                continue
            info = ep_device.memory_info(kinds.HOST_ACCESSIBLE)
            if info is not None and getattr(info, "device_id", device_id) == device_id:
                return info, f"page-locked host memory of {name} device {device_id}"
    return None, (
        f"no {execution_provider} device of onnxruntime {version} offers host-accessible memory for "
        f"device {device_id} (devices listed: {', '.join(d.ep_name for d in listed) or 'none'})"
    )


def session_options(
    threads: int | None = None,
    graph_optimization: str = "all",
    spinning: bool | None = None,
    memory_arena: bool = True,
    log_level: int = 3,
) -> ort.SessionOptions:
    """Build onnxruntime SessionOptions the same way for sampling and benchmarking.

    Args:
        threads: intra-op threads (None: onnxruntime's default, one per physical core). Inter-op is always 1:
            a generator is one chain of ops, so a second pool only costs memory.
        graph_optimization: "disable", "basic", "extended" or "all" (onnxruntime's levels).
        spinning: whether idle intra-op threads spin (None: onnxruntime's default, on). Spinning lowers
            latency of back-to-back calls but burns CPU between them; benchmarks turn it on, servers may not.
        memory_arena: keep onnxruntime's CPU arena (reuses buffers across calls; off lowers peak memory).
        log_level: onnxruntime's log severity (3 = errors only: our own messages replace its warnings).

    Returns:
        onnxruntime.SessionOptions.
    """
    import onnxruntime as ort

    if threads is not None and threads <= 0:
        raise ProviderError(f"threads must be a positive number, got {threads}")
    if graph_optimization not in GRAPH_OPTIMIZATIONS:
        raise ProviderError(
            f"unknown graph optimization {graph_optimization!r}; choose one of {', '.join(GRAPH_OPTIMIZATIONS)}"
        )
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[graph_optimization]
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.enable_cpu_mem_arena = memory_arena
    options.log_severity_level = log_level
    return options


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers (e.g. ["CPUExecutionProvider"])."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def resolve_provider(name: str) -> str:
    """Map a provider name to the execution provider to ask for.

    "auto" is CUDA when this onnxruntime build has it, else CPU. TensorRT is never picked automatically: its
    first session builds an engine (seconds to minutes), and onnxruntime-gpu lists it even where the TensorRT
    libraries are absent; ask for it by name.

    Args:
        name: one of PROVIDERS.

    Returns:
        An onnxruntime execution provider name, e.g. "CUDAExecutionProvider".
    """
    if name not in PROVIDERS:
        raise ProviderError(f"unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}")
    if name == "auto":
        return "CUDAExecutionProvider" if "CUDAExecutionProvider" in available_providers() else "CPUExecutionProvider"
    return EXECUTION_PROVIDERS[name]


def provider_chain(execution_provider: str, cuda: CudaOptions | None = None) -> list[Any]:
    """Providers to pass to InferenceSession for one requested provider, most preferred first.

    Nodes the first provider cannot run go to the next ones (TensorRT -> CUDA -> CPU), which is onnxruntime's
    normal partitioning and not a fallback: the session's first provider is still the one asked for.
    TensorRT keeps its built engines in a cache (EDGEGAN_TRT_CACHE, default ~/.cache/edgegan/tensorrt) so only
    the first load of a model pays for the build. The CUDA provider, asked for or behind TensorRT, gets
    `cuda_provider_options(cuda)`.
    """
    cuda_entry = ("CUDAExecutionProvider", cuda_provider_options(cuda))
    if execution_provider == "TensorrtExecutionProvider":
        from edgegan.runtime.files import cache_root

        cache = Path(os.environ.get("EDGEGAN_TRT_CACHE", cache_root() / "tensorrt"))
        options = {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache)}
        return [(execution_provider, options), cuda_entry, "CPUExecutionProvider"]
    if execution_provider == "CUDAExecutionProvider":
        return [cuda_entry, "CPUExecutionProvider"]
    return [execution_provider]


def check_provider(session: ort.InferenceSession, asked: str, allow_fallback: bool = False) -> str | None:
    """Compare the provider that runs with the one asked for.

    Args:
        session: a created InferenceSession.
        asked: the execution provider requested (e.g. "CUDAExecutionProvider").
        allow_fallback: warn instead of raising when another provider runs.

    Returns:
        None when `asked` runs; otherwise a description of the fallback (only with allow_fallback).

    Raises:
        ProviderError: another provider runs and allow_fallback is False.
    """
    running = session.get_providers()[0]
    if running == asked:
        return None
    message = f"asked for {asked} but onnxruntime runs {running} (available: {', '.join(available_providers())})"
    if not allow_fallback:
        raise ProviderError(
            message + "; install the matching onnxruntime build (onnxruntime-gpu for cuda/tensorrt) and drivers, "
            "or pass allow_fallback=True (--allow-fallback) to accept it"
        )
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return f"{asked} -> {running}"


def create_session(
    path: str | os.PathLike,
    provider: str = "cpu",
    options: ort.SessionOptions | None = None,
    allow_fallback: bool = False,
    cuda: CudaOptions | None = None,
) -> tuple[ort.InferenceSession, str | None]:
    """Create an InferenceSession on the requested provider and check that it really runs there.

    Args:
        path: an .onnx or .ort model file.
        provider: one of PROVIDERS.
        options: SessionOptions (default: `session_options()`).
        allow_fallback: accept (with a warning) a session whose first provider is not the one asked for
            (always accepted for "auto").
        cuda: the CUDA provider's options (default: `CudaOptions()`), used when CUDA is in the chain.

    Returns:
        (session, fallback): fallback is None, or "asked -> running" when a fallback was accepted.

    Raises:
        ProviderError: unknown provider, provider missing from this onnxruntime build, or a silent fallback.
    """
    import onnxruntime as ort

    asked = resolve_provider(provider)
    allow_fallback = allow_fallback or provider == "auto"  # "auto" means "best that works": report, never refuse
    if asked not in available_providers() and not allow_fallback:
        raise ProviderError(
            f"provider {provider!r} needs {asked}, which this onnxruntime build lacks "
            f"(available: {', '.join(available_providers())}); install onnxruntime-gpu for cuda/tensorrt, "
            "or pass allow_fallback=True (--allow-fallback) to run on what is available"
        )
    with warnings.catch_warnings():
        # onnxruntime warns "Specified provider ... is not in available provider names" and carries on with the
        # CPU; check_provider below turns that into our error or our own warning, so silence the duplicate.
        warnings.filterwarnings("ignore", message=".*provider.*", category=UserWarning)
        session = ort.InferenceSession(
            str(path), sess_options=options or session_options(), providers=provider_chain(asked, cuda)
        )
    fallback = check_provider(session, asked, allow_fallback)
    return session, fallback


def output_device(session: ort.InferenceSession) -> str:
    """Where the running provider leaves outputs: "cuda" for CUDA/TensorRT, else "cpu"."""
    return DEVICE_PROVIDERS.get(session.get_providers()[0], "cpu")


def run_io_binding(
    session: ort.InferenceSession, feeds: Mapping[str, np.ndarray], output: str, device: str = "cpu"
) -> np.ndarray:
    """One run through IO binding: inputs copied host -> device once, output kept on `device`, copied back once.

    A binding is built per call because IO binding objects are not thread-safe (session.run is); this keeps a
    shared Generator safe to use from many threads. With device "cpu" the same path runs (and is tested) on
    machines without a GPU.

    Args:
        session: the InferenceSession.
        feeds: input name -> host array (C-contiguous).
        output: the output name to fetch.
        device: "cpu" or "cuda" (where onnxruntime allocates the output).

    Returns:
        The output as a host numpy array.
    """
    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_cpu_input(name, array)  # one host -> device copy per input
    binding.bind_output(output, device)  # onnxruntime allocates it on `device` with the run's shape
    session.run_with_iobinding(binding)
    result = binding.copy_outputs_to_cpu()[0]  # the one device -> host copy
    binding.clear_binding_inputs()
    binding.clear_binding_outputs()
    return result


def optimized_model(path: str | os.PathLike, folder: str | os.PathLike | None = None) -> Path:
    """onnxruntime's fully optimized graph of a model for this machine, saved once and reused.

    Loading the saved file with graph optimization "disable" skips the optimizer at every later session
    creation. The "all" level writes hardware-specific kernels (NCHWc blocking for this CPU's SIMD width), so
    the file name carries a key of the model file (size, mtime), the onnxruntime version and the CPU's flags:
    another machine or library version gets its own file instead of a wrong one.

    Args:
        path: an .onnx model.
        folder: where to keep the file (default: beside the model; ~/.cache/edgegan/ortopt if that folder is
            not writable).

    Returns:
        The path of the optimized .onnx file (metadata and inputs/outputs as in the original).
    """
    import hashlib
    import platform
    import tempfile

    import onnxruntime as ort

    from edgegan.runtime.cpu import cpu_info
    from edgegan.runtime.files import cache_root

    path = Path(path)
    stat = path.stat()
    cpu = cpu_info()  # the kernels onnxruntime fused for: another CPU gets its own file
    machine = f"{cpu['model']}|{' '.join(cpu['flags'])}|{platform.machine()}"
    key = hashlib.sha256(f"{stat.st_size}|{stat.st_mtime_ns}|{ort.__version__}|{machine}".encode()).hexdigest()[:12]
    folder = Path(folder) if folder is not None else path.parent
    if not os.access(folder, os.W_OK):
        folder = cache_root() / "ortopt"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.stem}.ortopt-{key}.onnx"
    if target.is_file():
        return target
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".onnx", dir=folder)
    os.close(fd)
    try:
        options = session_options(graph_optimization="all")
        options.optimized_model_filepath = tmp
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)  # atomic: a concurrent reader sees no file or the whole file
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
