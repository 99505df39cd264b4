"""Where training runs: the ``torchrun`` process group, the device and the autocast precision.

``torchrun --nproc_per_node N -m linegraph2road train CONFIG`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment; :func:`init_distributed` joins them into
a process group (NCCL on CUDA, gloo on CPU) and returns this process's :class:`DistContext`.
Without those variables everything is a single process and nothing is initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from linegraph2road.errors import ParameterError

__all__ = ["DistContext", "autocast_dtype", "init_distributed", "resolve_device"]


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(*, cuda: bool) -> DistContext:
    """Join the process group ``torchrun`` describes in the environment (no-op without one).

    Parameters
    ----------
    cuda : bool
        NCCL and ``cuda:LOCAL_RANK`` when True, gloo (CPU) when False.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    ctx = DistContext(
        int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))
    )
    if world > 1 and not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return ctx


def resolve_device(device: str, *, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; others as given."""
    if device == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        return torch.device(f"cuda:{local_rank}")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ParameterError(f"unknown device {device!r}; use auto, cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} requested but CUDA is not available")
    return dev


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast dtype, or None for fp32. ``"auto"``: bf16 on CUDA, fp32 on CPU."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ParameterError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None
