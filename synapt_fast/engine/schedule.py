"""Learning-rate schedules, set per optimiser step: cosine decay (the paper's CNN recipes) and
steps (facebookresearch/TimeSformer's `steps_with_relative_lrs`), both after an optional linear
warm-up from 0.

    schedule = build_schedule(optimizer, recipe.optim, steps_per_epoch)
    ...; optimizer.step(); schedule.step()          # every optimiser step
    state = schedule.state_dict()                  # into the checkpoint; load_state_dict on resume

The step schedule reads the epoch as a fraction (`step / steps_per_epoch`), as TimeSformer's
trainer evaluates its policy at `epoch + iteration / iterations`; TimeSformer's 8x32 Kinetics
config (lr 0.005, steps at epochs 11 and 14 of 15, relative lrs 1, 0.1, 0.01) is
`schedule = "step"`, `step_epochs = [11, 14]`, `step_factor = 0.1`.
"""

from __future__ import annotations

import bisect
import math

import torch


class Schedule:
    """Linear warm-up from 0 over `warmup_steps`, then `_after_warmup(step)`; set on every param group."""

    kind = ""

    def __init__(self, optimizer: torch.optim.Optimizer, *, lr: float, warmup_steps: int, total_steps: int):
        self.optimizer, self.lr = optimizer, lr
        self.warmup_steps, self.total_steps = warmup_steps, max(total_steps, 1)
        self.step_count = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        return self._after_warmup(step)

    def _after_warmup(self, step: int) -> float:
        raise NotImplementedError

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
        return {"kind": self.kind, "step": self.step_count, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state: dict) -> None:
        # checkpoints written before step schedules existed carry no kind: they were cosine
        if state.get("kind", "cosine") != self.kind:
            raise ValueError(f"the checkpoint's learning-rate schedule is {state.get('kind')!r}, the recipe's "
                             f"{self.kind!r}: resume with the recipe it was trained with")
        self.set_step(state["step"])


class CosineSchedule(Schedule):
    """Cosine decay from `lr` to `min_lr` over the steps after warm-up."""

    kind = "cosine"

    def __init__(self, optimizer, *, lr: float, min_lr: float, warmup_steps: int, total_steps: int):
        self.min_lr = min_lr
        super().__init__(optimizer, lr=lr, warmup_steps=warmup_steps, total_steps=total_steps)

    def _after_warmup(self, step: int) -> float:
        span = max(self.total_steps - self.warmup_steps, 1)
        t = min(step - self.warmup_steps, span) / span
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t))


class StepSchedule(Schedule):
    """`lr x factor^k` once the (fractional) epoch has passed k of `step_epochs`."""

    kind = "step"

    def __init__(self, optimizer, *, lr: float, step_epochs: list[float], factor: float, steps_per_epoch: int,
                 warmup_steps: int, total_steps: int):
        if list(step_epochs) != sorted(step_epochs) or not step_epochs:
            raise ValueError(f"step_epochs must be a non-empty increasing list, got {step_epochs}")
        self.step_epochs, self.factor = list(step_epochs), factor
        self.steps_per_epoch = max(steps_per_epoch, 1)
        super().__init__(optimizer, lr=lr, warmup_steps=warmup_steps, total_steps=total_steps)

    def _after_warmup(self, step: int) -> float:
        epoch = step / self.steps_per_epoch
        return self.lr * self.factor ** bisect.bisect_right(self.step_epochs, epoch)


def build_schedule(optimizer: torch.optim.Optimizer, optim, steps_per_epoch: int) -> Schedule:
    """The schedule a recipe's `[optim]` section describes (`recipe.Optim`), for `steps_per_epoch`."""
    warmup = round(optim.warmup_epochs * steps_per_epoch)
    total = steps_per_epoch * optim.epochs
    if optim.schedule == "step":
        return StepSchedule(optimizer, lr=optim.lr, step_epochs=optim.step_epochs, factor=optim.step_factor,
                            steps_per_epoch=steps_per_epoch, warmup_steps=warmup, total_steps=total)
    if optim.schedule == "cosine":
        return CosineSchedule(optimizer, lr=optim.lr, min_lr=optim.min_lr, warmup_steps=warmup, total_steps=total)
    raise ValueError(f"optim.schedule: unknown schedule {optim.schedule!r}")


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
