"""Open a model file as an onnxruntime session, read its contract and check its signature against io_spec().

numpy + onnxruntime only (onnxruntime through runtime/providers.py). The TensorRT backend reads an engine's
contract through these functions too, from the generator.onnx beside it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgegan.runtime.contract import (
    BATCH_AXIS,
    GRAPH_FORM_CONVTRANSPOSE,
    GRAPH_FORMS,
    INPUT_LATENT,
    KEY_GRAPH_FORM,
    OUTPUT_IMAGE,
    OUTPUT_UINT8_NHWC,
    ContractError,
    GeneratorContract,
    TensorSpec,
    shape_text,
)
from edgegan.runtime.errors import EdgeganError, ModelFileError, first_line
from edgegan.runtime.external_data import check_model_file
from edgegan.runtime.io_binding import DEFAULT_CAPACITY, BindingCache, BoundBatch, HostMemory, PixelTail
from edgegan.runtime.providers import (
    CudaOptions,
    ProviderError,
    check_provider,
    create_session,
    output_device,
    pinned_memory_info,
    provider_chain,
    resolve_provider,
    run_io_binding,
)

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = [
    "MODEL_SUFFIXES",
    "PROVIDER_FORMS",
    "ProviderForm",
    "resolve_model_path",
    "check_provider_form",
    "check_signature",
    "read_contract",
    "load_session",
    "SessionRunner",
]

MODEL_SUFFIXES = (".onnx", ".ort", ".plan")


@dataclass(frozen=True)
class ProviderForm:
    """The file an export writes beside generator.onnx for one execution provider, and the graph form its contract
    records (edgegan.graph_form): the same contract otherwise (runtime/contract.py with_graph_form)."""

    file: str
    graph_form: str


#: The graph form an export writes for one execution provider (export/variants/cuda.py), beside generator.onnx: a
#: folder loaded on that provider opens it instead. generator.onnx's phase convolutions are the CPU provider's
#: fast form; cuDNN runs the plain ConvTranspose form as one kernel per layer.
PROVIDER_FORMS = {"CUDAExecutionProvider": ProviderForm("generator.cuda.onnx", GRAPH_FORM_CONVTRANSPOSE)}


def resolve_model_path(path: str | os.PathLike, provider: str | None = None) -> Path:
    """Check a model path: an existing .onnx/.ort/.plan file, or a folder holding generator.onnx.

    A folder loaded on a provider with a form of its own (PROVIDER_FORMS; "cuda", or "auto" where CUDA is
    available) gives that file when the export wrote it (`check_provider_form` then reads the form its contract
    records); a file path is always taken as it is.
    """
    p = Path(path)
    if p.is_dir():
        form = PROVIDER_FORMS.get(resolve_provider(provider)) if provider in ("cuda", "auto") else None
        if form is not None and (p / form.file).is_file() and (p / "generator.onnx").is_file():
            return p / form.file
        if (p / "generator.onnx").is_file():
            return p / "generator.onnx"
        raise ModelFileError(f"{p} is a folder without generator.onnx; pass the file `edgegan export` wrote")
    if not p.exists():
        raise ModelFileError(f"model file not found: {p} (pass a generator.onnx written by `edgegan export`)")
    if p.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelFileError(
            f"{p} is not an ONNX model (expected a {', '.join(MODEL_SUFFIXES)} file written by `edgegan export`)"
        )
    return p


def check_provider_form(path: Path, contract: GeneratorContract) -> None:
    """Check the graph form recorded by a file that `resolve_model_path` picked from a folder for its provider.

    Its contract must record that provider's form (ProviderForm.graph_form), or none (files exported before
    edgegan.graph_form), or a form this runtime does not know (a newer export's); a known form of another provider
    is refused: the folder mixes files, and its generator.onnx is the one to load.

    Raises:
        ContractError: naming the file, both forms and the way out.
    """
    form = next((f for f in PROVIDER_FORMS.values() if f.file == path.name), None)
    recorded = contract.graph_form
    if form is None or recorded is None or recorded == form.graph_form or recorded not in GRAPH_FORMS:
        return
    raise ContractError(
        f"{path} records the graph form {recorded!r} ({KEY_GRAPH_FORM}), not the {form.graph_form!r} form its name "
        f"stands for: export the folder again with --cuda, or load {path.parent / 'generator.onnx'} by its path"
    )


def _tensor_problem(role: str, arg: Any, want: TensorSpec, note: str) -> str | None:
    """What is wrong with one NodeArg (name, type, shape) against its TensorSpec, or None.

    A fixed dim of the spec must match where the model fixes it too (a symbolic or unknown dim is accepted);
    the spec's batch axis must not be fixed by the model.
    """
    dims = list(arg.shape)
    wrong_dim = any(isinstance(d, int) and isinstance(w, int) and d != w for d, w in zip(dims, want.shape))
    if arg.type != want.ort_type or len(dims) != len(want.shape) or wrong_dim:
        expected = f"{want.ort_type} {shape_text(want.shape)}"
        return f"{role} {arg.name} is {arg.type} {shape_text(dims)}, expected {expected}{note}"
    fixed = [d for d, w in zip(dims, want.shape) if w == BATCH_AXIS and isinstance(d, int)]
    if fixed:
        return f"{role} {arg.name} has a fixed batch of {fixed[0]}; the contract needs a dynamic batch axis"
    return None


def check_signature(inputs: Sequence[Any], outputs: Sequence[Any], contract: GeneratorContract) -> None:
    """Check a session's inputs and outputs (onnxruntime NodeArgs: name, type, shape) against `contract.io_spec()`:
    names, onnxruntime types, fixed dims, and a dynamic batch axis on every tensor.

    Raises:
        ContractError: naming every input or output that is missing, extra, or of the wrong type or shape.
    """
    spec = contract.io_spec()
    problems: list[str] = []
    names = [i.name for i in inputs]
    if sorted(names) != sorted(spec.input_names):
        kind = f"conditional with {contract.num_classes} classes" if contract.conditional else "unconditional"
        problems.append(f"inputs are {names} but an {kind} generator takes {spec.input_names}")
    out_names = [o.name for o in outputs]
    if out_names != spec.output_names:
        problems.append(f"outputs are {out_names}, expected {spec.output_names}")
    output_note = f" (edgegan.output={contract.output})"  # the key that decides the image's form
    for role, args, wanted, note in (
        ("input", inputs, spec.inputs, ""),
        ("output", outputs, spec.outputs, output_note),
    ):
        by_name = {t.name: t for t in wanted}
        for arg in args:
            problem = _tensor_problem(role, arg, by_name[arg.name], note) if arg.name in by_name else None
            if problem:
                problems.append(problem)
    if problems:
        raise ContractError("not an edgegan generator: " + "; ".join(problems))


def read_contract(session: ort.InferenceSession) -> GeneratorContract:
    """Read the contract from a session's metadata (no onnx import) and check its inputs and outputs.

    Args:
        session: an onnxruntime InferenceSession.

    Returns:
        The model's GeneratorContract.

    Raises:
        ContractError: metadata missing or malformed, unknown contract version, or a mismatching signature.
    """
    contract = GeneratorContract.from_metadata(session.get_modelmeta().custom_metadata_map)
    check_signature(session.get_inputs(), session.get_outputs(), contract)
    return contract


def load_session(
    path: str | os.PathLike,
    provider: str = "cpu",
    options: ort.SessionOptions | None = None,
    allow_fallback: bool = False,
    cuda: CudaOptions | None = None,
) -> tuple[ort.InferenceSession, str | None]:
    """`providers.create_session` (same arguments), load failures (not ONNX, corrupt file) made ModelFileError.

    The file is scanned first (runtime/external_data.py): a model that keeps tensors in another file is refused
    before onnxruntime opens it, whichever onnxruntime version is installed.
    """
    try:
        check_model_file(path, options)  # the options may force a format: scan as onnxruntime will parse
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return create_session(path, provider, options, allow_fallback, cuda)
    except EdgeganError:
        raise
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf / InvalidGraph classes
        reason = first_line(exc)
        raise ModelFileError(f"onnxruntime cannot load {path} as an ONNX model: {reason}") from exc


class SessionRunner:
    """Runs one batch on an onnxruntime session, through IO binding where outputs live on a device.

    With a contract, IO binding runs through runtime/io_binding.py's BindingCache (buffers bound once per batch
    size; with `open_session`, one session and CUDA graph per batch size); without one, a binding per call.
    The Generator's other runner is runtime/tensorrt_backend.py's TensorRTEngine: both offer `run(feeds)`,
    `providers`, `fallback` and `max_batch`.

    Args:
        session: the model's session.
        fallback: None, or "asked -> running".
        io_binding: bind inputs and outputs (None: where the provider's outputs live on a device).
        contract: the model's contract (its io_spec() sizes the bound buffers).
        open_session: a fresh session of the same model per batch size (the CUDA-graph path), or None.
        tail_session: a session of PixelTail.model(image) on the same provider: uint8 pixels made on the device.
        device_id: the GPU of the buffers.
        capacity: batch sizes kept bound.
        host: page-locked host memory for the copy back (runtime/io_binding.py HostMemory); None: ordinary.
    """

    max_batch: int | None = None

    def __init__(
        self,
        session: ort.InferenceSession,
        fallback: str | None,
        io_binding: bool | None,
        contract: GeneratorContract | None = None,
        open_session: Callable[[], ort.InferenceSession] | None = None,
        tail_session: ort.InferenceSession | None = None,
        device_id: int = 0,
        capacity: int = DEFAULT_CAPACITY,
        host: HostMemory | None = None,
    ):
        self.session = session
        self.fallback = fallback
        self.device = output_device(session)
        self.device_id = device_id
        self.io_binding = (self.device != "cpu") if io_binding is None else io_binding
        self.cache = None
        if self.io_binding and contract is not None:
            self.cache = BindingCache(session, contract.io_spec(), self.device, device_id, capacity, open_session, host)
        self.tail = None
        if tail_session is not None and contract is not None and contract.output != OUTPUT_UINT8_NHWC:
            self.tail = PixelTail(tail_session, contract.image_shape_nchw, self.device, device_id)

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    @property
    def pinned(self) -> bool:
        """Copy backs land in page-locked host memory (CudaOptions.pinned_output where onnxruntime offers it);
        a float copy back under the CUDA graph still comes from the graph's device buffer (`BoundBatch.pinned`
        says, per batch size, what the last one did)."""
        return self.cache is not None and self.cache.host.pinned

    @property
    def pinned_reason(self) -> str:
        """What the copy back lands in, or why not page-locked memory."""
        if self.cache is None:
            return "no bound buffers (io_binding off, or no contract): onnxruntime's own copy back"
        return self.cache.host.reason

    @property
    def device_pixels(self) -> bool:
        """uint8 pixels of a float model are made on the device (PixelTail), so `run(..., pixels=True)` works."""
        return self.tail is not None and self.cache is not None

    def run(self, feeds: dict[str, np.ndarray], pixels: bool = False) -> np.ndarray:
        """One batch: feeds z [b, nz] (+ label [b]) -> the image output as a host array; with `pixels` (only where
        `device_pixels`), uint8 [b, H, W, C] made on the device, so a quarter of the bytes come back."""
        if self.cache is None:
            if self.io_binding:
                return run_io_binding(self.session, feeds, OUTPUT_IMAGE, self.device)
            return self.session.run([OUTPUT_IMAGE], feeds)[0]
        batch = len(feeds[INPUT_LATENT])
        entry = self.cache.entry(batch)
        with entry.lock:  # until the reused buffer has been copied out
            try:
                out = self._run_back(entry, feeds, pixels)
            except Exception as exc:
                if not entry.pinned:
                    raise
                # onnxruntime took the page-locked buffer but refused to run into it: ordinary memory for good
                self.cache.host.refuse(f"a run into page-locked memory failed: {first_line(exc)}")
                entry.drop_host()
                out = self._run_back(entry, feeds, pixels)
            array = out.numpy()  # a device buffer: its one copy to the host; a host buffer: a view of it
            # a view of the reused buffer (CPU, page-locked) becomes the caller's own array
            return array.copy() if array.ctypes.data == out.data_ptr() else array

    def _run_back(self, entry: BoundBatch, feeds: dict[str, np.ndarray], pixels: bool) -> ort.OrtValue:
        """One run whose output is coming back to the host: the OrtValue holding it (page-locked where there is
        such memory, `entry.pinned` says)."""
        tail = self.tail
        if pixels and tail is not None and self.device_pixels:
            entry.pinned = False
            source = entry.run(feeds)  # float [b, C, H, W], stays on the device
            buffer = tail.buffer(entry, host=True)  # uint8 [b, H, W, C]: the copy back's target
            tail.run(source, len(feeds[INPUT_LATENT]), buffer if entry.pinned else buffer.data_ptr())
            return buffer
        return entry.run(feeds, host=True)

    def device_buffer(self, shape: Sequence[int], dtype: Any) -> ort.OrtValue:
        """A new OrtValue of `shape` and numpy `dtype` where this session's outputs live."""
        import onnxruntime as ort

        return ort.OrtValue.ortvalue_from_shape_and_type(list(shape), np.dtype(dtype).type, self.device, self.device_id)

    def run_into(self, feeds: dict[str, np.ndarray], target: ort.OrtValue, start: int, pixels: bool = False) -> None:
        """One batch written straight into rows [start, start + b) of `target` (a `device_buffer`): the images
        never leave the device. pixels: the float output through the PixelTail into a uint8 target."""
        if self.cache is None:
            raise ProviderError("device output needs IO binding (io_binding=True) and the model's contract")
        batch = len(feeds[INPUT_LATENT])
        rows = target.shape()[0]
        address = target.data_ptr() + start * (target.tensor_size_in_bytes() // rows)
        entry = self.cache.entry(batch)
        with entry.lock:
            if pixels and self.tail is not None:
                self.tail.run(entry.run(feeds), batch, address)
            elif self.cache.per_batch_sessions:
                raise ProviderError(
                    "float images cannot be written to a caller's buffer from a CUDA graph (its "
                    "output address is fixed at capture); load with cuda_graph off"
                )
            else:
                entry.run(feeds, into=address)


def open_runner(
    path: Path,
    session: ort.InferenceSession,
    fallback: str | None,
    contract: GeneratorContract,
    io_binding: bool | None,
    provider: str,
    options: ort.SessionOptions | None,
    allow_fallback: bool,
    cuda: CudaOptions | None,
    device_pixels: bool | None = None,
) -> SessionRunner:
    """The Generator's SessionRunner for a loaded session: a session per batch size when the CUDA graph is on,
    and the PixelTail session on the same provider where the float -> uint8 step should run on the device
    (device_pixels None: where outputs live on a device)."""
    import onnxruntime as ort

    cuda = cuda or CudaOptions()
    device = output_device(session)
    on_cuda = session.get_providers()[0] == "CUDAExecutionProvider"
    open_session = None
    if on_cuda and cuda.cuda_graph and io_binding is False:
        raise ProviderError(
            "the CUDA graph replays fixed buffers, which need IO binding: drop io_binding=False or "
            "load with CudaOptions(cuda_graph=False)"
        )
    if on_cuda and cuda.cuda_graph:
        open_session = lambda: load_session(path, provider, options, allow_fallback, cuda)[0]  # noqa: E731
    tail = None
    wants_tail = device != "cpu" if device_pixels is None else device_pixels
    if wants_tail and contract.output != OUTPUT_UINT8_NHWC:
        running = session.get_providers()[0]
        plain = dataclasses.replace(cuda, cuda_graph=False)  # six elementwise nodes: nothing to capture
        tail = ort.InferenceSession(
            PixelTail.model(contract.image_shape_nchw), options, providers=provider_chain(running, plain)
        )
        check_provider(tail, running)
    if io_binding is None and (open_session is not None or tail is not None):
        io_binding = True
    host = (
        HostMemory(*pinned_memory_info(session.get_providers()[0], cuda.device_id))
        if cuda.pinned_output
        else HostMemory(None, "CudaOptions(pinned_output=False)")
    )
    return SessionRunner(session, fallback, io_binding, contract, open_session, tail, cuda.device_id, host=host)
