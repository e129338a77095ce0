"""The DALI video loader: shards -> decoded, sampled, augmented clips as torch tensors.

Everything per sample happens inside the DALI graph (reader, frame indices from the stored
frame count, the cuts at keyframes that leave the decoder only what the sampled frames need,
decoding, crop, resize, flip, normalisation); Python only sees whole batches.
"""

from __future__ import annotations

import gc
import math
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

from synapt_fast.format.codecs import decode_device, local_cuda_device
from synapt_fast.format.verify import quick_check
from synapt_fast.seeds import pipeline_seed
from .batch import Batch, Epochs, arrange_eval
from .dali_graph import keyframe_cut, reader_args, video_pipeline
from .handoff import to_torch, use_device_in_thread
from .partition import rank_shard, shard_range
from .sampling import Sampling
from .transforms import Transform


def _free() -> None:
    """Collect dropped pipelines (iterators hold reference cycles to them) and return the heap."""
    gc.collect()
    _return_freed_memory()


def _return_freed_memory() -> None:
    """Hand the heap memory freed with an epoch's pipeline back to the OS (glibc only).

    glibc keeps freed blocks for reuse; with a pipeline built and dropped every epoch the
    retained memory grew every epoch, while `malloc_trim` after each epoch keeps it flat
    (benchmarks/README.md, performance note 5).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# Decoding on the GPU: the mixed decoder decodes a batch's clips in parallel on its own pool of
# `num_threads` threads, one NVDEC session per clip (DALI's video decoder source), and each
# thread waits on the GPU after every frame's colour conversion, so it takes several threads to
# keep the 7 NVDEC engines of an H100 / H200 (NVIDIA's NVDEC application note) busy; two lanes
# let one pipeline's reader, keyframe cut and GPU resize run while the other decodes. 2 x 4
# threads: 8 decode sessions, as many as an H200 has engines plus one. Unmeasured until a GPU
# run (`synapt-fast bench gpu` compares lanes); the one-lane, two-thread default before this
# left most engines idle.
GPU_LANES = 2
GPU_THREADS_PER_LANE = 4


def default_lanes(device: str, source: str, workers: int) -> int:
    """CPU decoding: one single-thread pipeline per worker (one multi-thread pipeline left ~0.3
    of 2 cores idle, see `ReaderEpoch`); GPU decoding: `GPU_LANES`; the seek source: one."""
    if source != "reader":
        return 1
    return GPU_LANES if device == "gpu" else workers


def threads_per_lane(device: str, workers: int, lanes: int) -> int:
    """DALI threads of each lane: the workers shared out, at least `GPU_THREADS_PER_LANE` on the
    GPU (there they mostly wait on NVDEC rather than use a core)."""
    share = max(1, workers // lanes)
    return max(share, GPU_THREADS_PER_LANE) if device == "gpu" else share


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

    def __init__(self, pipes: list, counts: list[int], batch_size: int, depths: list[int], pin_memory: bool = False):
        self.pipes, self.counts, self.batch_size, self.pin_memory = pipes, counts, batch_size, pin_memory
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
            # Host outputs copied out of DALI's buffers; GPU ones as views that keep theirs (`handoff`).
            tensors = [to_torch(o, pin_memory=self.pin_memory, zero_copy=pipe.exec_dynamic) for o in outputs]
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
    DALI augmentation graph; slower on the CPU than the reader's cuts on 3 s and 10 s clips,
    benchmarks/README.md performance notes 3 and 17, and kept as an option).

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
    idle: each operator finishes a whole batch before the next starts), `GPU_LANES` lanes of at
    least `GPU_THREADS_PER_LANE` threads on the GPU (`default_lanes`). `pin_memory`: host batches
    in page-locked memory, for a CUDA trainer fed by CPU decoding.
    A split that fails the quick check, or whose codec the chosen decoder cannot read, is refused
    before DALI opens it.

    `use_mmap` (default): the reader maps the tars instead of copying every sample into its
    shuffle buffer. Copies of 256 whole 10 s clips per lane cost more CPU than decoding the
    sampled frames of a dense clip (benchmarks/README.md, note 18). DALI segfaults on a tar
    truncated under a mapping; the quick check refuses any tar whose size differs from the
    manifest's before DALI opens it, and `use_mmap=False` reads with copies (a clean error).
    """

    def __init__(self, split_dir: Path, sampling: Sampling, transform: Transform, *, train: bool,
                 batch_size: int, decode: str = "auto", source: str = "reader", rank: int = 0, world_size: int = 1,
                 seed: int = 0, workers: int = 2, prefetch: int = 2, shuffle_buffer: int = 256,
                 use_mmap: bool = True, lanes: int | None = None, pin_memory: bool = False, cut: str = "auto"):
        self.split_dir = split_dir = Path(split_dir)
        self.manifest = quick_check(split_dir)
        self.device = decode_device(self.manifest.codec, decode, encoding=self.manifest.encoding,
                                    device_id=local_cuda_device() if decode != "cpu" else 0)
        if source not in ("reader", "seek"):
            raise ValueError(f"source must be 'reader' or 'seek', got {source!r}")
        self.source = source
        self.cut = keyframe_cut(self.manifest, sampling, cut)
        self.sampling, self.transform, self.train = sampling, transform, train
        self.batch_size, self.rank, self.world_size, self.seed = batch_size, rank, world_size, seed
        self.workers, self.epoch = workers, 0
        if lanes is None:
            lanes = default_lanes(self.device, source, workers)
        if lanes < 1:
            raise ValueError(f"lanes must be at least 1, got {lanes}")
        self.lanes = lanes if source == "reader" else 1
        self._prefetch = prefetch
        # The CUDA device DALI runs on (None: CPU only); host batches page-locked if `pin_memory`.
        self.device_id = local_cuda_device() if self.device == "gpu" else None
        if pin_memory and not torch.cuda.is_available():
            raise ValueError("pin_memory=True needs CUDA: page-locked batches are for host -> GPU copies")
        self.pin_memory = pin_memory
        self._pipe_kwargs = dict(
            transform=transform, train=train, batch_size=batch_size,
            num_threads=threads_per_lane(self.device, workers, self.lanes), device_id=self.device_id)
        self._reader = reader_args(split_dir, self.manifest, sampling, self.device, world_size * self.lanes,
                                   shuffle_buffer, use_mmap, self.cut)
        self._seek = None  # (iterator, pipeline, next epoch, next batch) of the persistent seek pipeline
        self._ahead = None  # (epoch, future (iterator, pipeline)) of the reader source's next epoch
        self._builder = None  # the thread building it

    def _shard(self, epoch: int) -> int:
        return rank_shard(self.rank, epoch, self.world_size)

    def samples_in_epoch(self, epoch: int | None = None) -> int:
        """Samples this rank reads in `epoch` (DALI's contiguous shard of the split)."""
        epoch = self.epoch if epoch is None else epoch
        return len(shard_range(self.manifest.num_samples, self._shard(epoch), self.world_size))

    def __len__(self) -> int:
        return math.ceil(self.samples_in_epoch() / self.batch_size)

    def iterate(self, epoch: int, start_batch: int = 0):
        """Batches of `epoch` from batch `start_batch` on, in whichever thread iterates them."""
        use_device_in_thread(self.device_id)
        if self.source == "seek":
            batches = self._seek_batches(epoch, start_batch)
        else:
            batches = self._reader_batches(epoch, start_batch)
        clips = self.sampling.clips(self.train)
        for video, label, pos in batches:
            if self.pin_memory and self.source == "seek":  # DALI's iterator gives pageable tensors
                video, label, pos = video.pin_memory(), label.pin_memory(), pos.pin_memory()
            if not self.train:
                video = arrange_eval(video, clips, self.transform.layout)
            elif self.transform.channels_last:  # (N, T, H, W, C) viewed as NCTHW: channels_last_3d
                video = video.permute(0, 4, 1, 2, 3)
            yield Batch(video=video, label=label.view(-1).long(), pos=pos.view(-1).long())

    def _lane_counts(self, epoch: int) -> list[int]:
        """Samples each lane reads in `epoch`: DALI's contiguous virtual shards `shard * lanes + j`
        of `world_size * lanes`, which together are exactly this rank's shard."""
        n, k = self.manifest.num_samples, self.world_size * self.lanes
        first = self._shard(epoch) * self.lanes
        return [len(shard_range(n, v, k)) for v in range(first, first + self.lanes)]

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
                                  seed=pipeline_seed(self.seed, epoch, self.rank, j))
            pipe.build()
            pipes.append(pipe)
            counts.append(samples)
            depths.append(depth)
        return ReaderEpoch(pipes, counts, self.batch_size, depths, self.pin_memory)

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
        # with its first batches is all data wait at an epoch boundary (benchmarks/README.md,
        # performance note 8); a thread does both while the trainer
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
                                  seed=pipeline_seed(self.seed, 0, self.rank),
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
