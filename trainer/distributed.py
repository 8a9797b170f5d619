"""Data-parallel training through PyTorch's own launcher (torchrun): NCCL on GPUs, gloo on CPU.

`torchrun --nproc_per_node N -m edgegan train ...` sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR; without
them training runs in one process and none of this is touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from typing import TypeVar, cast

import torch
import torch.distributed as dist
from torch import nn

from edgegan.runtime.errors import EdgeganError

T = TypeVar("T")


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class DeviceError(EdgeganError, ValueError):
    """--device / --amp ask for hardware this machine does not have."""


def resolve_device(name: str, amp: str = "off") -> torch.device:
    """ "auto" -> cuda when available, else cpu; refuse (DeviceError) what this machine cannot run.

    Args:
        name: "auto", "cpu" or "cuda".
        amp: the mixed-precision mode that will run on it ("auto" is checked once resolved: see check_amp).
    """
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda was asked for but CUDA is not available here; use --device cpu or auto")
    else:
        device = torch.device(name)
    check_amp(amp, device)
    return device


def check_amp(amp: str, device: torch.device) -> None:
    """Refuse a mixed-precision mode the device cannot run, before anything is written."""
    if amp == "fp16" and device.type != "cuda":
        raise DeviceError(
            f"--amp fp16 needs CUDA, but this run is on {device.type}; use --amp bf16 (CPUs with AVX-512 BF16 "
            "or AMX run it fast) or --amp off"
        )
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError("--amp bf16 needs a GPU with bfloat16 support (Ampere or newer); use --amp fp16 or off")


def launched_world_size() -> int:
    """The number of processes torchrun launched this one among (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device_name: str, amp: str = "off") -> DistContext:
    """Join the process group when launched by torchrun; pick this rank's device."""
    world = launched_world_size()
    device = resolve_device(device_name, amp)
    if world <= 1:
        return DistContext(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=device)


def wrap(model: nn.Module, ctx: DistContext) -> nn.Module:
    if not ctx.enabled:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def no_sync(model: nn.Module):
    """Skip the gradient all-reduce for this backward (D's real half; the fake half then reduces both)."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return model.no_sync()
    return contextlib.nullcontext()


def any_flag(flag: torch.Tensor, ctx: DistContext) -> bool:
    """True when any rank raised the flag (all ranks must agree to stop together)."""
    if ctx.enabled:
        flag = flag.clone()
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def all_reduce_mean_(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """In place: the mean of `tensor` over ranks (unchanged in one process)."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor.div_(ctx.world_size)
    return tensor


def gather_objects(obj: object, ctx: DistContext) -> list:
    """Every rank's `obj` (picklable), in rank order, on every rank; `[obj]` in one process."""
    if not ctx.enabled:
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: T, ctx: DistContext) -> T:
    """Rank 0's `obj` (picklable) on every rank; `obj` itself in one process."""
    if not ctx.enabled:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return cast(T, box[0])  # rank 0's obj, received on every rank


def parameter_digest(model: nn.Module) -> str:
    """Short SHA-256 of a model's parameter names and bytes (layout-independent): equal digests, equal weights."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
