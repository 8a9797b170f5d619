"""`Generator`: load an edgegan generator.onnx (a variant, or a TensorRT engine) and turn seeds into uint8 images.

numpy + onnxruntime only. The file describes itself (runtime/contract.py): latent size, classes, image shape,
output form and precision are read from its metadata, and its inputs and outputs are checked against the
contract's io_spec() before the first image is made (runtime/session.py).

Example:
    >>> from edgegan.runtime import Generator
    >>> g = Generator("models/fashion/generator.onnx")             # doctest: +SKIP
    >>> images = g.sample(16, seed=0, labels="sneaker")             # doctest: +SKIP
    >>> images.shape, images.dtype                                  # doctest: +SKIP
    ((16, 28, 28, 1), dtype('uint8'))
    >>> result = g(16, seed=0, labels="sneaker")                    # doctest: +SKIP
    >>> result.images.shape, result.latents.shape, result.labels[:3], result.seed  # doctest: +SKIP
    ((16, 28, 28, 1), (16, 100), array([7, 7, 7]), 0)
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgegan.runtime.contract import (
    INPUT_LABEL,
    INPUT_LATENT,
    LATENT_RULE,
    OUTPUT_UINT8_NHWC,
    ContractError,
    GeneratorContract,
    default_labels,
    draw_latents,
    shape_text,
    to_uint8_nhwc,
)
from edgegan.runtime.errors import GeneratorInputError, MemoryLimitError, ModelFileError
from edgegan.runtime.labels import Label, check_label_tables, label_slice, parse_labels
from edgegan.runtime.latent_rule import rule_normals, rule_truncated
from edgegan.runtime.latents import check_count, check_latents, check_seed, check_truncation, slerp, truncated_latents
from edgegan.runtime.memory import MEMORY_HINT, QUIET_BYTES, available_memory, check_memory
from edgegan.runtime.providers import PROVIDERS, CudaOptions, ProviderError
from edgegan.runtime.providers import session_options as make_options
from edgegan.runtime.sample_result import SampleResult, fresh_seed
from edgegan.runtime.session import (
    MODEL_SUFFIXES,
    SessionRunner,
    check_provider_form,
    check_signature,
    load_session,
    open_runner,
    read_contract,
    resolve_model_path,
)
from edgegan.runtime.tensorrt_backend import TensorRTEngine

if TYPE_CHECKING:
    import onnxruntime as ort

# Names other code imports from here; they live in the modules above (re-exported so those imports keep working).
__all__ = [
    "Generator",
    "SampleResult",
    "GeneratorInputError",
    "MemoryLimitError",
    "ModelFileError",
    "ModelOutputError",
    "ContractError",
    "ProviderError",
    "read_contract",
    "truncated_latents",
    "slerp",
    "available_memory",
    "check_memory",
    "MODEL_SUFFIXES",
    "MEMORY_HINT",
    "check_signature",
    "load_session",
    "resolve_model_path",
]


class ModelOutputError(ContractError):
    """A run returned an image tensor whose shape or dtype is not the one the model's contract promises."""


#: What the image-returning calls hand back: host numpy arrays, or OrtValues left where the provider computed
#: them ("dlpack": each has __dlpack__, so torch.from_dlpack / cupy.from_dlpack take it without a copy).
OUTPUTS = ("numpy", "dlpack")


def _shifted(latents: Callable[[int, int], np.ndarray], offset: int) -> Callable[[int, int], np.ndarray]:
    """latents(offset + a, offset + b) as a function of (a, b): one batch's rows of a larger request."""
    return lambda a, b: latents(offset + a, offset + b)


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
        io_binding: run through IO binding (default: on for CUDA/TensorRT, off on the CPU). With it, buffers are
            bound once per batch size (runtime/io_binding.py) and reused by every call at that size.
        cuda: the CUDA provider's options (runtime/providers.py CudaOptions: cuDNN algorithm search, NHWC, CUDA
            graph, TF32, pinned host memory for the copy back); default `CudaOptions()`, whose defaults are to be
            confirmed on the GPU. With `cuda_graph=True` each batch size gets its own session and captured graph
            (a bounded cache). `pinned_output` says whether images come back through page-locked memory.
        output: "numpy" (host arrays) or "dlpack": `sample`, `generate`, `generate_float` and `__call__` return
            an onnxruntime OrtValue on the provider's device (one per batch from `iter_sample`), usable through
            DLPack by another GPU library; uint8 pixels of a float model are then made on the device too. The
            CUDA graph is not used for it (a graph writes one fixed buffer; these calls write the caller's).

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
        session_options: ort.SessionOptions | None = None,
        io_binding: bool | None = None,
        cuda: CudaOptions | None = None,
        output: str = "numpy",
    ):
        batch_size = check_count(batch_size, "batch size")
        if output not in OUTPUTS:
            raise GeneratorInputError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
        self.device_output = output == "dlpack"
        if self.device_output and cuda is not None and cuda.cuda_graph:
            cuda = dataclasses.replace(cuda, cuda_graph=False)
        if provider not in PROVIDERS:
            raise ProviderError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
        if threads is not None:
            check_count(threads, "threads")
        self.path = resolve_model_path(path, provider)
        from_folder = self.path != Path(path)  # a folder: its file for the provider, checked once the contract is read
        if self.path.suffix.lower() == ".plan":
            if provider not in ("tensorrt", "auto"):
                raise ProviderError(
                    f"{self.path.name} is a TensorRT engine; load it with provider='tensorrt' (or 'auto')"
                )
            if self.device_output:
                raise ProviderError(
                    f"{self.path.name} is a TensorRT engine: output='dlpack' needs an onnxruntime "
                    "session (load generator.onnx on 'cuda')"
                )
            engine = TensorRTEngine(self.path)
            self._runner: SessionRunner | TensorRTEngine = engine
            self.contract: GeneratorContract = engine.contract
        else:
            # No spinning by default: idle intra-op threads would otherwise busy-wait after every call, burning a
            # core the application (or the next process on a shared machine) needs; it also speeds a cold start.
            options = session_options if session_options is not None else make_options(threads, spinning=False)
            if session_options is not None and threads is not None:
                options.intra_op_num_threads = threads
            session, fallback = load_session(self.path, provider, options, allow_fallback, cuda)
            self.contract = read_contract(session)
            if from_folder:
                check_provider_form(self.path, self.contract)
            if self.path.suffix.lower() == ".onnx":
                check_label_tables(self.path, self.contract)  # a label past the table: refused now, not at run
            # Device output binds every buffer; uint8 pixels of a float model are then made where they are.
            self._runner = open_runner(
                self.path,
                session,
                fallback,
                self.contract,
                True if self.device_output else io_binding,
                provider,
                options,
                allow_fallback,
                cuda,
                device_pixels=True if self.device_output else None,
            )
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
        """ "fp32", "fp16" or "int8", from the metadata."""
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
    def pinned_output(self) -> bool:
        """Images come back to the host through page-locked memory (CudaOptions.pinned_output, where onnxruntime
        offers it); False on the CPU provider, without IO binding, for a TensorRT engine, or where onnxruntime
        cannot allocate it (`_runner.pinned_reason` says why)."""
        return bool(getattr(self._runner, "pinned", False))

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
        index = parse_labels(self.contract, labels, n)
        if not self.conditional:
            return None
        if index is None:
            return default_labels(n, self.num_classes)
        return np.repeat(index, n) if len(index) == 1 else index

    # --- running --------------------------------------------------------------------------------------------
    def _expected_output(self, b: int, pixels: bool = False) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of b images: the model's own output form, or uint8 [b, H, W, C] pixels."""
        c, h, w = self.contract.image_shape_nchw
        if pixels or self.output == OUTPUT_UINT8_NHWC:
            return (b, h, w, c), np.dtype(np.uint8)
        return (b, c, h, w), np.dtype(np.float32)

    def _run(self, z: np.ndarray, labels: np.ndarray | None, pixels: bool = False) -> np.ndarray:
        """One batch through the model, its output checked against the contract. The declared signature is only
        a promise (checked at load); a graph that really makes another size or type is caught here, at its first
        batch, instead of ending up as a wrong-sized picture."""
        feeds = {INPUT_LATENT: z}  # [b, nz], a contiguous row slice
        if labels is not None:
            feeds[INPUT_LABEL] = labels  # [b]
        # uint8 asked of a float model on a runner that makes pixels on the device: they come back as uint8 [b, H, W, C]
        # (a TensorRT engine has no such tail: it returns the model's own output)
        runner = self._runner
        if isinstance(runner, SessionRunner) and pixels and self.output != OUTPUT_UINT8_NHWC and runner.device_pixels:
            part = runner.run(feeds, pixels=True)
        else:
            pixels = False
            part = runner.run(feeds)
        shape, dtype = self._expected_output(len(z), pixels)
        if not isinstance(part, np.ndarray) or part.shape != shape or part.dtype != dtype:
            got = f"{part.dtype} {shape_text(part.shape)}" if isinstance(part, np.ndarray) else type(part).__name__
            raise ModelOutputError(
                f"{self.path} returned {got} for a batch of {len(z)}, but its contract (edgegan.image, "
                f"edgegan.output={self.output}) promises {dtype} {shape_text(shape)}: the graph does not match its "
                "own metadata; export it again"
            )
        if part.dtype.kind == "f" and not np.isfinite(part).all():  # float [b, C, H, W]: NaN would draw black
            bad = part.size - int(np.count_nonzero(np.isfinite(part)))
            raise ModelOutputError(
                f"{self.path} returned NaN/Inf in {bad} of {part.size} output values for a batch of {len(z)}: its "
                "weights are not finite; export it again from a good checkpoint"
            )
        return part

    def _batches(
        self, n: int, latents: Callable[[int, int], np.ndarray], index: np.ndarray | None, pixels: bool
    ) -> Iterator[np.ndarray]:
        """Images 0..n-1, batch_size at a time: latents(start, stop) is called once per batch, in order."""
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.device_output:  # this batch as its own device value
                yield self._collect_device(
                    stop - start,
                    _shifted(latents, start),
                    label_slice(self.contract, index, start, stop),
                    pixels,
                )
                continue
            part = self._run(latents(start, stop), label_slice(self.contract, index, start, stop), pixels)
            yield to_uint8_nhwc(part) if pixels and part.dtype != np.uint8 else part

    def _collect_device(
        self, n: int, latents: Callable[[int, int], np.ndarray], index: np.ndarray | None, pixels: bool
    ) -> Any:
        """output="dlpack": images 0..n-1 into one OrtValue on the provider's device, each batch bound straight at
        its rows (no copy between batches, none to the host): uint8 [n, H, W, C] or float32 [n, C, H, W]."""
        runner = self._runner
        if not isinstance(runner, SessionRunner):  # cannot happen: __init__ refuses output="dlpack" for an engine
            raise ProviderError(
                f"{self.path.name}: output='dlpack' needs an onnxruntime session, not a TensorRT engine"
            )
        shape, dtype = self._expected_output(n, pixels)
        target = runner.device_buffer(shape, dtype)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            feeds = {INPUT_LATENT: np.ascontiguousarray(latents(start, stop))}  # [b, nz]
            labels = label_slice(self.contract, index, start, stop)
            if labels is not None:
                feeds[INPUT_LABEL] = labels  # [b]
            runner.run_into(feeds, target, start, pixels and self.output != OUTPUT_UINT8_NHWC)
        return target

    def _collect(
        self, n: int, latents: Callable[[int, int], np.ndarray], index: np.ndarray | None, pixels: bool
    ) -> np.ndarray:
        if self.device_output:
            return self._collect_device(n, latents, index, pixels)
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
        z = check_latents(z, self.nz)
        n = len(z)
        index = parse_labels(self.contract, labels, n)
        shape, dtype = self._expected_output(n, pixels)
        nbytes = math.prod(shape) * dtype.itemsize + self._batch_bytes()
        if nbytes > QUIET_BYTES:  # not on every small call: the benchmark times this path
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
        """latents(start, stop) for the model's latent rule, called in order: the same numbers as
        draw_latents(n, nz, seed, rule) in one call. The language-neutral rule computes rows start..stop-1 directly;
        numpy's (models exported before it) draws a batch at a time from one default_rng(seed)."""
        rule = self.contract.latent_rule
        if rule == LATENT_RULE:
            seed = fresh_seed() if seed is None else seed
            if truncation is None:
                return lambda a, b: rule_normals(seed, a, b, self.nz)  # [b - a, nz]
            return lambda a, b: rule_truncated(seed, a, b, self.nz, truncation)  # [b - a, nz]
        if truncation is not None:
            z = truncated_latents(n, self.nz, seed, truncation, rule)  # [n, nz]
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
            GeneratorInputError: the model outputs uint8 pixels (exported with pixels="uint8").
        """
        if self.output == OUTPUT_UINT8_NHWC:
            raise GeneratorInputError(
                "this generator outputs uint8 pixels (exported with pixels='uint8'); use generate(), or export "
                "it with pixels='float' for float images"
            )
        return self._forward(z, labels, pixels=False)

    def sample(
        self,
        n: int,
        seed: int | None = None,
        labels: Label | Iterable[Label] | np.ndarray | None = None,
        truncation: float | None = None,
    ) -> np.ndarray:
        """Images from seeds by the model's latent rule: `draw_latents(n, nz, seed, contract.latent_rule)`.

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

    def __call__(
        self,
        n: int,
        seed: int | None = None,
        labels: Label | Iterable[Label] | np.ndarray | None = None,
        truncation: float | None = None,
    ) -> SampleResult:
        """`sample`, pipeline-style (diffusers' `pipe(...).images`): the images with the inputs that made them.

        Same arguments and same images as `sample(n, seed, labels, truncation)`; a None seed is replaced by a
        fresh one first, and recorded, so the result can always be made again.

        Returns:
            SampleResult: images uint8 [n, H, W, C], latents float32 [n, nz], labels int64 [n] (None for an
            unconditional model), seed (int), truncation.
        """
        n, seed, index = self._check_sample(n, seed, labels, truncation)
        seed = fresh_seed() if seed is None else seed
        check_memory(self.memory_needed(n, truncation) + 4 * n * self.nz, f"{n} images and latents", MEMORY_HINT)
        z = self._latent_source(n, seed, truncation)(0, n)  # [n, nz], all at once: the same rows batches draw
        images = self._collect(n, lambda a, b: z[a:b], index, pixels=True)
        return SampleResult(images, z, label_slice(self.contract, index, 0, n), seed, truncation)

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
        check_memory(
            self.memory_needed(n, truncation, hold=False),
            f"{n} images of {self._size_text()}",
            "ask for fewer images, or pass truncation=None (truncation draws all n latents first)",
        )
        return self._batches(n, self._latent_source(n, seed, truncation), index, pixels=True)

    def _check_sample(
        self, n: Any, seed: Any, labels: Any, truncation: Any
    ) -> tuple[int, int | None, np.ndarray | None]:
        n = check_count(n)
        seed = check_seed(seed)
        if truncation is not None:
            check_truncation(truncation)
        return n, seed, parse_labels(self.contract, labels, n)

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
        steps = check_count(steps, "steps")
        if steps < 2:
            raise GeneratorInputError(f"interpolate needs at least 2 steps, got {steps}")
        a = draw_latents(1, self.nz, check_seed(seed_a), self.contract.latent_rule)[0]
        b = draw_latents(1, self.nz, check_seed(seed_b), self.contract.latent_rule)[0]
        if label is None and self.conditional:
            label = 0
        return self.generate(slerp(a, b, steps), label)
