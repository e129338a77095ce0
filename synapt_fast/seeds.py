"""Every seed a run derives from its recipe's `seed`, in one place.

A run draws from three streams, each a pure function of its coordinates so that resuming, or
reading with another number of workers, replays it exactly:

- the DALI pipeline of each (epoch, rank, lane) (`pipeline_seed`): crops, flips, frame offsets;
- the PyTorch generators before each training step (`step_seed`): dropout, drop-path;
- numpy generators keyed by tuples (`np.random.default_rng([seed, epoch, rank, ...])`, in the
  loaders and subsets): numpy hashes the whole tuple, so these cannot collide with each other.

Why the linear mixes cannot collide within a run: the multipliers are primes far apart
(7919, 1_000_003, 15_485_863 for pipelines; 7_919, 104_729, 1_000_003 for steps), so two
coordinates give the same seed only when the differences satisfy, e.g.,
7919 * d_epoch == 1_000_003 * d_rank, which needs |d_epoch| >= 1_000_003 / gcd = 1_000_003 or
|d_rank| >= 7919. `tests/test_seeds.py` checks uniqueness over 1,000 epochs x 64 ranks x 16
lanes and 100,000 steps x 64 ranks. The two linear streams feed different generators (DALI's
and torch's), so an equal number in both is harmless.
"""

from __future__ import annotations

import torch


def pipeline_seed(seed: int, epoch: int, rank: int, lane: int = 0) -> int:
    """Seed of the DALI pipeline that reads lane `lane` of `rank`'s shard in `epoch`."""
    return seed + 7919 * epoch + 1_000_003 * rank + 15_485_863 * lane


def step_seed(seed: int, rank: int, step: int) -> int:
    """Seed of the torch generators for training step `step` on `rank`."""
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2**63)


def seed_step(seed: int, device: torch.device) -> None:
    """Re-seed the generators a training step draws from (dropout, drop-path).

    `torch.manual_seed` also walks every accelerator backend from Python; seeding the CPU
    generator and this GPU's directly is far cheaper (benchmarks/README.md, performance note 6).
    """
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)
