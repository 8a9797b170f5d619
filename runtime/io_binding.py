"""IO binding to buffers that live as long as the session: one bound set per batch size, in a bounded cache.

Why: `session.run` allocates the output and copies inputs through onnxruntime's arena on every call, and a CUDA
graph (`CudaOptions.cuda_graph`) replays fixed device addresses with fixed shapes. So each batch size gets one
`BoundBatch`: its inputs ("z" [b, nz], "label" [b]) and output ("image") allocated once on the provider's device
and bound once; a call copies the host inputs into them in place (`OrtValue.update_inplace`: one host -> device
copy each) and runs. With the CUDA graph on, each batch size also gets its own session, because onnxruntime
captures one graph per session on its first runs (a run option `gpu_graph_id` could share one session, but an
evicted graph then stays alive with it; a dropped session frees its graph). The cache holds `capacity` batch sizes,
least recently used out first: a Generator asked for many odd batch sizes does not hold a graph and buffers for each.

The float -> uint8 pixel step runs on the device too where asked (`PixelTail`, the contract's to_uint8_nhwc as six
ONNX nodes): the copy back is then uint8 NHWC, a quarter of the float NCHW bytes.

The copy back itself lands in page-locked host memory where the provider offers it (`HostMemory`,
CudaOptions.pinned_output): the last run of a call (the model's, or the PixelTail's) has its output bound to a
pinned buffer of the batch, so onnxruntime copies device -> host by one DMA, and the caller's array is a host
memcpy out of it. Not under a CUDA graph: its output address is fixed on the device at capture (the PixelTail,
a plain session, still writes pinned memory after a graph). Where no pinned memory can be had the copy back goes
to ordinary host memory, and `HostMemory.reason` says why.

Everything here runs on the CPU provider as well (device "cpu"), which is how the tests prove the binding, the
buffer reuse and the cache on machines without a GPU. numpy + onnxruntime only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from edgegan.runtime.contract import BATCH_AXIS, IOSpec, TensorSpec
from edgegan.runtime.errors import first_line
from edgegan.runtime.onnx_bytes import pixel_tail_model

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["DEFAULT_CAPACITY", "BoundBatch", "BindingCache", "HostMemory", "PixelTail", "tensor_shape"]

#: Batch sizes kept bound at once (each: its buffers, and with the CUDA graph its session and graph).
DEFAULT_CAPACITY = 4


def tensor_shape(spec: TensorSpec, batch: int) -> list[int]:
    """The concrete shape of a contract tensor at `batch`: its BATCH_AXIS dims replaced by the batch size."""
    return [batch if d == BATCH_AXIS else int(d) for d in spec.shape]


def _empty(spec: TensorSpec, batch: int, device: str, device_id: int) -> ort.OrtValue:
    import onnxruntime as ort

    return ort.OrtValue.ortvalue_from_shape_and_type(
        tensor_shape(spec, batch), np.dtype(spec.dtype).type, device, device_id
    )


class HostMemory:
    """Where copy backs land: page-locked host memory from an OrtMemoryInfo, or ordinary host memory (None).

    Args:
        memory_info: the provider's HOST_ACCESSIBLE OrtMemoryInfo (providers.pinned_memory_info), or None.
        reason: what that memory is, or why there is none (bench rows and tests report it).

    The first allocation or run that onnxruntime refuses turns it off for good (`refuse`), with the reason: an
    onnxruntime whose OrtValue cannot be allocated from a memory info (the `memory_info` argument is newer than
    get_ep_devices), or one without a shared allocator for it.
    """

    def __init__(self, memory_info: ort.OrtMemoryInfo | None = None, reason: str = "ordinary host memory"):
        self.memory_info, self.reason = memory_info, reason

    @property
    def pinned(self) -> bool:
        return self.memory_info is not None

    def refuse(self, reason: str) -> None:
        self.memory_info, self.reason = None, reason

    def allocate(self, shape: list[int], dtype: type) -> ort.OrtValue | None:
        """A page-locked buffer of `shape` and numpy `dtype`, or None (ordinary host memory from now on)."""
        info = self.memory_info
        if info is None:
            return None
        import onnxruntime as ort

        try:
            return ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, memory_info=info)
        except TypeError:  # the parameter is missing (onnxruntime releases before it, e.g. 1.27)
            self.refuse(f"onnxruntime {ort.__version__} cannot allocate an OrtValue from a memory info")
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors (no shared allocator, ...): fall back
            self.refuse(f"onnxruntime refused page-locked memory: {first_line(exc)}")
        return None


class BoundBatch:
    """One batch size's inputs and output, allocated on `device` and bound to `session` once.

    An IOBinding is not thread-safe (session.run is): callers hold `lock` from `run` until they have read or
    copied the output, which the next run at this batch size overwrites.

    Args:
        host: page-locked memory for the copy back (HostMemory); None: ordinary host memory.
        fixed_output: the output stays at its own device buffer (a CUDA graph's session): no host binding.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        spec: IOSpec,
        batch: int,
        device: str = "cpu",
        device_id: int = 0,
        host: HostMemory | None = None,
        fixed_output: bool = False,
    ):
        self.session, self.spec, self.batch = session, spec, batch
        self.device, self.device_id = device, device_id
        self.host = host if host is not None else HostMemory()
        self.fixed_output = fixed_output
        self.lock = threading.Lock()
        self.runs = 0
        self.pinned = False  # whether the last copy back this entry served came from page-locked memory
        self._host: dict[str, ort.OrtValue] = {}  # page-locked buffers by use ("image", "pixels"), made once
        self.binding = session.io_binding()
        self.inputs = {t.name: _empty(t, batch, device, device_id) for t in spec.inputs}  # e.g. z [b, nz]
        for name, value in self.inputs.items():
            self.binding.bind_ortvalue_input(name, value)
        self.output_spec = spec.outputs[0]
        self.output = _empty(self.output_spec, batch, device, device_id)  # image [b, C, H, W] or [b, H, W, C]
        self.binding.bind_ortvalue_output(self.output_spec.name, self.output)
        self._bound_to: int | str | None = None  # the caller's address, "host" (the pinned buffer), or None (own)
        self.pixels: ort.OrtValue | None = None  # the PixelTail's uint8 [b, H, W, C] device buffer, made on first use

    def host_buffer(self, use: str, shape: list[int], dtype: type) -> ort.OrtValue | None:
        """This batch's page-locked buffer for `use` ("image": the model's output, "pixels": the PixelTail's),
        made on first use; None where there is no page-locked memory (`host`: none is offered for the CPU
        provider, whose outputs are host memory already)."""
        if not self.host.pinned:
            return None
        found = self._host.get(use)
        if found is None:
            found = self.host.allocate(shape, dtype)
            if found is not None:
                self._host[use] = found
        return found

    def drop_host(self) -> None:
        """Forget the page-locked buffers (after onnxruntime refused a run into them): own buffers from now on."""
        self._host.clear()
        if self._bound_to == "host":
            self.binding.bind_ortvalue_output(self.output_spec.name, self.output)
            self._bound_to = None

    def run(self, feeds: Mapping[str, np.ndarray], into: int | None = None, host: bool = False) -> ort.OrtValue:
        """Copy the host `feeds` into the bound inputs and run.

        Args:
            feeds: input name -> host array of this batch size (C-contiguous after conversion).
            into: a device address to write the output at instead of the own buffer (the caller's larger
                buffer, at this batch's rows); None: the own buffer. Not with a CUDA graph, whose addresses
                are fixed at capture.
            host: the output is coming back to the host: write it into the page-locked buffer where there is
                one (not with `into`, nor a fixed output).

        Returns:
            The OrtValue holding the images, valid until the next run at this batch size: the page-locked
            buffer or the own one (with `into`, the images are at `into` instead and the own buffer holds an
            earlier run's).
        """
        for name, array in feeds.items():
            self.inputs[name].update_inplace(np.ascontiguousarray(array))  # one host -> device copy
        spec = self.output_spec
        pinned = None
        if host and into is None and not self.fixed_output:
            pinned = self.host_buffer("image", tensor_shape(spec, self.batch), np.dtype(spec.dtype).type)
        target = "host" if pinned is not None else into
        if target != self._bound_to:
            if target is None:
                self.binding.bind_ortvalue_output(spec.name, self.output)
            elif target == "host":
                self.binding.bind_ortvalue_output(spec.name, pinned)
            else:
                self.binding.bind_output(
                    spec.name,
                    self.device,
                    self.device_id,
                    np.dtype(spec.dtype).type,
                    tensor_shape(spec, self.batch),
                    into,
                )
            self._bound_to = target
        self.pinned = pinned is not None  # before the run: a caller that sees it fail knows what it tried
        self.session.run_with_iobinding(self.binding)
        self.runs += 1
        return pinned if pinned is not None else self.output


class BindingCache:
    """Up to `capacity` BoundBatch entries, least recently used out first.

    Args:
        session: the session every entry binds to, when `open_session` is None.
        spec: the contract's io_spec().
        device, device_id: where buffers live ("cpu" or "cuda").
        capacity: entries kept (>= 1).
        open_session: makes a fresh session per batch size (the CUDA graph path: one captured graph each).
        host: page-locked host memory for the copy back (HostMemory); None: ordinary host memory.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        spec: IOSpec,
        device: str = "cpu",
        device_id: int = 0,
        capacity: int = DEFAULT_CAPACITY,
        open_session: Callable[[], ort.InferenceSession] | None = None,
        host: HostMemory | None = None,
    ):
        if capacity < 1:
            raise ValueError(f"the binding cache needs room for at least one batch size, got {capacity}")
        self.session, self.spec, self.device, self.device_id = session, spec, device, device_id
        self.capacity = capacity
        self.open_session = open_session
        self.host = host if host is not None else HostMemory()  # shared by every entry: one refusal turns all off
        self._entries: OrderedDict[int, BoundBatch] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0

    @property
    def per_batch_sessions(self) -> bool:
        return self.open_session is not None

    def batches(self) -> list[int]:
        """Batch sizes bound now, least recently used first."""
        with self._lock:
            return list(self._entries)

    def entry(self, batch: int) -> BoundBatch:
        """The bound buffers for `batch`, made (and the oldest entry dropped, when full) on first use."""
        with self._lock:
            found = self._entries.get(batch)
            if found is not None:
                self._entries.move_to_end(batch)
                return found
        # Made outside the cache lock: a CUDA-graph entry opens a session (the same batch made twice by two threads
        # at once is harmless: one wins below).
        session = self.open_session() if self.open_session is not None else self.session
        made = BoundBatch(
            session, self.spec, batch, self.device, self.device_id, self.host, fixed_output=self.per_batch_sessions
        )
        with self._lock:
            found = self._entries.setdefault(batch, made)
            self._entries.move_to_end(batch)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)  # its buffers (and session, graph) go with the last reference
                self.evicted += 1
            return found


class PixelTail:
    """float [b, C, H, W] in [-1, 1] on the device -> uint8 [b, H, W, C] on the device (`pixel_tail_model`).

    Args:
        session: an onnxruntime session of `pixel_tail_model(C, H, W)` on the generator's provider.
        device, device_id: where its inputs and outputs live.
        image: (C, H, W).
    """

    def __init__(
        self, session: ort.InferenceSession, image: tuple[int, int, int], device: str = "cpu", device_id: int = 0
    ):
        self.session, self.image, self.device, self.device_id = session, image, device, device_id

    @staticmethod
    def model(image: tuple[int, int, int]) -> bytes:
        return pixel_tail_model(*image)

    def run(self, source: ort.OrtValue, batch: int, into: int | ort.OrtValue) -> None:
        """Read `batch` float images at `source` (on the device) and write their uint8 pixels `into`: an address
        on the device, or an OrtValue (a `buffer`: on the device, or page-locked host memory). A binding per
        call: two binds, cheaper than any copy they save."""
        c, h, w = self.image
        binding = self.session.io_binding()
        binding.bind_input("x", self.device, self.device_id, np.float32, [batch, c, h, w], source.data_ptr())
        if isinstance(into, int):
            binding.bind_output("pixels", self.device, self.device_id, np.uint8, [batch, h, w, c], into)
        else:
            binding.bind_ortvalue_output("pixels", into)
        self.session.run_with_iobinding(binding)

    def buffer(self, entry: BoundBatch, host: bool = False) -> ort.OrtValue:
        """The entry's uint8 [b, H, W, C] pixel buffer, allocated once: with `host` (the pixels are coming
        back) its page-locked one where there is one (`entry.pinned` says), else its own on the device."""
        c, h, w = self.image
        pinned = entry.host_buffer("pixels", [entry.batch, h, w, c], np.uint8) if host else None
        entry.pinned = pinned is not None
        if pinned is not None:
            return pinned
        if entry.pixels is None:
            import onnxruntime as ort

            entry.pixels = ort.OrtValue.ortvalue_from_shape_and_type(
                [entry.batch, h, w, c], np.uint8, self.device, self.device_id
            )
        return entry.pixels
