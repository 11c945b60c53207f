"""Processes, devices and model wrapping: single process, DDP, or FSDP2 — PyTorch's own engine.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is NCCL on CUDA and gloo on CPU.
Small models are wrapped in ``DistributedDataParallel``; large ones are sharded with FSDP2
(``torch.distributed.fsdp.fully_shard``), one unit per transformer block, so that the 1.3B
four-stream model's parameters, gradients and optimiser state are split over the processes.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

# Above this many parameters "auto" shards with FSDP2 instead of replicating with DDP.
FSDP_THRESHOLD = 200_000_000


@dataclass(frozen=True)
class Processes:
    """This process's place: rank among ``world`` processes, and its device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def init_processes() -> Processes:
    """Join the process group when launched by torchrun; otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank=rank, world=world, local_rank=local_rank, device=device)


def shutdown(processes: Processes) -> None:
    """Leave the process group (a barrier first: gloo aborts if a peer tears down early)."""
    if processes.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def choose_strategy(strategy: str, model: nn.Module, processes: Processes) -> str:
    """ "none" for one process; else "ddp" or "fsdp" ("auto": by parameter count)."""
    if not processes.distributed:
        return "none"
    if strategy != "auto":
        return strategy
    count = sum(p.numel() for p in model.parameters())
    return "fsdp" if count > FSDP_THRESHOLD else "ddp"


def wrap(model: nn.Module, strategy: str, processes: Processes, precision: str) -> nn.Module:
    """The model ready for training under ``strategy`` ("none", "ddp" or "fsdp")."""
    if strategy == "none":
        return model
    if strategy == "ddp":
        ids = [processes.device.index] if processes.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if strategy == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        from torch.distributed.tensor import Shard

        mesh = init_device_mesh(processes.device.type, (processes.world,))
        policy = MixedPrecisionPolicy(
            param_dtype=torch.bfloat16 if precision == "bf16" else None,
            reduce_dtype=torch.float32,
        )
        streams = len(model.config.streams)

        def placement(parameter: torch.Tensor) -> Shard:
            # Per-stream weights are stacked on dim 0 (size = streams, e.g. 4): sharding it
            # would split over at most 4 processes. Shard the next dim when it is larger.
            stacked = parameter.dim() >= 2 and parameter.shape[0] == streams
            if stacked and parameter.shape[1] >= processes.world:
                return Shard(1)
            return Shard(0)

        for block in model.blocks:
            fully_shard(block, mesh=mesh, mp_policy=policy, shard_placement_fn=placement)
        fully_shard(model, mesh=mesh, mp_policy=policy, shard_placement_fn=placement)
        return model
    raise ValueError(f"strategy={strategy!r} (expected 'none', 'ddp' or 'fsdp')")


def unwrap(model: nn.Module) -> nn.Module:
    """The model under a DDP wrapper (FSDP2 shards in place: nothing to unwrap)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def no_gradient_sync(model: nn.Module, strategy: str):
    """A context in which backward accumulates gradients without reducing them (accumulation)."""
    if strategy == "ddp":
        return model.no_sync()
    if strategy == "fsdp":

        @contextlib.contextmanager
        def paused():
            model.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                model.set_requires_gradient_sync(True)

        return paused()
    return contextlib.nullcontext()


def all_reduce_sum(values: torch.Tensor, processes: Processes) -> torch.Tensor:
    """Sum over processes (a no-op for one process)."""
    if processes.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
