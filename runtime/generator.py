"""`Generator`: load an edgegan `generator.onnx` (or a variant) and turn seeds into uint8 images.

numpy + onnxruntime only. The file describes itself (runtime/contract.py): latent size, classes, image shape,
output form and precision are read from its metadata, and its inputs and outputs are checked against the
contract before the first image is made.

Example:
    >>> from edgegan.runtime import Generator
    >>> g = Generator("models/fashion/generator.onnx")             # doctest: +SKIP
    >>> images = g.sample(16, seed=0, labels="sneaker")             # doctest: +SKIP
    >>> images.shape, images.dtype                                  # doctest: +SKIP
    ((16, 28, 28, 1), dtype('uint8'))
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from edgegan.runtime.contract import (
    INPUT_LABEL,
    INPUT_LATENT,
    OUTPUT_IMAGE,
    OUTPUT_UINT8_NHWC,
    ContractError,
    GeneratorContract,
    default_labels,
    draw_latents,
    to_uint8_nhwc,
)
from edgegan.runtime.errors import EdgeganError, ModelFileError
from edgegan.runtime.providers import ProviderError

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = [
    "Generator", "GeneratorInputError", "MemoryLimitError", "ModelFileError", "ModelOutputError", "ContractError",
    "ProviderError", "read_contract", "truncated_latents", "slerp", "available_memory", "check_memory", "MODEL_SUFFIXES",
]

MODEL_SUFFIXES = (".onnx", ".ort", ".plan")
MIN_TRUNCATION = 0.01
Label = Union[int, str, np.integer]


class GeneratorInputError(EdgeganError, ValueError):
    """A bad argument to a Generator: image count, seed, labels, latents or truncation."""


class MemoryLimitError(GeneratorInputError):
    """More images asked for at once than the memory available now holds."""


class ModelOutputError(ContractError):
    """A run returned an image tensor whose shape or dtype is not the one the model's contract promises."""


def resolve_model_path(path: str | os.PathLike) -> Path:
    """Check a model path: an existing .onnx/.ort/.plan file, or a folder holding generator.onnx."""
    p = Path(path)
    if p.is_dir():
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


def _shape_text(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def check_signature(inputs: Sequence[Any], outputs: Sequence[Any], contract: GeneratorContract) -> None:
    """Check a session's inputs and outputs (onnxruntime NodeArgs: name, type, shape) against the contract.

    Raises:
        ContractError: naming every input or output that is missing, extra, or of the wrong type or shape.
    """
    problems: list[str] = []
    want_inputs = [INPUT_LATENT] + ([INPUT_LABEL] if contract.conditional else [])
    names = [i.name for i in inputs]
    if sorted(names) != sorted(want_inputs):
        kind = f"conditional with {contract.num_classes} classes" if contract.conditional else "unconditional"
        problems.append(f"inputs are {names} but an {kind} generator takes {want_inputs}")
    by_name = {i.name: i for i in inputs}
    if INPUT_LATENT in by_name:
        z = by_name[INPUT_LATENT]
        if z.type != "tensor(float)" or len(z.shape) != 2 or (isinstance(z.shape[1], int) and z.shape[1] != contract.nz):
            problems.append(f"input z is {z.type} {_shape_text(z.shape)}, expected tensor(float) [batch, {contract.nz}]")
        elif isinstance(z.shape[0], int):
            problems.append(f"input z has a fixed batch of {z.shape[0]}; the contract needs a dynamic batch axis")
    if INPUT_LABEL in by_name and contract.conditional:
        lab = by_name[INPUT_LABEL]
        if lab.type != "tensor(int64)" or len(lab.shape) != 1:
            problems.append(f"input label is {lab.type} {_shape_text(lab.shape)}, expected tensor(int64) [batch]")
    out_names = [o.name for o in outputs]
    if out_names != [OUTPUT_IMAGE]:
        problems.append(f"outputs are {out_names}, expected [{OUTPUT_IMAGE!r}]")
    else:
        image = outputs[0]
        c, h, w = contract.image_shape_nchw
        if contract.output == OUTPUT_UINT8_NHWC:
            want_type, want_dims, text = "tensor(uint8)", (h, w, c), f"tensor(uint8) [batch, {h}, {w}, {c}]"
        else:
            want_type, want_dims, text = "tensor(float)", (c, h, w), f"tensor(float) [batch, {c}, {h}, {w}]"
        dims = list(image.shape)
        bad_dims = len(dims) != 4 or any(isinstance(d, int) and d != e for d, e in zip(dims[1:], want_dims))
        if image.type != want_type or bad_dims:
            problems.append(
                f"output image is {image.type} {_shape_text(dims)}, expected {text} (edgegan.output={contract.output})"
            )
    if problems:
        raise ContractError("not an edgegan generator: " + "; ".join(problems))


def read_contract(session: "ort.InferenceSession") -> GeneratorContract:
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
    options: "ort.SessionOptions | None" = None,
    allow_fallback: bool = False,
) -> tuple["ort.InferenceSession", str | None]:
    """create_session with load failures (not ONNX, corrupt file) turned into ModelFileError.

    The file is scanned first (runtime/external_data.py): a model that keeps tensors in another file is refused
    before onnxruntime opens it, whichever onnxruntime version is installed.
    """
    from edgegan.runtime.external_data import check_model_file
    from edgegan.runtime.providers import create_session

    try:
        check_model_file(path)
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return create_session(path, provider, options, allow_fallback)
    except EdgeganError:
        raise
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf / InvalidGraph classes
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"onnxruntime cannot load {path} as an ONNX model: {reason}") from exc


def truncated_latents(n: int, nz: int, seed: int | None, truncation: float) -> np.ndarray:
    """The contract latents with the truncation trick (BigGAN, Brock et al. 2019): every |z| <= truncation.

    Exactly: rng = np.random.default_rng(seed); z = rng.standard_normal((n, nz), dtype=float32), which is
    `draw_latents(n, nz, seed)`; then, while some entries have |z| > truncation, those entries (in row-major
    order) are replaced by `rng.standard_normal(count, dtype=float32)` from the same rng, continuing its stream.
    Entries already within the threshold keep their untruncated value, and one seed always gives the same
    latents (whatever the batch size used later).

    Args:
        n: number of latents.
        nz: latent size.
        seed: the seed (None: fresh entropy, not reproducible).
        truncation: threshold t >= MIN_TRUNCATION (0.01; below it almost every entry would be redrawn hundreds
            of times, and all images collapse to G(0) anyway).

    Returns:
        float32 [n, nz] with every |entry| <= truncation.
    """
    _check_truncation(truncation)
    _check_count(n)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, nz), dtype=np.float32)  # [n, nz], identical to draw_latents(n, nz, seed)
    threshold = np.float32(truncation)
    outside = np.abs(z) > threshold
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()), dtype=np.float32)
        outside = np.abs(z) > threshold
    return z


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation from latent a to latent b (both [nz]) in `steps` points, ends included.

    z(t) = sin((1 - t) w) / sin(w) * a + sin(t w) / sin(w) * b, with w the angle between a and b, computed in
    float64; nearly parallel latents (sin w < 1e-6) fall back to linear interpolation. The end points are a and
    b exactly.

    Returns:
        float32 [steps, nz].
    """
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]  # [steps, 1]
    cos = np.dot(a64, b64) / max(np.linalg.norm(a64) * np.linalg.norm(b64), 1e-12)
    omega = math.acos(min(1.0, max(-1.0, float(cos))))
    if math.sin(omega) < 1e-6:
        z = (1.0 - t) * a64 + t * b64
    else:
        z = (np.sin((1.0 - t) * omega) * a64 + np.sin(t * omega) * b64) / math.sin(omega)
    z = z.astype(np.float32)
    z[0], z[-1] = a, b
    return z


def _check_truncation(truncation: Any) -> float:
    if isinstance(truncation, bool) or not isinstance(truncation, (int, float, np.floating)) \
            or not math.isfinite(truncation) or truncation < MIN_TRUNCATION:
        raise GeneratorInputError(
            f"truncation must be a finite number >= {MIN_TRUNCATION} (e.g. 0.5 to 1.0), got {truncation!r}"
        )
    return float(truncation)


def available_memory() -> int | None:
    """Bytes that can be allocated now without swapping: Linux's MemAvailable (else free pages); None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""  # unreachable


def check_memory(nbytes: int, what: str, hint: str) -> None:
    """Refuse up front work that needs more memory than is available now (no check where that is unknown).

    Raises:
        MemoryLimitError: "{what} need X GiB of memory but Y GiB is available; {hint}".
    """
    available = available_memory()
    if available is not None and nbytes > available:
        raise MemoryLimitError(f"{what} need {_size(nbytes)} of memory but {_size(available)} is available; {hint}")


_QUIET_BYTES = 64 << 20  # generate() checks memory above this (reading /proc/meminfo costs tens of microseconds)
MEMORY_HINT = ("ask for fewer images at once (-n), or stream them to disk batch by batch with --npy "
               "(Generator.iter_sample)")


def _check_count(n: Any, what: str = "number of images") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise GeneratorInputError(f"{what} must be a positive integer, got {n!r}")
    return int(n)


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GeneratorInputError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


class _SessionRunner:
    """Runs one batch on an onnxruntime session, through IO binding where outputs live on a device."""

    max_batch: int | None = None

    def __init__(self, session: "ort.InferenceSession", fallback: str | None, io_binding: bool | None):
        from edgegan.runtime.providers import output_device

        self.session = session
        self.fallback = fallback
        self.device = output_device(session)
        self.io_binding = (self.device != "cpu") if io_binding is None else io_binding

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self.io_binding:
            from edgegan.runtime.providers import run_io_binding

            return run_io_binding(self.session, feeds, OUTPUT_IMAGE, self.device)
        return self.session.run([OUTPUT_IMAGE], feeds)[0]


class Generator:
    """An edgegan generator loaded from `generator.onnx`, a variant (.fp16.onnx, .int8.onnx, .ort) or a TensorRT
    engine (`generator.plan`, whose contract is read from the generator.onnx beside it).

    Safe to share between threads: onnxruntime's session.run is thread-safe and IO bindings are made per call.

    Args:
        path: the model file (or a folder holding generator.onnx).
        provider: "cpu", "cuda", "tensorrt" (onnxruntime's TensorRT provider) or "auto" (CUDA if this
            onnxruntime has it, else CPU; never an error: if CUDA cannot start it warns and records the fallback).
            A .plan engine runs on the TensorRT backend and accepts "tensorrt" or "auto".
        threads: intra-op threads (None: onnxruntime's default).
        batch_size: images per session run; results do not depend on it.
        allow_fallback: accept, with a warning, a session onnxruntime moved to another provider (recorded in
            `fallback`); by default that is a ProviderError.
        session_options: onnxruntime SessionOptions to use (default: `providers.session_options(threads,
            spinning=False)`); `threads`, when also given, overrides its intra-op count. Pass
            `session_options(spinning=True)` for the lowest latency of back-to-back calls on an idle machine.
        io_binding: run through IO binding (default: on for CUDA/TensorRT, off on the CPU).

    Raises:
        ModelFileError, ContractError, ProviderError (all EdgeganError).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        provider: str = "cpu",
        threads: int | None = None,
        batch_size: int = 64,
        allow_fallback: bool = False,
        session_options: "ort.SessionOptions | None" = None,
        io_binding: bool | None = None,
    ):
        from edgegan.runtime.providers import PROVIDERS
        from edgegan.runtime.providers import session_options as make_options

        batch_size = _check_count(batch_size, "batch size")
        if provider not in PROVIDERS:
            raise ProviderError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
        if threads is not None:
            _check_count(threads, "threads")
        self.path = resolve_model_path(path)
        if self.path.suffix.lower() == ".plan":
            from edgegan.runtime.tensorrt_backend import TensorRTEngine

            if provider not in ("tensorrt", "auto"):
                raise ProviderError(
                    f"{self.path.name} is a TensorRT engine; load it with provider='tensorrt' (--provider tensorrt)"
                )
            engine = TensorRTEngine(self.path)
            self._runner: Any = engine
            self.contract: GeneratorContract = engine.contract
        else:
            # No spinning by default: idle intra-op threads would otherwise busy-wait after every call, burning a
            # core the application (or the next process on a shared machine) needs; it also speeds a cold start.
            options = session_options if session_options is not None else make_options(threads, spinning=False)
            if session_options is not None and threads is not None:
                options.intra_op_num_threads = threads
            session, fallback = load_session(self.path, provider, options, allow_fallback)
            self.contract = read_contract(session)
            self._runner = _SessionRunner(session, fallback, io_binding)
        limit = self._runner.max_batch
        self.batch_size = min(batch_size, limit) if limit else batch_size

    # --- what the file says about itself -------------------------------------------------------------------
    @property
    def nz(self) -> int:
        """Latent size."""
        return self.contract.nz

    @property
    def num_classes(self) -> int:
        """Number of classes (0 = unconditional)."""
        return self.contract.num_classes

    @property
    def conditional(self) -> bool:
        return self.contract.conditional

    @property
    def class_names(self) -> list[str]:
        return list(self.contract.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of each image `sample` returns."""
        return (self.contract.height, self.contract.width, self.contract.channels)

    @property
    def precision(self) -> str:
        """"fp32", "fp16" or "int8", from the metadata."""
        return self.contract.precision

    @property
    def output(self) -> str:
        """The model's output form: "float_nchw" or "uint8_nhwc"."""
        return self.contract.output

    @property
    def providers(self) -> list[str]:
        """Providers the session reports, the running one first (["TensorRT engine"] for a .plan)."""
        return self._runner.providers

    @property
    def fallback(self) -> str | None:
        """None, or "asked -> running" when allow_fallback accepted another provider."""
        return self._runner.fallback

    def __repr__(self) -> str:
        h, w, c = self.image_shape
        return (
            f"Generator({str(self.path)!r}, arch={self.contract.arch}, nz={self.nz}, classes={self.num_classes}, "
            f"image={h}x{w}x{c}, precision={self.precision}, output={self.output}, provider={self.providers[0]})"
        )

    # --- inputs ---------------------------------------------------------------------------------------------
    def resolve_labels(self, labels: Label | Iterable[Label] | np.ndarray | None, n: int) -> np.ndarray | None:
        """Labels as int64 [n] for this model.

        Args:
            labels: None (conditional: arange(n) % num_classes), one label (broadcast to all n), or n labels;
                a label is an int index in [0, num_classes) or a class name (case-insensitive).
            n: number of images.

        Returns:
            int64 [n], or None for an unconditional model.
        """
        index = self._parse_labels(labels, n)
        if not self.conditional:
            return None
        if index is None:
            return default_labels(n, self.num_classes)
        return np.repeat(index, n) if len(index) == 1 else index

    def _parse_labels(self, labels: Any, n: int) -> np.ndarray | None:
        """Checked labels: None (an unconditional model, or the default rule), else int64 [1] (one for all) or [n]."""
        if not self.conditional:
            if labels is not None:
                raise GeneratorInputError(
                    "this generator is unconditional (no classes): labels cannot be used; drop them (--label)"
                )
            return None
        if labels is None:
            return None
        if isinstance(labels, np.ndarray):
            items: list[Any] = list(labels.ravel())
        elif isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
            items = [labels]  # one label (checked below), used for every image
        else:
            items = list(labels)
        if len(items) not in (1, n):
            raise GeneratorInputError(f"got {len(items)} labels for {n} images; give one label (used for all) or {n}")
        return np.array([self._label_index(item) for item in items], dtype=np.int64)

    def _label_slice(self, index: np.ndarray | None, start: int, stop: int) -> np.ndarray | None:
        """int64 [stop - start] labels of images start..stop-1 from `_parse_labels`' answer, without all n."""
        if not self.conditional:
            return None
        if index is None:  # the contract's default, arange(n) % num_classes, one slice of it
            return (np.arange(start, stop) % self.num_classes).astype(np.int64)
        if len(index) == 1:
            return np.full(stop - start, index[0], dtype=np.int64)
        return index[start:stop]

    def _label_index(self, label: Any) -> int:
        k = self.num_classes
        if isinstance(label, str):
            wanted = label.strip().casefold()
            for i, name in enumerate(self.contract.class_names):
                if name.casefold() == wanted:
                    return i
            try:
                label_int = int(wanted)
            except ValueError:
                names = ", ".join(self.contract.class_names) or f"none stored; use an index 0..{k - 1}"
                raise GeneratorInputError(f"unknown class name {label!r}; classes are: {names}") from None
            return self._label_index(label_int)
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise GeneratorInputError(f"a label is an int index or a class name, got {label!r}")
        if not 0 <= label < k:
            raise GeneratorInputError(f"label {int(label)} is out of range: this generator has classes 0..{k - 1}")
        return int(label)

    def _check_latents(self, z: Any) -> np.ndarray:
        z = np.asarray(z)
        if z.dtype.kind != "f":
            raise GeneratorInputError(f"latents must be floating point (float32), got dtype {z.dtype}")
        if z.ndim != 2 or z.shape[1] != self.nz or z.shape[0] == 0:
            raise GeneratorInputError(f"latents must have shape [N, {self.nz}] with N >= 1, got {list(z.shape)}")
        if not np.isfinite(z).all():
            raise GeneratorInputError("latents contain NaN or Inf; pass finite values")
        return np.ascontiguousarray(z, dtype=np.float32)

    # --- running --------------------------------------------------------------------------------------------
    def _expected_output(self, b: int, pixels: bool = False) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of b images: the model's own output form, or uint8 [b, H, W, C] pixels."""
        c, h, w = self.contract.image_shape_nchw
        if pixels or self.output == OUTPUT_UINT8_NHWC:
            return (b, h, w, c), np.dtype(np.uint8)
        return (b, c, h, w), np.dtype(np.float32)

    def _run(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """One batch through the model, its output checked against the contract. The declared signature is only
        a promise (checked at load); a graph that really makes another size or type is caught here, at its first
        batch, instead of ending up as a wrong-sized picture."""
        feeds = {INPUT_LATENT: z}  # [b, nz], a contiguous row slice
        if labels is not None:
            feeds[INPUT_LABEL] = labels  # [b]
        part = self._runner.run(feeds)
        shape, dtype = self._expected_output(len(z))
        if not isinstance(part, np.ndarray) or part.shape != shape or part.dtype != dtype:
            got = f"{part.dtype} {_shape_text(part.shape)}" if isinstance(part, np.ndarray) else type(part).__name__
            raise ModelOutputError(
                f"{self.path} returned {got} for a batch of {len(z)}, but its contract (edgegan.image, "
                f"edgegan.output={self.output}) promises {dtype} {_shape_text(shape)}: the graph does not match its "
                "own metadata; export it again"
            )
        return part

    def _batches(self, n: int, latents: Callable[[int, int], np.ndarray], index: np.ndarray | None,
                 pixels: bool) -> Iterator[np.ndarray]:
        """Images 0..n-1, batch_size at a time: latents(start, stop) is called once per batch, in order."""
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            part = self._run(latents(start, stop), self._label_slice(index, start, stop))
            yield to_uint8_nhwc(part) if pixels and self.output != OUTPUT_UINT8_NHWC else part

    def _collect(self, n: int, latents: Callable[[int, int], np.ndarray], index: np.ndarray | None,
                 pixels: bool) -> np.ndarray:
        shape, dtype = self._expected_output(n, pixels)
        out = np.empty(shape, dtype=dtype)
        start = 0
        for part in self._batches(n, latents, index, pixels):
            out[start : start + len(part)] = part
            start += len(part)
        return out

    def _forward(self, z: Any, labels: Any, pixels: bool) -> np.ndarray:
        """The caller's latents through the model: uint8 [N, H, W, C] pixels, or the raw output (float32
        [N, C, H, W] or uint8 [N, H, W, C]); each batch is converted as it comes, so no float copy of all N."""
        z = self._check_latents(z)
        n = len(z)
        index = self._parse_labels(labels, n)
        shape, dtype = self._expected_output(n, pixels)
        nbytes = math.prod(shape) * dtype.itemsize + self._batch_bytes()
        if nbytes > _QUIET_BYTES:  # not on every small call: the benchmark times this path
            check_memory(nbytes, f"{n} images of {self._size_text()}", MEMORY_HINT)
        return self._collect(n, lambda a, b: z[a:b], index, pixels)

    def _batch_bytes(self) -> int:
        """Working memory of one batch: its latents, the float output and to_uint8's temporaries."""
        c, h, w = self.contract.image_shape_nchw
        return self.batch_size * (4 * self.nz + 16 * c * h * w)

    def _size_text(self) -> str:
        h, w, c = self.image_shape
        return f"{h}x{w}x{c}"

    def memory_needed(self, n: int, truncation: float | None = None, hold: bool = True) -> int:
        """Bytes `sample(n)` (hold=True) or `iter_sample(n)` (hold=False) needs at its peak: the uint8 images it
        returns, the truncated latents (all n are drawn first), and one batch's working memory."""
        h, w, c = self.image_shape
        latents = n * self.nz * 9 if truncation is not None else 0  # z, |z| and the mask of entries to redraw
        return (n * h * w * c if hold else 0) + latents + self._batch_bytes()

    def _latent_source(self, n: int, seed: int | None, truncation: float | None) -> Callable[[int, int], np.ndarray]:
        """latents(start, stop) for the contract's rule, called in order. Without truncation they are drawn a batch
        at a time from one default_rng(seed): the same numbers as draw_latents(n, nz, seed) in one call."""
        if truncation is not None:
            z = truncated_latents(n, self.nz, seed, truncation)  # [n, nz]
            return lambda a, b: z[a:b]
        rng = np.random.default_rng(seed)
        return lambda a, b: rng.standard_normal((b - a, self.nz), dtype=np.float32)  # [b - a, nz]

    def generate(self, z: Any, labels: Label | Iterable[Label] | np.ndarray | None = None) -> np.ndarray:
        """Images from the caller's latents.

        Args:
            z: float [N, nz] latents (float64 is converted to float32; NaN/Inf are refused).
            labels: as in `resolve_labels`.

        Returns:
            uint8 [N, H, W, C].
        """
        return self._forward(z, labels, pixels=True)

    def generate_float(self, z: Any, labels: Label | Iterable[Label] | np.ndarray | None = None) -> np.ndarray:
        """The model's float output for the caller's latents: float32 [N, C, H, W] in [-1, 1].

        Raises:
            GeneratorInputError: the model outputs uint8 pixels (exported with --pixels uint8).
        """
        if self.output == OUTPUT_UINT8_NHWC:
            raise GeneratorInputError(
                "this generator outputs uint8 pixels (exported with --pixels uint8); use generate() or export "
                "with --pixels float for float images"
            )
        return self._forward(z, labels, pixels=False)

    def sample(
        self,
        n: int,
        seed: int | None = None,
        labels: Label | Iterable[Label] | np.ndarray | None = None,
        truncation: float | None = None,
    ) -> np.ndarray:
        """Images from seeds by the contract's latent rule: `draw_latents(n, nz, seed)`.

        Args:
            n: number of images (> 0).
            seed: non-negative int; None draws fresh latents.
            labels: None (conditional: arange(n) % num_classes), one label for all, or n labels; ints or class
                names (case-insensitive).
            truncation: None, or t >= 0.01: entries with |z| > t are redrawn (see `truncated_latents`).

        Returns:
            uint8 [n, H, W, C]; the same for any batch_size and any provider (up to rounding).

        Raises:
            MemoryLimitError: the images would not fit in the memory available now (use `iter_sample`).
        """
        n, seed, index = self._check_sample(n, seed, labels, truncation)
        check_memory(self.memory_needed(n, truncation), f"{n} images of {self._size_text()}", MEMORY_HINT)
        return self._collect(n, self._latent_source(n, seed, truncation), index, pixels=True)

    def iter_sample(
        self,
        n: int,
        seed: int | None = None,
        labels: Label | Iterable[Label] | np.ndarray | None = None,
        truncation: float | None = None,
    ) -> Iterator[np.ndarray]:
        """`sample` a batch at a time, for more images than memory holds (`edgegan sample --npy` streams them).

        Arguments are checked on the call, before the first batch is made.

        Returns:
            An iterator of uint8 [b, H, W, C] batches (b <= batch_size) whose concatenation is exactly
            `sample(n, seed, labels, truncation)`.
        """
        n, seed, index = self._check_sample(n, seed, labels, truncation)
        check_memory(self.memory_needed(n, truncation, hold=False), f"{n} images of {self._size_text()}",
                     "ask for fewer images, or sample without --truncation (it draws all latents first)")
        return self._batches(n, self._latent_source(n, seed, truncation), index, pixels=True)

    def _check_sample(self, n: Any, seed: Any, labels: Any, truncation: Any) -> tuple[int, int | None, np.ndarray | None]:
        n = _check_count(n)
        seed = _check_seed(seed)
        if truncation is not None:
            _check_truncation(truncation)
        return n, seed, self._parse_labels(labels, n)

    def interpolate(self, seed_a: int, seed_b: int, steps: int, label: Label | None = None) -> np.ndarray:
        """Walk the latent space on a great circle from seed_a's latent to seed_b's.

        The latents are `draw_latents(1, nz, seed)[0]` for each seed, so the first and last images equal
        `sample(1, seed_a)` and `sample(1, seed_b)` (conditional models: same label, default class 0).

        Args:
            seed_a, seed_b: the two seeds.
            steps: number of images (>= 2), ends included.
            label: one label for every image (conditional models; default 0).

        Returns:
            uint8 [steps, H, W, C].
        """
        steps = _check_count(steps, "steps")
        if steps < 2:
            raise GeneratorInputError(f"interpolate needs at least 2 steps, got {steps}")
        a = draw_latents(1, self.nz, _check_seed(seed_a))[0]
        b = draw_latents(1, self.nz, _check_seed(seed_b))[0]
        if label is None and self.conditional:
            label = 0
        return self.generate(slerp(a, b, steps), label)
