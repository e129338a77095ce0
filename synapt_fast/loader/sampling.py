"""Which frames a clip contributes: the paper's sampling modes, written once.

The index math is written against a tiny array namespace (`ops`) so the *same* code runs on
numpy arrays (reference loader, tests) and on DALI graph nodes (the DALI pipeline computes the
indices in-graph from the stored frame count: no per-sample Python on the hot path). Only
+, -, *, /, floor, min, max and "repeat each element" are used, which both support.

Modes:
- `segments` (TSN): `num_frames` segments x `frames_per_segment` consecutive frames.
- `dense` (I3D, R(2+1)D, TimeSformer 8x32): `num_frames` frames `interval` apart.
- `uniform`: `num_frames` frames spread evenly from the first to the last.

Two styles say where inside a clip the frames fall (`uniform` has one way only):
- `ibm`, as IBM/action-recognition-pytorch's `utils/video_dataset.py` (which trained the paper's
  CNN baselines) does it. Segments: `floor(n / N)` frames each, and when training **one** random
  offset shared by every segment; when evaluating the centre of each of N equal parts,
  `floor(j n / N + n / 2N)`. Dense: a random start in `[0, n - interval x F)` when training; for
  evaluation `num_clips` starts spaced evenly from frame 0 to `n - interval x F` (one clip starts
  at frame 0); indices past the end wrap to the start (`% n`), so a short clip loops.
- `centred`: an independent random offset inside each segment when training, centred evaluation
  clips (the c-th of C at the middle of the c-th part of the possible starts), and indices past
  the end repeat the last frame. TimeSformer's reference clamps the same way.

Where this differs from IBM's code, on purpose: with `frames_per_segment` k > 1 the k frames of a
segment are consecutive (IBM draws k distinct random offsets); clips with fewer frames than the
segments need (IBM draws frames at random with replacement) use the fractional `n / N` grid with
the same shared offset; such clips in evaluation take the fractional centres (IBM: a seeded random
draw). Any index that is still past the end repeats the last frame: never black padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .partition import rank_shard, shard_range

SAMPLING_MODES = ("segments", "dense", "uniform")
STYLES = ("ibm", "centred")
EPS = 1e-3  # keeps floor() of a whole number computed in float32 from falling one short


@dataclass(frozen=True)
class Sampling:
    mode: str = "segments"
    num_frames: int = 8  # segments: N segments; dense: clip length; uniform: frames
    frames_per_segment: int = 1  # segments only
    interval: int = 1  # dense only: frame stride
    num_clips: int = 1  # dense evaluation: clips per video
    style: str = "centred"  # ibm | centred: see the module docstring (recipes default to ibm)

    def __post_init__(self):
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {self.mode!r}")
        if self.style not in STYLES:
            raise ValueError(f"sampling style must be one of {STYLES}, got {self.style!r}")
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
        segments = 1 if self.style == "ibm" else self.num_frames  # IBM: one offset shared by all segments
        return {"segments": segments, "dense": 1, "uniform": 0}[self.mode]

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
    ibm = s.style == "ibm"
    if s.mode == "segments":
        k = s.frames_per_segment
        seg = n / s.num_frames
        j = ops.const(np.arange(s.num_frames))
        if train and ibm:
            # Whole-frame segments of floor(n / N) when each holds k frames (`fits` is 1), else the
            # fractional n / N; one offset `u` (a single number) for every segment.
            ave = ops.floor(seg)
            fits = ops.minimum(ops.maximum(ave - (k - 1), 0.0), 1.0)
            length = fits * ave + (1.0 - fits) * seg
            start = ops.floor(j * length + u * ops.maximum(length - (k - 1), 1.0))
        elif train:
            # A random start inside each segment, leaving room for k consecutive frames.
            start = ops.floor(j * seg + u * ops.maximum(seg - (k - 1), 1.0))
        elif ibm:
            start = ops.floor(j * seg + ops.maximum(seg - (k - 1), 0.0) / 2.0 + EPS)
        else:
            start = ops.floor(j * seg + ops.maximum(seg - k, 0.0) / 2.0)
        idx = ops.repeat_each(start, k) + ops.const(np.tile(np.arange(k), s.num_frames))
    elif s.mode == "dense" and ibm:
        steps = np.arange(s.num_frames) * s.interval
        c = 1 if train else s.num_clips
        if train:
            start = ops.floor(u * ops.maximum(n - s.interval * s.num_frames, 1.0))
        else:
            # np.linspace(0, positions - 1, c, dtype=int): the first clip starts at frame 0
            positions = ops.maximum(n - s.interval * s.num_frames + 1, 1.0)
            frac = np.arange(c) / (c - 1) if c > 1 else np.zeros(1)
            start = ops.floor(ops.const(np.repeat(frac, s.num_frames)) * (positions - 1.0) + EPS)
        raw = start + ops.const(np.tile(steps, c))
        idx = raw - n * ops.floor(raw / n)  # past the end: wrap to the start, as IBM's `% n`
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
