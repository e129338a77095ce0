"""The learning-rate schedule, set per optimiser step."""

from __future__ import annotations

import math

import torch


class CosineSchedule:
    """Linear warm-up from 0, then cosine decay to `min_lr`, set per step on the optimiser."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, lr: float, min_lr: float, warmup_steps: int,
                 total_steps: int):
        self.optimizer, self.lr, self.min_lr = optimizer, lr, min_lr
        self.warmup_steps, self.total_steps = warmup_steps, max(total_steps, 1)
        self.step_count = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(self.total_steps - self.warmup_steps, 1)
        t = min(step - self.warmup_steps, span) / span
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t))

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step_count)

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def set_step(self, step: int) -> None:
        self.step_count = step
        self._apply()

    def state_dict(self) -> dict:
        return {"step": self.step_count, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state: dict) -> None:
        self.set_step(state["step"])


def steps_per_rank(num_samples: int, world: int, batch_size: int, epoch: int, *,
                   skip_single: bool = False) -> list[int]:
    """Optimiser steps each rank takes in `epoch`: its batches (the loader's contiguous, rotating
    shards), less a last batch of one clip when `skip_single` (BatchNorm cannot train on it)."""
    from synapt_fast.loader.partition import rank_shard, shard_range

    out = [0] * world
    for rank in range(world):
        count = len(shard_range(num_samples, rank_shard(rank, epoch, world), world))
        out[rank] = math.ceil(count / batch_size)
        if skip_single and count % batch_size == 1:
            out[rank] -= 1
    return out
