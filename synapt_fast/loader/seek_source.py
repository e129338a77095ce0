"""A seeking decoder feeding the DALI graph: PyAV in DALI's parallel external-source workers.

DALI 2.4's CPU video decoder never seeks: it decodes from the first frame of the stream it is
given to the last frame asked for. The reader source gives it each clip cut at the keyframe before
its first wanted frame (`ivf`), which leaves sampling spread over a long video (TSN segments) to
decode nearly whole. This source decodes with PyAV instead, seeking to the keyframe before each
wanted frame and re-seeking across gaps (`reference.decode_frames`), in worker processes, and
hands the frames to the same DALI crop / resize / flip / normalise graph. It did not beat DALI's
own decoder in any mode on 3 s clips, nor the reader's per-frame cuts on 10 s clips (35.0 against
30.0 CPU ms a clip for segments 8; benchmarks/README.md, note 17); it is the `source="seek"` option.

Every random choice (frame offsets, crop box, flip) is drawn here from a generator keyed by
(seed, epoch, sample position), so an epoch is reproducible however the pipeline was started:
the pipeline lives across epochs, and a resume starts it at (epoch, sample) directly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from synapt_fast.format.manifest import Manifest
from synapt_fast.format.index import read_index
from .reference import decode_frames
from .sampling import Sampling, numpy_indices, rank_positions
from .transforms import Transform, numpy_train_box


class SeekingSource:
    """Batch callback for `fn.external_source(parallel=True, batch=True, batch_info=True)`.

    Each sample is (frames uint8 [T, H, W, 3], label, pos, crop box [y0, x0, h, w] float32, flip).
    Worker processes each produce whole batches; `prefetch` batches are in flight.
    """

    def __init__(self, split_dir: Path, manifest: Manifest, sampling: Sampling, transform: Transform,
                 train: bool, rank: int, world_size: int, seed: int, batch_size: int, first_epoch: int = 0,
                 first_sample: int = 0):
        self.tars = [str(Path(split_dir) / s.tar) for s in manifest.shards]
        self.entries = []  # (tar number, {ext: (offset, size)}) in split order
        for k, shard in enumerate(manifest.shards):
            for sample in read_index(Path(split_dir) / shard.index):
                self.entries.append((k, {ext: (off, size) for ext, off, size, _ in sample}))
        self.ext, self.fps, self.gop = manifest.video_ext, manifest.encoding["fps"], manifest.encoding["gop"]
        self.sampling, self.transform, self.train = sampling, transform, train
        self.rank, self.world_size, self.seed, self.batch_size = rank, world_size, seed, batch_size
        self.first_epoch, self.first_sample = first_epoch, first_sample
        self._fds: list[int] | None = None
        self._order: tuple[int, np.ndarray] | None = None

    def _read(self, k: int, where: tuple[int, int]) -> bytes:
        if self._fds is None:  # opened in the worker process, not pickled from the parent
            self._fds = [os.open(t, os.O_RDONLY) for t in self.tars]
        offset, size = where
        return os.pread(self._fds[k], size, offset)

    def order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, rank_positions(len(self.entries), self.rank, self.world_size, epoch, self.seed,
                                                 self.train))
        return self._order[1]

    def sample(self, epoch: int, pos: int):
        """(frames, label, pos[, crop box, flip when training]) of sample `pos` in `epoch`."""
        k, members = self.entries[pos]
        n = int(np.frombuffer(self._read(k, members["nframes.i32"]), "<i4")[0])
        label = np.frombuffer(self._read(k, members["label.i32"]), "<i4").copy()
        rng = np.random.default_rng([self.seed, epoch, pos])
        idx = numpy_indices(self.sampling, n, self.train, rng)
        frames = decode_frames(self._read(k, members[self.ext]), idx, self.fps, self.gop)
        if not self.train:
            return frames, label, np.array([pos], np.int32)
        box, flip = np.zeros(4, np.float32), np.zeros(1, np.int32)
        h, w = frames.shape[1:3]
        t = self.transform
        if t.train_crop != "center":
            box[:] = numpy_train_box(t, h, w, rng)
        flip[0] = int(t.flip and rng.random() < 0.5)
        return frames, label, np.array([pos], np.int32), box, flip

    def __call__(self, info):
        """One batch (batch mode: a short last batch is allowed, unlike per-sample mode)."""
        epoch = self.first_epoch + info.epoch_idx
        first = info.iteration * self.batch_size + (self.first_sample if info.epoch_idx == 0 else 0)
        order = self.order(epoch)
        if first >= len(order):
            raise StopIteration
        samples = [self.sample(epoch, int(p)) for p in order[first:first + self.batch_size]]
        return tuple(list(column) for column in zip(*samples))
