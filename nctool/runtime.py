"""Where the work runs: device choice, the distributed process group, and mixed precision."""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn

from nctool.errors import NctoolError


def pick_device(requested: str | None = None) -> torch.device:
    """The requested device, else this process's CUDA device when there is one, else the CPU."""
    if requested:
        try:
            device = torch.device(requested)
        except (RuntimeError, ValueError):
            raise NctoolError(f"--device {requested}: unknown device; use cpu, cuda or cuda:N") from None
        if device.type not in ("cpu", "cuda"):
            raise NctoolError(f"--device {requested}: nctool runs on cpu or cuda; use one of them")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise NctoolError(f"--device {requested}: no CUDA device is available here; use --device cpu")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise NctoolError(f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA "
                              f"device(s); use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) if distributed_world() > 1 else 0)
    return torch.device("cpu")


def distributed_world() -> int:
    """Number of processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed() -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by torchrun with several processes."""
    if distributed_world() > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def gather_rows(tensor: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Every process's rows of `tensor`, in rank order, with autograd across processes.

    `counts[r]` is process r's number of rows (every process knows them all; a last partial batch
    makes them differ). The backward pass sends each process the sum, over all processes, of the
    gradients on its rows, so a loss computed on the gathered rows trains every process's model.
    """
    padded = torch.cat([tensor, tensor.new_zeros((max(counts) - len(tensor), *tensor.shape[1:]))])
    parts = dist_nn.all_gather(padded)  # all_gather wants one shape on every process
    return torch.cat([part[:count] for part, count in zip(parts, counts)])


def is_main_process() -> bool:
    """True on rank 0 (and without torchrun): the process that writes files and reports."""
    return int(os.environ.get("RANK", "0")) == 0


def autocast(device: torch.device, *, cuda: bool = True, cpu: bool = False):
    """bf16 autocast on `device` when enabled for its type (`cuda`, `cpu`), else a no-op context."""
    if (device.type == "cuda" and cuda) or (device.type == "cpu" and cpu):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()
