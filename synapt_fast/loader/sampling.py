"""Which frames a clip contributes: the paper's sampling modes, written once.

The index math is written against a tiny array namespace (`ops`) so the *same* code runs on
numpy arrays (reference loader, tests) and on DALI graph nodes (the DALI pipeline computes the
indices in-graph from the stored frame count: no per-sample Python on the hot path). Only
+, -, *, /, floor, min, max and "repeat each element" are used, which both support.

Modes:
- `segments` (TSN): `num_frames` segments x `frames_per_segment` consecutive frames; a random
  offset inside each segment when training, the segment centre for evaluation.
- `dense` (I3D, R(2+1)D): `num_frames` frames `interval` apart; a random start when training,
  `num_clips` evenly spaced clips for evaluation.
- `uniform` (TimeSformer-style): `num_frames` frames spread evenly from the first to the last.

Indices past the end of a short clip repeat its last frame (never black padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .partition import rank_shard, shard_range

SAMPLING_MODES = ("segments", "dense", "uniform")


@dataclass(frozen=True)
class Sampling:
    mode: str = "segments"
    num_frames: int = 8  # segments: N segments; dense: clip length; uniform: frames
    frames_per_segment: int = 1  # segments only
    interval: int = 1  # dense only: frame stride
    num_clips: int = 1  # dense evaluation: clips per video

    def __post_init__(self):
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {self.mode!r}")
        if min(self.num_frames, self.frames_per_segment, self.interval, self.num_clips) < 1:
            raise ValueError("num_frames, frames_per_segment, interval and num_clips must be >= 1")

    def frames_per_clip(self) -> int:
        """Frames in one clip handed to the model (T)."""
        return self.num_frames * (self.frames_per_segment if self.mode == "segments" else 1)

    def clips(self, train: bool) -> int:
        """Clips (temporal views) per video."""
        return self.num_clips if (self.mode == "dense" and not train) else 1

    def num_randoms(self, train: bool) -> int:
        """How many U[0,1) numbers `indices` needs per video (0 when deterministic)."""
        if not train:
            return 0
        return {"segments": self.num_frames, "dense": 1, "uniform": 0}[self.mode]

    def span(self) -> int:
        return (self.num_frames - 1) * self.interval + 1


class NumpyOps:
    floor = staticmethod(np.floor)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)

    @staticmethod
    def const(values):
        return np.asarray(values, dtype=np.float64)

    @staticmethod
    def repeat_each(x, k: int):
        return np.repeat(x, k, axis=-1)


def indices(s: Sampling, n, u, train: bool, ops=NumpyOps):
    """Frame indices (as floats holding whole numbers) for a clip of `n` frames.

    `n`: the frame count (numpy scalar/array of shape (..., 1), or a DALI node); `u`: U[0,1)
    numbers, `s.num_randoms(train)` of them (ignored when that is 0). The result has
    `s.clips(train) * s.frames_per_clip()` entries, clip after clip.
    """
    if s.mode == "segments":
        k = s.frames_per_segment
        seg = n / s.num_frames
        j = ops.const(np.arange(s.num_frames))
        if train:
            # A random start inside each segment, leaving room for k consecutive frames.
            start = ops.floor(j * seg + u * ops.maximum(seg - (k - 1), 1.0))
        else:
            start = ops.floor(j * seg + ops.maximum(seg - k, 0.0) / 2.0)
        idx = ops.repeat_each(start, k) + ops.const(np.tile(np.arange(k), s.num_frames))
    elif s.mode == "dense":
        room = ops.maximum(n - s.span() + 1, 1.0)  # how many start positions fit
        steps = np.arange(s.num_frames) * s.interval
        if train:
            idx = ops.floor(u * room) + ops.const(steps)
        else:
            c = s.num_clips
            # Clip c starts at the centre of the c-th of `c` equal parts of the possible starts.
            centres = ops.const(np.repeat((np.arange(c) + 0.5) / c, s.num_frames))
            idx = ops.floor(centres * room) + ops.const(np.tile(steps, c))
    else:
        t = np.arange(s.num_frames) / max(s.num_frames - 1, 1)
        idx = ops.floor(ops.const(t) * (n - 1.0) + 0.5)
        if s.num_frames == 1:
            idx = ops.floor(ops.const([0.0]) + (n - 1.0) / 2.0)
    return ops.minimum(ops.maximum(idx, 0.0), n - 1.0)


def numpy_indices(s: Sampling, n: int, train: bool, rng: np.random.Generator | None = None) -> np.ndarray:
    """int64 indices for one clip of `n` frames (reference loader and tests)."""
    if n < 1:
        raise ValueError("a clip needs at least one frame")
    r = s.num_randoms(train)
    u = (rng or np.random.default_rng()).random(r) if r else None
    return indices(s, np.float64(n), u, train).astype(np.int64)


def rank_positions(num_samples: int, rank: int, world_size: int, epoch: int, seed: int, train: bool) -> np.ndarray:
    """This rank's samples in `epoch` in reading order: DALI's contiguous shard `(rank + epoch) %
    world_size` of the split (rotating between epochs), shuffled when training."""
    pos = np.array(shard_range(num_samples, rank_shard(rank, epoch, world_size), world_size), dtype=np.int64)
    return np.random.default_rng([seed, epoch, rank]).permutation(pos) if train else pos
