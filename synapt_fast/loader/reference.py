"""The reference loader: a plain torch DataLoader over the same shards, webdataset + PyAV.

It is the parity oracle for the DALI loader and the peer baseline in the benchmarks, so it uses
the same sampling and crop math (`sampling`, `transforms`), the same rank partition (DALI's
contiguous shard `(rank + epoch) % world_size`), the same output layout, and is made as fast as
a careful engineer would make it: each worker decodes only its own samples, seeks to the
keyframe before the first wanted frame, decodes only up to the last one, re-seeks across gaps
longer than a GOP, and converts to RGB only the frames it keeps.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from synapt_fast.format.verify import quick_check
from .batch import Batch, Epochs, arrange_eval
from .sampling import Sampling, numpy_indices, rank_positions
from .transforms import Transform, numpy_train_box


def decode_frames(data: bytes, wanted: np.ndarray, fps: float, gop: int) -> np.ndarray:
    """RGB uint8 (len(wanted), H, W, 3): the frames at `wanted` indices (any order, repeats ok)."""
    need = np.unique(wanted)
    got: dict[int, np.ndarray] = {}
    import av  # here, not at the top: the DALI loader's machines may have no PyAV

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1  # DataLoader workers are the parallelism
        if container.format.name in ("h264", "hevc"):
            # An elementary stream (shard format 3) has no timestamps to seek by: frames are
            # counted from the start, in decode order (= display order: no B-frames, `annexb`).
            return _decode_counting(container, stream, wanted, need)
        tb = stream.time_base
        k = 0  # next wanted frame (position in `need`)
        while k < len(need):
            target = int(need[k])
            if target > 0:
                # Seek to the keyframe at or before `target` (pts in stream time base).
                container.seek(int(target / fps / tb), stream=stream, backward=True, any_frame=False)
            else:
                container.seek(0, stream=stream)
            for frame in container.decode(stream):
                i = int(round(frame.time * fps)) if frame.time is not None else 0
                if i < target:
                    continue
                while k < len(need) and need[k] < i:
                    k += 1  # a frame the stream does not have; the next decoded one stands in
                if k < len(need) and need[k] == i:
                    got[i] = frame.to_ndarray(format="rgb24")
                    k += 1
                if k >= len(need):
                    break
                if need[k] - i > gop:
                    break  # far ahead: seeking beats decoding the gap
            else:
                break  # end of stream
    if not got:
        raise ValueError("no frames decoded")
    last = max(got)
    # Indices past the end (a frame count the container overstates) repeat the last frame.
    return np.stack([got[int(i)] if int(i) in got else got[last] for i in wanted])


def _decode_counting(container, stream, wanted: np.ndarray, need: np.ndarray) -> np.ndarray:
    got, i, frame, top = {}, -1, None, int(need[-1])
    for i, frame in enumerate(container.decode(stream)):
        if i in need:
            got[i] = frame.to_ndarray(format="rgb24")
        if i >= top:
            break
    if frame is None:
        raise ValueError("no frames decoded")
    if i not in got:  # indices past the end repeat the last frame
        got[i] = frame.to_ndarray(format="rgb24")
    return np.stack([got[int(k)] if int(k) in got else got[i] for k in wanted])


def _resize(clip: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[T, 3, H, W] float -> [T, 3, h, w], bilinear without antialiasing (as the DALI loader: crops
    are resized by at most ~1.5x, where antialiasing changes little and costs a lot)."""
    if clip.shape[-2:] == (h, w):
        return clip
    return F.interpolate(clip, size=(h, w), mode="bilinear", antialias=False, align_corners=False)


def _short_side(clip: torch.Tensor, short: int) -> torch.Tensor:
    h, w = clip.shape[-2:]
    scale = short / min(h, w)
    return _resize(clip, max(short, round(h * scale)), max(short, round(w * scale)))


def _crop(clip: torch.Tensor, size: int, x: float, y: float) -> torch.Tensor:
    h, w = clip.shape[-2:]
    # Half up, as DALI's crop anchor rounds (Python's round() goes half to even: one pixel off
    # whenever the free space is odd).
    y0, x0 = int(math.floor((h - size) * y + 0.5)), int(math.floor((w - size) * x + 0.5))
    return clip[..., y0:y0 + size, x0:x0 + size]


def augment(frames: np.ndarray, t: Transform, train: bool, rng: np.random.Generator) -> torch.Tensor:
    """Train: [C,T,H,W] or [T,C,H,W] by layout. Eval: [crops, T', 3, H, W] (arranged later)."""
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # T, 3, H, W
    mean = torch.tensor(t.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(t.std).view(1, 3, 1, 1) * 255
    dtype = torch.float16 if t.dtype == "float16" else torch.float32
    if train:
        h, w = clip.shape[-2:]
        if t.train_crop == "center":
            clip = _crop(_short_side(clip, t.eval_short_side), t.size, 0.5, 0.5)
        else:
            y0, x0, ch, cw = numpy_train_box(t, h, w, rng)
            clip = _resize(clip[..., y0:y0 + ch, x0:x0 + cw], t.size, t.size)
        if t.flip and rng.random() < 0.5:
            clip = clip.flip(-1)
        clip = ((clip - mean) / std).to(dtype)
        return clip.permute(1, 0, 2, 3).contiguous() if t.layout == "NCTHW" else clip
    if t.resize_ratio != 1.0:
        clip = _short_side(clip, t.eval_short_side)
    views = []
    for x, y, mirror in t.views():
        v = _crop(clip, t.size, x, y)
        views.append(v.flip(-1) if mirror else v)
    return ((torch.stack(views) - mean) / std).to(dtype)


class _Samples(IterableDataset):
    def __init__(self, split_dir: Path, sampling: Sampling, transform: Transform, train: bool, rank: int,
                 world_size: int, seed: int, epoch, shuffle_buffer: int):
        self.manifest = quick_check(split_dir)
        self.urls = [str(Path(split_dir) / s.tar) for s in self.manifest.shards]
        self.sampling, self.transform, self.train = sampling, transform, train
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.epoch = epoch  # a shared multiprocessing value: workers persist across epochs
        self.shuffle_buffer = shuffle_buffer
        self.fps, self.gop = self.manifest.encoding["fps"], self.manifest.encoding["gop"]

    def positions(self, epoch: int) -> np.ndarray:
        """This rank's samples in `epoch`, in the order they are read."""
        return rank_positions(self.manifest.num_samples, self.rank, self.world_size, epoch, self.seed, self.train)

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        epoch = self.epoch.value
        mine = {int(p) for p in self.positions(epoch)[wid::nw]}
        rng = np.random.default_rng([self.seed, epoch, self.rank, wid, 1])
        # Stream the tars with webdataset and keep this worker's samples (bytes are cheap next to
        # decoding); training order comes from webdataset's bounded shuffle buffer, so memory
        # stays flat however large the split.
        stream = wds.WebDataset(self.urls, shardshuffle=False, nodesplitter=None, workersplitter=None,
                                empty_check=False).select(lambda s: int(np.frombuffer(s["pos.i32"], "<i4")[0]) in mine)
        if self.train:
            stream = stream.shuffle(self.shuffle_buffer, rng=random.Random(int(rng.integers(2**31))))
        ext = self.manifest.video_ext
        for sample in stream:
            n = int(np.frombuffer(sample["nframes.i32"], "<i4")[0])
            label = int(np.frombuffer(sample["label.i32"], "<i4")[0])
            pos = int(np.frombuffer(sample["pos.i32"], "<i4")[0])
            idx = numpy_indices(self.sampling, n, self.train, rng)
            yield augment(self.decode(sample[ext], idx), self.transform, self.train, rng), label, pos

    def decode(self, data: bytes, idx: np.ndarray) -> np.ndarray:
        """Frames `idx` of one encoded clip, (T, H, W, 3) uint8: PyAV, seeking to keyframes."""
        return decode_frames(data, idx, self.fps, self.gop)


class ReferenceLoader(Epochs):
    """Same interface as `DaliVideoLoader`: `len`, `set_epoch`, iteration, `iterate(epoch, start_batch)`."""

    def __init__(self, split_dir: Path, sampling: Sampling, transform: Transform, *, train: bool,
                 batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0, workers: int = 2,
                 prefetch: int = 2, shuffle_buffer: int = 256, decode: str = "cpu", **_ignored):
        ctx = multiprocessing.get_context("spawn")  # never fork a process that may hold DALI threads
        self._epoch = ctx.Value("i", 0)
        self.dataset = _Samples(Path(split_dir), sampling, transform, train, rank, world_size, seed, self._epoch,
                                shuffle_buffer)
        self.manifest = self.dataset.manifest
        self.sampling, self.transform, self.train = sampling, transform, train
        self.batch_size, self.workers, self.epoch = batch_size, workers, 0
        self.loader = DataLoader(self.dataset, batch_size=batch_size, num_workers=workers,
                                 multiprocessing_context=ctx if workers else None,
                                 persistent_workers=workers > 0, prefetch_factor=prefetch if workers else None)

    def _per_worker(self, epoch: int) -> list[int]:
        n = len(self.dataset.positions(epoch))
        nw = max(1, self.workers)
        return [len(range(w, n, nw)) for w in range(nw)]

    def __len__(self) -> int:
        return sum(math.ceil(k / self.batch_size) for k in self._per_worker(self.epoch))

    def iterate(self, epoch: int, start_batch: int = 0):
        """Batches of `epoch` from `start_batch` on (earlier ones are decoded and dropped)."""
        self._epoch.value = epoch
        clips = self.sampling.clips(self.train)
        for i, (video, label, pos) in enumerate(self.loader):
            if i < start_batch:
                continue
            if not self.train:
                video = arrange_eval(video, clips, self.transform.layout)
            yield Batch(video=video, label=label.long(), pos=pos.long())
