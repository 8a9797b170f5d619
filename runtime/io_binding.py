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
from edgegan.runtime.onnx_bytes import pixel_tail_model

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["DEFAULT_CAPACITY", "BoundBatch", "BindingCache", "PixelTail", "tensor_shape"]

#: Batch sizes kept bound at once (each: its buffers, and with the CUDA graph its session and graph).
DEFAULT_CAPACITY = 4


def tensor_shape(spec: TensorSpec, batch: int) -> list[int]:
    """The concrete shape of a contract tensor at `batch`: its BATCH_AXIS dims replaced by the batch size."""
    return [batch if d == BATCH_AXIS else int(d) for d in spec.shape]


def _empty(spec: TensorSpec, batch: int, device: str, device_id: int) -> "ort.OrtValue":
    import onnxruntime as ort

    return ort.OrtValue.ortvalue_from_shape_and_type(tensor_shape(spec, batch), np.dtype(spec.dtype).type, device,
                                                     device_id)


class BoundBatch:
    """One batch size's inputs and output, allocated on `device` and bound to `session` once.

    An IOBinding is not thread-safe (session.run is): callers hold `lock` from `run` until they have read or
    copied the output, which the next run at this batch size overwrites.
    """

    def __init__(self, session: "ort.InferenceSession", spec: IOSpec, batch: int, device: str = "cpu",
                 device_id: int = 0):
        self.session, self.spec, self.batch = session, spec, batch
        self.device, self.device_id = device, device_id
        self.lock = threading.Lock()
        self.runs = 0
        self.binding = session.io_binding()
        self.inputs = {t.name: _empty(t, batch, device, device_id) for t in spec.inputs}  # e.g. z [b, nz]
        for name, value in self.inputs.items():
            self.binding.bind_ortvalue_input(name, value)
        self.output_spec = spec.outputs[0]
        self.output = _empty(self.output_spec, batch, device, device_id)  # image [b, C, H, W] or [b, H, W, C]
        self.binding.bind_ortvalue_output(self.output_spec.name, self.output)
        self._bound_to: int | None = None  # an address of the caller's the output is bound to instead, or None
        self.pixels: "ort.OrtValue | None" = None  # the PixelTail's uint8 [b, H, W, C] buffer, made on first use

    def run(self, feeds: Mapping[str, np.ndarray], into: int | None = None) -> "ort.OrtValue":
        """Copy the host `feeds` into the bound inputs and run.

        Args:
            feeds: input name -> host array of this batch size (C-contiguous after conversion).
            into: a device address to write the output at instead of the own buffer (the caller's larger
                buffer, at this batch's rows); None: the own buffer. Not with a CUDA graph, whose addresses
                are fixed at capture.

        Returns:
            The own output OrtValue, valid until the next run at this batch size (with `into`, the images are at
            `into` instead and this buffer holds an earlier run's).
        """
        for name, array in feeds.items():
            self.inputs[name].update_inplace(np.ascontiguousarray(array))  # one host -> device copy
        if into != self._bound_to:
            spec = self.output_spec
            if into is None:
                self.binding.bind_ortvalue_output(spec.name, self.output)
            else:
                self.binding.bind_output(spec.name, self.device, self.device_id, np.dtype(spec.dtype).type,
                                         tensor_shape(spec, self.batch), into)
            self._bound_to = into
        self.session.run_with_iobinding(self.binding)
        self.runs += 1
        return self.output


class BindingCache:
    """Up to `capacity` BoundBatch entries, least recently used out first.

    Args:
        session: the session every entry binds to, when `open_session` is None.
        spec: the contract's io_spec().
        device, device_id: where buffers live ("cpu" or "cuda").
        capacity: entries kept (>= 1).
        open_session: makes a fresh session per batch size (the CUDA graph path: one captured graph each).
    """

    def __init__(self, session: "ort.InferenceSession", spec: IOSpec, device: str = "cpu", device_id: int = 0,
                 capacity: int = DEFAULT_CAPACITY,
                 open_session: Callable[[], "ort.InferenceSession"] | None = None):
        if capacity < 1:
            raise ValueError(f"the binding cache needs room for at least one batch size, got {capacity}")
        self.session, self.spec, self.device, self.device_id = session, spec, device, device_id
        self.capacity = capacity
        self.open_session = open_session
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
        made = BoundBatch(session, self.spec, batch, self.device, self.device_id)
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

    def __init__(self, session: "ort.InferenceSession", image: tuple[int, int, int], device: str = "cpu",
                 device_id: int = 0):
        self.session, self.image, self.device, self.device_id = session, image, device, device_id

    @staticmethod
    def model(image: tuple[int, int, int]) -> bytes:
        return pixel_tail_model(*image)

    def run(self, source: "ort.OrtValue", batch: int, into: int) -> None:
        """Read `batch` float images at `source` and write their uint8 pixels at address `into` (both on the
        device). A binding per call: two pointer binds, cheaper than any copy they save."""
        c, h, w = self.image
        binding = self.session.io_binding()
        binding.bind_input("x", self.device, self.device_id, np.float32, [batch, c, h, w], source.data_ptr())
        binding.bind_output("pixels", self.device, self.device_id, np.uint8, [batch, h, w, c], into)
        self.session.run_with_iobinding(binding)

    def buffer(self, entry: BoundBatch) -> "ort.OrtValue":
        """The entry's own uint8 [b, H, W, C] pixel buffer, allocated once."""
        if entry.pixels is None:
            import onnxruntime as ort

            c, h, w = self.image
            entry.pixels = ort.OrtValue.ortvalue_from_shape_and_type([entry.batch, h, w, c], np.uint8, self.device,
                                                                     self.device_id)
        return entry.pixels
