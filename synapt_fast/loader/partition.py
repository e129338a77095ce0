"""How a split's samples are divided between ranks, lanes and epochs: DALI's contiguous shards.

DALI's readers give shard `i` of `k` the samples `[n * i // k, n * (i + 1) // k)`; every other
part of the project (the reference loader, the trainer's step counts, evaluation) must agree with
it exactly, so this is the one copy of that arithmetic.
"""

from __future__ import annotations


def shard_range(num_samples: int, shard: int, num_shards: int) -> range:
    """Sample positions of contiguous shard `shard` of `num_shards`."""
    return range(num_samples * shard // num_shards, num_samples * (shard + 1) // num_shards)


def rank_shard(rank: int, epoch: int, world_size: int) -> int:
    """The shard a rank reads in `epoch`: it rotates, so each rank sees every part of the split."""
    return (rank + epoch) % world_size
