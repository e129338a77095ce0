"""The DALI video loader: shards -> decoded, sampled, augmented clips as torch tensors.

Everything per sample happens inside the DALI graph (reader, frame indices from the stored
frame count, the cuts at keyframes that leave the decoder only what the sampled frames need,
decoding, crop, resize, flip, normalisation); Python only sees whole batches.
"""

from __future__ import annotations

import gc
import math
import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import nvidia.dali.fn as fn
import nvidia.dali.math as dmath
import nvidia.dali.types as types
from nvidia.dali import pipeline_def
from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

from ..devices import decode_device
from ..ivf import FRAMES, HEADER as IVF_HEADER, KEYFRAMES
from ..verify import quick_check
from .batch import Batch, Epochs, arrange_eval
from .sampling import Sampling, indices
from .transforms import POSITIONS, Transform, multiscale_box, scale_pairs


def _free() -> None:
    """Collect dropped pipelines (iterators hold reference cycles to them) and return the heap."""
    gc.collect()
    _return_freed_memory()


def _return_freed_memory() -> None:
    """Hand the heap memory freed with an epoch's pipeline back to the OS (glibc only).

    glibc keeps freed blocks for reuse; with a pipeline built and dropped every epoch that
    retained memory grew by ~30 MB an epoch (measured: 370 -> 790 MB over 14 epochs of 240
    clips), while `malloc_trim` after each epoch keeps it flat.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class DaliOps:
    """The array namespace of `sampling.indices` / `transforms.multiscale_box` on DALI nodes."""

    floor = staticmethod(dmath.floor)
    minimum = staticmethod(dmath.min)
    maximum = staticmethod(dmath.max)

    @staticmethod
    def const(values):
        return types.Constant(np.asarray(values, dtype=np.float32))

    @staticmethod
    def repeat_each(x, k: int):
        return x if k == 1 else fn.reshape(fn.stack(*([x] * k), axis=1), shape=[-1])


def _choice_codes():
    # DALI cannot index a table with a random index, but it can draw from a list of numbers:
    # encode each (height scale, width scale) pair and each (x, y) position as one integer and
    # decode it with arithmetic.
    pairs = [int(round(sh * 1000)) * 10000 + int(round(sw * 1000)) for sh, sw in scale_pairs()]
    positions = [int(x * 4) * 5 + int(y * 4) for x, y in POSITIONS]
    return pairs, positions


def _train_crop(frames, t: Transform):
    size = [t.size, t.size]
    if t.train_crop == "random_resized":
        return fn.random_resized_crop(frames, size=size, antialias=False)
    if t.train_crop == "center":
        return fn.resize(frames, resize_shorter=t.eval_short_side, antialias=False)
    pair_codes, pos_codes = _choice_codes()
    shape = frames.shape(dtype=types.FLOAT)
    h, w = shape[1], shape[2]
    pair = fn.cast(fn.random.choice(pair_codes), dtype=types.FLOAT)
    sh = dmath.floor(pair / 10000.0)
    sw = pair - sh * 10000.0
    pos = fn.cast(fn.random.choice(pos_codes), dtype=types.FLOAT)
    x4 = dmath.floor(pos / 5.0)
    y4 = pos - x4 * 5.0
    y0, x0, ch, cw = multiscale_box(h, w, sh / 1000.0, sw / 1000.0, x4 / 4.0, y4 / 4.0, DaliOps)
    # Crop and resize in one pass: resize reads only the region of interest.
    return fn.resize(frames, size=size, roi_start=fn.stack(y0, x0), roi_end=fn.stack(y0 + ch, x0 + cw),
                     roi_relative=False, antialias=False)


def _keyframe_cut(video, keyframes, idx):
    """The IVF stream from the last keyframe at or before the first wanted frame, and the wanted
    frames' indices in it: DALI's decoder starts at the stream's first frame (see `ivf`)."""
    table = fn.reshape(keyframes, shape=[-1, 2])
    first = fn.reductions.min(idx)
    k = fn.reductions.sum(fn.cast(table[:, 0] <= first, dtype=types.INT32)) - 1
    start, offset = table[k, 0], table[k, 1]
    return fn.cat(video[0:IVF_HEADER], video[offset:]), idx - start


def _frame_cuts(video, keyframes, offsets, idx, m: int):
    """One piece of stream per wanted frame, joined after the IVF file header, and each wanted
    frame's position in the joined stream: the rule of `ivf.frame_pieces`, in the graph.

    A piece runs from the keyframe at or before its frame, or from just after the previous wanted
    frame when that is later (the previous piece then carries on: no frame is decoded twice), to
    the end of its frame; a repeated frame adds nothing. So the decoder sees about half a GOP per
    spread-out sampled frame, not the whole span from the first to the last. A clip whose indices
    step back (training segments on a clip shorter than the segment count) gets one piece over the
    whole span instead: the joined stream's timestamps would go backwards, and DALI's decoder then
    shows the wrong frames. Per sample, chosen by arithmetic (0/1 factors), as DALI has no branches here.
    """
    i32 = types.INT32
    keys = fn.reshape(fn.reshape(keyframes, shape=[-1, 2])[:, 0], shape=[-1, 1])  # (K, 1) frame indices
    prev = fn.cat(types.Constant(np.array([-1], np.int32)), idx[0:m - 1]) if m > 1 else \
        types.Constant(np.array([-1], np.int32))
    key = fn.reductions.max(keys * fn.cast(keys <= fn.reshape(idx, shape=[1, -1]), dtype=i32), axes=0)
    ordered = fn.reductions.min(fn.cast(idx >= prev, dtype=i32))  # 1: indices never step back
    start = dmath.max(key, prev + 1)
    length = idx - start + 1  # >= 0 where ordered
    tri = types.Constant(np.triu(np.ones((m, m), np.int32)))  # cumulative sum as a product
    position = fn.cast(fn.reductions.sum(fn.reshape(length, shape=[-1, 1]) * tri, axes=0), dtype=i32) - 1
    # The fallback: one piece from the first frame's keyframe to the last frame, the rest empty.
    lo, hi = fn.reductions.min(key), fn.reductions.max(idx)
    first = types.Constant(np.eye(1, m, dtype=np.int32)[0])
    other = 1 - ordered
    start = ordered * start + other * (hi + 1 + (lo - hi - 1) * first)
    end = ordered * idx + other * (hi + 0 * idx)
    position = ordered * position + other * (idx - lo)
    pieces = [video[0:IVF_HEADER]]
    for j in range(m):
        pieces.append(video[offsets[start[j]]:offsets[end[j] + 1]])
    return fn.cat(*pieces), fn.cast(position, dtype=i32)


def _reader_input(paths, index_paths, video_ext, sampling, train, decode, shard_id, num_shards, shuffle_buffer,
                  use_mmap, cut="clip"):
    """DALI's own webdataset reader and video decoder: frame indices and crop drawn in the graph.

    `cut` (IVF clips): "clip" decodes each clip from the keyframe at or before its first wanted
    frame to its last; "frame" decodes each wanted frame from its own keyframe (`_frame_cuts`,
    shard format 3); "none" decodes from frame 0 (a format 1 split).
    """
    tables = {"none": [], "clip": [KEYFRAMES], "frame": [KEYFRAMES, FRAMES]}[cut]
    ext = [video_ext, "label.i32", "nframes.i32", "pos.i32", *tables]
    video, label, nframes, pos, *tables = fn.readers.webdataset(
        paths=paths, index_paths=index_paths, ext=ext, dtypes=[types.UINT8] + [types.INT32] * (len(ext) - 1),
        missing_component_behavior="error", random_shuffle=train, initial_fill=shuffle_buffer, shard_id=shard_id,
        num_shards=num_shards, stick_to_shard=True, pad_last_batch=True, dont_use_mmap=not use_mmap, name="reader")
    n = fn.cast(nframes, dtype=types.FLOAT)
    r = sampling.num_randoms(train)
    u = fn.random.uniform(range=[0.0, 1.0], shape=[r]) if r else None
    idx = fn.cast(indices(sampling, n, u, train, DaliOps), dtype=types.INT32)
    if cut == "clip":
        video, idx = _keyframe_cut(video, tables[0], idx)
    elif cut == "frame":
        video, idx = _frame_cuts(video, tables[0], tables[1], idx, sampling.clips(train) * sampling.frames_per_clip())
    frames = fn.decoders.video(video, device="mixed" if decode == "gpu" else "cpu", frames=idx, pad_mode="edge")
    return frames, label, pos


@pipeline_def(enable_conditionals=False)
def video_pipeline(transform: Transform, train: bool, reader: dict | None = None, seek_source=None):
    """Decoded frames from DALI's reader (`reader`: its arguments) or from a `SeekingSource`,
    then the shared crop / resize / flip / normalise / views graph."""
    t = transform
    if seek_source is None:
        frames, label, pos = _reader_input(train=train, **reader)
        if train:
            frames = _train_crop(frames, t)
            mirror = fn.random.coin_flip() if t.flip else 0
    else:
        n = 5 if train else 3  # + crop box and flip when training
        frames, label, pos, *aug = fn.external_source(
            source=seek_source, num_outputs=n, batch=True, batch_info=True, parallel=True,
            layout=["FHWC", "", "", "", ""][:n],
            dtype=[types.UINT8, types.INT32, types.INT32, types.FLOAT, types.INT32][:n])
        if train:
            box, flip = aug
            if t.train_crop == "center":
                frames = fn.resize(frames, resize_shorter=t.eval_short_side, antialias=False)
            else:
                frames = fn.resize(frames, size=[t.size, t.size], roi_start=box[0:2], roi_end=box[0:2] + box[2:4],
                                   roi_relative=False, antialias=False)
            mirror = fn.reshape(flip, shape=[])
    common = dict(dtype=types.FLOAT16 if t.dtype == "float16" else types.FLOAT,
                  mean=[m * 255 for m in t.mean], std=[s * 255 for s in t.std])
    if train:
        crop = dict(crop=(t.size, t.size)) if t.train_crop == "center" else {}
        layout = "CFHW" if t.layout == "NCTHW" else "FCHW"
        out = fn.crop_mirror_normalize(frames, mirror=mirror, output_layout=layout, **crop, **common)
    else:
        if t.resize_ratio != 1.0:
            frames = fn.resize(frames, resize_shorter=t.eval_short_side, antialias=False)
        views = [fn.crop_mirror_normalize(frames, crop=(t.size, t.size), crop_pos_x=x, crop_pos_y=y,
                                          mirror=int(m), output_layout="FCHW", **common)
                 for x, y, m in t.views()]
        out = fn.stack(*views) if len(views) > 1 else fn.expand_dims(views[0], axes=0, new_axis_names="V")
    return out, label, pos


CUTS = ("auto", "frame", "clip")
# Where the reader source cuts each clip by default, per sampling mode (shard format 3). Frames
# spread over the clip decode far less from a keyframe each; a dense clip is one run of frames,
# where one cut decodes the same frames with fewer graph operators. Measured in
# benchmarks/results/loader.md.
DEFAULT_CUT = {"segments": "frame", "uniform": "frame", "dense": "clip"}


def keyframe_cut(manifest, sampling: Sampling, cut: str = "auto") -> str:
    """"frame", "clip" or "none" for the reader source on this split (see `_reader_input`).

    "frame" needs the frame table of shard format 3; a format 2 split is cut per clip, a format 1
    (WebM) split not at all. Asking for a cut the split cannot give is an error naming it.
    """
    if cut not in CUTS:
        raise ValueError(f"cut must be one of {CUTS}, got {cut!r}")
    can = ("frame", "clip") if manifest.video_ext == "ivf" and manifest.format_version >= 3 else \
        ("clip",) if manifest.video_ext == "ivf" else ()
    if cut == "auto":
        want = DEFAULT_CUT[sampling.mode]
        return want if want in can else (can[-1] if can else "none")
    if cut not in can:
        raise ValueError(f"{manifest.set}/{manifest.split}: shard format {manifest.format_version} "
                         f"({manifest.video_ext}) cannot be cut per {cut}; re-shard it with this version")
    return cut


class ReaderEpoch:
    """One epoch of a rank's reader pipelines (its lanes), run for exactly the batches it holds.

    DALI's iterator schedules another run for every batch it hands out, so a pipeline built per
    epoch computed `prefetch` batches past the end only to drop them (2 of 14 batches in a
    96-clip epoch of batch 8). Here each pipeline's queue depth is at most its batch count, and a
    run is scheduled per batch taken only while the lane needs more.

    Lanes: pipelines side by side over consecutive parts of the rank's shard (`counts` samples
    each), each with its own worker threads and prefetch queue, so that both keep decoding while
    the other finishes a batch. Their batches are taken round-robin (then the rest of the longer
    lanes) and re-cut into batches of `batch_size`: only the last batch of the epoch is partial,
    as with one pipeline. Yields (video, label, pos) tensors; the reader pads each lane's last
    batch with repeats of its last sample, which are cut off.
    """

    def __init__(self, pipes: list, counts: list[int], batch_size: int, depths: list[int]):
        self.pipes, self.counts, self.batch_size = pipes, counts, batch_size
        self.num_samples = sum(counts)
        self.num_batches = math.ceil(self.num_samples / batch_size)
        self.lane_batches = [math.ceil(c / batch_size) for c in counts]
        self.scheduled = [0] * len(pipes)
        for j, pipe in enumerate(pipes):
            if self.lane_batches[j]:
                pipe.schedule_run()  # the first call fills the queue: `depth` (<= its batch count) runs
                self.scheduled[j] = depths[j]

    def __len__(self) -> int:
        return self.num_batches

    def _take(self, j: int, i: int):
        pipe = self.pipes[j]
        outputs = pipe.share_outputs()
        try:
            tensors = [torch.from_numpy(o.as_array()) for o in outputs]  # copies out of DALI's buffers
        finally:
            pipe.release_outputs()
        if self.scheduled[j] < self.lane_batches[j]:
            pipe.schedule_run()
            self.scheduled[j] += 1
        keep = self.counts[j] - i * self.batch_size
        return [t[:keep] for t in tensors]

    def _lane_batches(self):
        for i in range(max(self.lane_batches, default=0)):
            for j in range(len(self.pipes)):
                if i < self.lane_batches[j]:
                    yield self._take(j, i)

    def __iter__(self):
        size, held = self.batch_size, []  # held: parts of the next batch, fewer than `size` clips
        for part in self._lane_batches():
            while len(part[0]):
                have = sum(len(h[0]) for h in held)
                if not held and len(part[0]) == size:  # the usual case: a whole batch, no copy
                    yield tuple(part)
                    break
                cut = size - have
                held.append([t[:cut] for t in part])
                part = [t[cut:] for t in part]
                if have + len(held[-1][0]) == size:
                    yield tuple(torch.cat(ts) for ts in zip(*held))
                    held = []
        if held:
            yield tuple(torch.cat(ts) for ts in zip(*held))


class DaliVideoLoader(Epochs):
    """Iterates `Batch`es of one epoch of this rank's share of a shard split.

    Training: shuffled, randomly sampled and augmented; every sample is seen exactly once per
    epoch across ranks (ranks may get one batch more or less: train under DDP's `Join`).
    Evaluation: deterministic views (`Batch.video` is [B, V, ...]); every sample appears once
    across ranks. Ranks read a contiguous shard of the split, `(rank + epoch) % world_size`, so
    samples move between ranks from epoch to epoch.

    Sources: `reader` (default: DALI's webdataset reader and video decoder, GPU or CPU; on IVF
    clips `cut` says what it decodes: "frame", each sampled frame from the keyframe at or before it,
    or "clip", from the keyframe before the first sampled frame to the last; "auto" picks per
    sampling mode, `DEFAULT_CUT`, and the CPU and GPU decoders get the same streams) or
    `seek` (PyAV with keyframe seeking in DALI's parallel external-source workers, then the same
    DALI augmentation graph; measured slower on the CPU than the reader's cuts on 3 s and 10 s
    clips, see benchmarks/README.md, and kept as an option).

    Epoch `e` is a pure function of (seed, e, rank), which makes a mid-epoch resume exact:
    `iterate(epoch, start_batch)`. With the `reader` source the pipeline is rebuilt per epoch with
    its own seed and runs for exactly that epoch's batches (`ReaderEpoch`); when training, the
    next epoch's pipeline is built in the background as the last batch is handed out. The `seek`
    source draws every random choice from (seed, epoch, sample) and keeps one pipeline.

    Lanes (`reader` source only): a rank's shard is read by `lanes` pipelines side by side, each
    over a contiguous part of it (DALI virtual shards `shard * lanes + j` of `world_size * lanes`)
    with `workers // lanes` threads; their batches are interleaved in a fixed order and re-cut so
    that only the epoch's last batch is partial (see `ReaderEpoch`). Default: one single-thread
    lane per worker when decoding on the CPU (one multi-thread DALI pipeline left ~0.3 of 2 cores
    idle: each operator finishes a whole batch before the next starts), one lane on the GPU.
    A split that fails the quick check, or whose codec the chosen decoder cannot read, is refused
    before DALI opens it.
    """

    def __init__(self, split_dir: Path, sampling: Sampling, transform: Transform, *, train: bool,
                 batch_size: int, decode: str = "auto", source: str = "reader", rank: int = 0, world_size: int = 1,
                 seed: int = 0, workers: int = 2, prefetch: int = 2, shuffle_buffer: int = 256,
                 use_mmap: bool = False, lanes: int | None = None, cut: str = "auto"):
        self.split_dir = split_dir = Path(split_dir)
        self.manifest = quick_check(split_dir)
        self.device = decode_device(self.manifest.codec, decode)
        if source not in ("reader", "seek"):
            raise ValueError(f"source must be 'reader' or 'seek', got {source!r}")
        self.source = source
        self.cut = keyframe_cut(self.manifest, sampling, cut)
        self.sampling, self.transform, self.train = sampling, transform, train
        self.batch_size, self.rank, self.world_size, self.seed = batch_size, rank, world_size, seed
        self.workers, self.epoch = workers, 0
        if lanes is None:  # CPU decoding: one single-thread pipeline per worker (see `ReaderEpoch`)
            lanes = workers if self.device == "cpu" and source == "reader" else 1
        if lanes < 1:
            raise ValueError(f"lanes must be at least 1, got {lanes}")
        self.lanes = lanes if source == "reader" else 1
        self._prefetch = prefetch
        self._pipe_kwargs = dict(
            transform=transform, train=train, batch_size=batch_size, num_threads=max(1, workers // self.lanes),
            device_id=int(os.environ.get("LOCAL_RANK", 0)) if self.device == "gpu" else None)
        self._reader = dict(
            paths=[str(split_dir / s.tar) for s in self.manifest.shards],
            index_paths=[str(split_dir / s.index) for s in self.manifest.shards],
            video_ext=self.manifest.video_ext, sampling=sampling, decode=self.device, cut=self.cut,
            num_shards=world_size * self.lanes,
            shuffle_buffer=shuffle_buffer, use_mmap=use_mmap)
        self._seek = None  # (iterator, pipeline, next epoch, next batch) of the persistent seek pipeline
        self._ahead = None  # (epoch, future (iterator, pipeline)) of the reader source's next epoch
        self._builder = None  # the thread building it

    def _shard(self, epoch: int) -> int:
        return (self.rank + epoch) % self.world_size

    def samples_in_epoch(self, epoch: int | None = None) -> int:
        """Samples this rank reads in `epoch` (DALI's contiguous shard of the split)."""
        i, n, w = self._shard(self.epoch if epoch is None else epoch), self.manifest.num_samples, self.world_size
        return n * (i + 1) // w - n * i // w

    def __len__(self) -> int:
        return math.ceil(self.samples_in_epoch() / self.batch_size)

    def iterate(self, epoch: int, start_batch: int = 0):
        """Batches of `epoch` from batch `start_batch` on."""
        if self.source == "seek":
            batches = self._seek_batches(epoch, start_batch)
        else:
            batches = self._reader_batches(epoch, start_batch)
        clips = self.sampling.clips(self.train)
        for video, label, pos in batches:
            if not self.train:
                video = arrange_eval(video, clips, self.transform.layout)
            yield Batch(video=video, label=label.view(-1).long(), pos=pos.view(-1).long())

    def _lane_counts(self, epoch: int) -> list[int]:
        """Samples each lane reads in `epoch`: DALI's contiguous virtual shards `shard * lanes + j`
        of `world_size * lanes`, which together are exactly this rank's shard."""
        n, k = self.manifest.num_samples, self.world_size * self.lanes
        first = self._shard(epoch) * self.lanes
        return [n * (v + 1) // k - n * v // k for v in range(first, first + self.lanes)]

    def _open(self, epoch: int, graph=None) -> ReaderEpoch:
        """`epoch`'s lanes; `graph`: another pipeline function of `video_pipeline`'s arguments
        (the benchmarks' decode-only stage), else `video_pipeline`."""
        pipes, counts, depths = [], [], []
        first = self._shard(epoch) * self.lanes
        for j, samples in enumerate(self._lane_counts(epoch)):
            if not samples:
                continue
            depth = max(1, min(self._prefetch, math.ceil(samples / self.batch_size)))
            pipe = (graph or video_pipeline)(**self._pipe_kwargs, prefetch_queue_depth=depth,
                                  reader=dict(self._reader, shard_id=first + j),
                                  seed=self.seed + 7919 * epoch + 1000003 * self.rank + 15485863 * j)
            pipe.build()
            pipes.append(pipe)
            counts.append(samples)
            depths.append(depth)
        return ReaderEpoch(pipes, counts, self.batch_size, depths)

    def _reader_batches(self, epoch: int, start_batch: int):
        run = None
        if self._ahead is not None:
            ahead_epoch, future = self._ahead
            self._ahead = None
            opened = future.result()  # also re-raises a failed build
            if ahead_epoch == epoch:  # the same seed and shard as a fresh pipeline: the same batches
                run = opened
            del future, opened
            if run is None:
                _free()  # it was built for another epoch (a jump or a repeat)
        if run is None:
            run = self._open(epoch)
        last = None
        try:
            n = len(run)
            for i, out in enumerate(run):
                if i == n - 1 and self.train:
                    last = out  # handed out below, after passing this pipeline to the builder thread
                    break
                if i >= start_batch:  # earlier batches are decoded and dropped (exact resume)
                    yield out
        finally:
            if last is None:  # evaluation, or stopped early: free the pipeline's buffers here
                del run
                _free()
        if last is None:
            return
        # Training goes on to the next epoch: dropping this pipeline and building the next one
        # with its first batches took 50-300 ms at each epoch boundary on 2 shared cores (5-10 %
        # of a tiny model's epoch, all of it data wait); a thread does both while the trainer
        # steps on the last batch, evaluates and saves. Still one pipeline at a time, and epoch e
        # still depends only on (seed, e, rank).
        finished = [run]
        del run
        if self._builder is None:
            self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dali-next-epoch")
        self._ahead = (epoch + 1, self._builder.submit(self._replace, finished, epoch + 1))
        if n - 1 >= start_batch:
            yield last

    def _replace(self, finished: list, epoch: int) -> ReaderEpoch:
        """In the builder thread: drop a finished epoch's pipeline, then open `epoch`'s."""
        alive = [weakref.ref(p) for p in finished[0].pipes]
        finished.clear()
        if any(a() is not None for a in alive):  # held by a reference cycle
            gc.collect()
        _return_freed_memory()
        return self._open(epoch)

    def _seek_batches(self, epoch: int, start_batch: int):
        from .seek_source import SeekingSource

        if self._seek is None or self._seek[2:] != (epoch, start_batch):
            self._seek = None  # drop the old pipeline (and its workers) first
            src = SeekingSource(self.split_dir, self.manifest, self.sampling, self.transform, self.train,
                                self.rank, self.world_size, self.seed, self.batch_size, epoch,
                                start_batch * self.batch_size)
            pipe = video_pipeline(**self._pipe_kwargs, prefetch_queue_depth=self._prefetch, seek_source=src,
                                  seed=self.seed + 1000003 * self.rank,
                                  py_num_workers=self.workers, py_start_method="spawn")
            pipe.build()
            it = DALIGenericIterator([pipe], ["video", "label", "pos"], last_batch_policy=LastBatchPolicy.PARTIAL,
                                     auto_reset=True)
            self._seek = (it, pipe, epoch, start_batch)
        it = self._seek[0]
        for out in it:
            d = out[0]
            yield d["video"], d["label"], d["pos"]
        # The pipeline carries on into the next epoch, already prefetching it.
        self._seek = (it, self._seek[1], epoch + 1, 0)
