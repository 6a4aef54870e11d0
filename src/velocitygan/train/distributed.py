"""Process-group setup for ``torchrun`` (gloo on CPU, nccl on CUDA) and small collectives."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..device import resolve_device

__all__ = ["DistEnv", "setup_distributed", "teardown_distributed", "allreduce_grads",
           "allreduce_sum", "broadcast_module"]


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: rank, world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        """True under a multi-process launch."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs and checkpoints."""
        return self.rank == 0


def setup_distributed(device_name: str) -> DistEnv:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=device)


def teardown_distributed(*, together: bool = True) -> None:
    """Leave the process group (no-op when not distributed).

    ``together``: first wait for every rank. A rank that destroys the group while rank 0 is
    still writing its checkpoint makes gloo abort now and then (SIGABRT), so ranks that finish
    normally leave together; after a failure pass False (the others may never arrive).
    """
    if dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def allreduce_grads(params: Iterable[nn.Parameter], world_size: int) -> None:
    """Average ``.grad`` of ``params`` over all processes, in one flat buffer."""
    grads = [p.grad for p in params if p.grad is not None]
    if world_size <= 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(part.view_as(g))


def allreduce_sum(values: list[float], env: DistEnv) -> list[float]:
    """Sum a list of numbers over all processes (float64)."""
    if not env.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=env.device)  # nccl needs CUDA tensors
    dist.all_reduce(t)
    return t.tolist()


def broadcast_module(module: nn.Module, env: DistEnv, *, buffers_only: bool = False) -> None:
    """Copy rank 0's parameters and buffers (or only the buffers) to every process."""
    if not env.enabled:
        return
    tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=0)
