"""Processes and devices: torchrun's process group, the device of this rank, CPU threads."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from synapt_fast.format.codecs import cuda_index


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """Join torchrun's process group (NCCL on GPUs, gloo on CPUs), or run as one process."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        device = torch.device("cuda", cuda_index(local, torch.cuda.device_count()))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return Dist(rank, world, local, device)


def set_cpu_threads(workers: int) -> int:
    """torch intra-op threads for a CPU process: the cores left after the loader's `workers` DALI
    threads, at least one; an explicit OMP_NUM_THREADS (torchrun sets 1 per process) wins.

    More torch threads than free cores make OpenMP threads spin while DALI holds the cores
    (benchmarks/README.md, performance note 11).
    """
    if "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores //= max(int(os.environ.get("LOCAL_WORLD_SIZE", 1)), 1)
    torch.set_num_threads(max(1, cores - workers))
    return torch.get_num_threads()
