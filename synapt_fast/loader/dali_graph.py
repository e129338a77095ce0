"""The DALI graph of the video loader: reader, frame indices, keyframe cuts, decoder and augmentation.

`video_pipeline` builds one pipeline (the reader source or the seeking source feeding the same
augmentation); `serialized_graph` gives it without a GPU, for tests that check what runs where.
The per-epoch pipelines, lanes and the hand-off to torch are `dali_loader`'s.
"""

from __future__ import annotations

import contextlib
import ctypes
from pathlib import Path

import numpy as np
import nvidia.dali.fn as fn
import nvidia.dali.math as dmath
import nvidia.dali.types as types
import torch
import torch.nn.functional as F
from nvidia.dali import pipeline_def

from synapt_fast.format import annexb
from synapt_fast.format.ivf import FRAMES, HEADER as IVF_HEADER, KEYFRAMES
from synapt_fast.format.verify import quick_check

from .sampling import Sampling, indices
from .transforms import JITTER, POSITIONS, Transform, jitter_box, multiscale_box, scale_pairs


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


def _openmp():
    try:  # the OpenMP runtime torch was built with, already loaded by torch (none on some builds)
        return ctypes.CDLL("libgomp.so.1")
    except OSError:
        return None


_OPENMP = _openmp()


@contextlib.contextmanager
def _one_torch_thread():
    """Run torch's operators on the calling thread alone while inside.

    A DALI lane is one thread per core already; left alone, torch would start a team of OpenMP
    threads (one per core) under every DALI thread that calls it, and those spin after each
    operator: a fifth of `HostResize`'s CPU time went to spinning in a one-off profile (note 21
    of benchmarks/README.md). OpenMP's thread count is a per-thread setting (torch's own
    `set_num_threads` would change every thread's), and it is put back on the way out: DALI's
    synchronous executor calls Python operators on the thread that runs the pipeline, which may
    be the trainer's.
    """
    before = torch.get_num_threads()  # the call also sets up torch's thread state on this thread
    change = _OPENMP is not None and before > 1
    if change:
        _OPENMP.omp_set_num_threads(1)
    try:
        yield
    finally:
        if change:
            _OPENMP.omp_set_num_threads(before)


class HostResize:
    """The crop-and-resize of a training box on the CPU, done by torch inside the DALI graph.

    DALI's CPU resize took about 0.2 ms per 112x112 frame, as long as decoding an MJPEG frame,
    and its linear filter was up to 14 levels off bilinear interpolation where it enlarges a
    crop (one-off checks, note 19 of benchmarks/README.md); torch's uint8 bilinear kernel is
    several times faster and within one level of the reference loader's float resize (held so
    by tests/loader/test_loader.py). One call per batch: the frames (F, H, W, C uint8) and boxes
    (y0, x0, h, w) of its samples; a box already of the output size is cut out without resizing,
    as in the reference loader.
    """

    def __init__(self, size: int):
        self.size = size

    def __call__(self, frames, boxes):
        with _one_torch_thread():
            return [self._one(f, b.astype(np.int64)) for f, b in zip(frames, boxes)]

    def _one(self, frames, box) -> np.ndarray:
        y0, x0, h, w = box
        crop = torch.from_numpy(frames)[:, y0:y0 + h, x0:x0 + w]
        if (h, w) != (self.size, self.size):
            # (F, C, h, w) in channels-last memory: the layout torch's fast uint8 kernel takes.
            crop = F.interpolate(crop.permute(0, 3, 1, 2), size=(self.size, self.size), mode="bilinear",
                                 antialias=False, align_corners=False).permute(0, 2, 3, 1)
        return np.ascontiguousarray(crop.numpy())


def _resize_box(frames, t: Transform, box):
    """`frames` cut to `box` (y0, x0, h, w: a float node) and resized to `t.size` squared: by
    torch on the CPU (`HostResize`), by DALI's resize (which reads only the box) on the GPU."""
    if frames.device == "gpu":
        return fn.resize(frames, size=[t.size, t.size], roi_start=box[0:2], roi_end=box[0:2] + box[2:4],
                         roi_relative=False, antialias=False)
    return fn.python_function(frames, box, function=HostResize(t.size), batch_processing=True, num_outputs=1,
                              output_layouts="FHWC")


def _train_crop(frames, t: Transform):
    size = [t.size, t.size]
    if t.train_crop == "random_resized":
        return fn.random_resized_crop(frames, size=size, antialias=False)
    if t.train_crop == "center":
        return fn.resize(frames, resize_shorter=t.eval_short_side, antialias=False)
    shape = frames.shape(dtype=types.FLOAT)
    h, w = shape[1], shape[2]
    if t.train_crop == "jitter":
        y0, x0, ch, cw = jitter_box(h, w, fn.random.uniform(range=list(JITTER)), fn.random.uniform(range=[0.0, 1.0]),
                                    fn.random.uniform(range=[0.0, 1.0]), DaliOps)
        return _resize_box(frames, t, fn.stack(y0, x0, ch, cw))
    pair_codes, pos_codes = _choice_codes()
    pair = fn.cast(fn.random.choice(pair_codes), dtype=types.FLOAT)
    sh = dmath.floor(pair / 10000.0)
    sw = pair - sh * 10000.0
    pos = fn.cast(fn.random.choice(pos_codes), dtype=types.FLOAT)
    x4 = dmath.floor(pos / 5.0)
    y4 = pos - x4 * 5.0
    y0, x0, ch, cw = multiscale_box(h, w, sh / 1000.0, sw / 1000.0, x4 / 4.0, y4 / 4.0, DaliOps)
    return _resize_box(frames, t, fn.stack(y0, x0, ch, cw))


def _keyframe_cut(video, keyframes, idx, header: int = IVF_HEADER):
    """The stream (its first `header` bytes, then the bytes from the last keyframe at or before
    the first wanted frame) and the wanted frames' indices in it: DALI's decoder starts at the
    stream's first frame (see `ivf`, `annexb`)."""
    table = fn.reshape(keyframes, shape=[-1, 2])
    first = fn.reductions.min(idx)
    k = fn.reductions.sum(fn.cast(table[:, 0] <= first, dtype=types.INT32)) - 1
    start, offset = table[k, 0], table[k, 1]
    return (fn.cat(video[0:header], video[offset:]) if header else video[offset:]), idx - start


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
    shard format 3); "none" decodes from frame 0 (a format 1 split). H.264 / HEVC elementary
    streams (Annex-B) are cut per clip, after their parameter sets.
    """
    raw = video_ext in annexb.EXTS  # H.264 / HEVC elementary streams: no timestamps to index
    if raw and cut == "frame":
        cut = "clip"
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
        video, idx = _keyframe_cut(video, tables[0], idx, annexb.HEADER if raw else IVF_HEADER)
    elif cut == "frame":
        video, idx = _frame_cuts(video, tables[0], tables[1], idx, sampling.clips(train) * sampling.frames_per_clip())
    frames = fn.decoders.video(video, device="mixed" if decode == "gpu" else "cpu", frames=idx, pad_mode="edge",
                               **({"build_index": False} if raw else {}))
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
                frames = _resize_box(frames, t, box)
            mirror = fn.reshape(flip, shape=[])
    common = dict(dtype=types.FLOAT16 if t.dtype == "float16" else types.FLOAT,
                  mean=[m * 255 for m in t.mean], std=[s * 255 for s in t.std])
    if train:
        crop = dict(crop=(t.size, t.size)) if t.train_crop == "center" else {}
        layout = "FHWC" if t.channels_last else "CFHW" if t.layout == "NCTHW" else "FCHW"
        out = fn.crop_mirror_normalize(frames, mirror=mirror, output_layout=layout, **crop, **common)
    else:
        if t.resize_ratio != 1.0:
            frames = fn.resize(frames, resize_shorter=t.eval_short_side, antialias=False)
        views = [fn.crop_mirror_normalize(frames, crop=(t.size, t.size), crop_pos_x=x, crop_pos_y=y,
                                          mirror=int(m), output_layout="FCHW", **common)
                 for x, y, m in t.views()]
        out = fn.stack(*views) if len(views) > 1 else fn.expand_dims(views[0], axes=0, new_axis_names="V")
    return out, label, pos


def reader_args(split_dir: Path, manifest, sampling: Sampling, device: str, num_shards: int, shuffle_buffer: int,
                use_mmap: bool, cut: str = "clip") -> dict:
    """`video_pipeline`'s `reader` for a split (all but `shard_id`)."""
    return dict(paths=[str(split_dir / s.tar) for s in manifest.shards],
                index_paths=[str(split_dir / s.index) for s in manifest.shards],
                video_ext=manifest.video_ext, sampling=sampling, decode=device, cut=cut, num_shards=num_shards,
                shuffle_buffer=shuffle_buffer, use_mmap=use_mmap)


def probe_pipeline(split_dir: Path, sampling: Sampling, transform: Transform, *, train: bool, decode: str,
                   batch_size: int = 2):
    """The reader pipeline a loader of `split_dir` builds when decoding on `decode` (cpu | gpu),
    not built and given no device. The codec is not checked against `decode` here."""
    split_dir = Path(split_dir)
    manifest = quick_check(split_dir)
    return video_pipeline(transform=transform, train=train, batch_size=batch_size, num_threads=1, device_id=None,
                          seed=0, reader=dict(reader_args(split_dir, manifest, sampling, decode, 1, 16, False,
                                                          keyframe_cut(manifest, sampling)), shard_id=0))


def serialized_graph(split_dir: Path, sampling: Sampling, transform: Transform, *, train: bool, decode: str,
                     batch_size: int = 2) -> bytes:
    """`probe_pipeline` serialised: the GPU graph, inspectable on a machine without a GPU
    (`loader.graph.operators`). A CPU training graph does not serialise: its crop resize is a
    Python operator (`HostResize`)."""
    return probe_pipeline(split_dir, sampling, transform, train=train, decode=decode,
                          batch_size=batch_size).serialize()


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
    if manifest.video_ext == "ivf":
        can = ("frame", "clip") if manifest.format_version >= 3 else ("clip",)
    else:  # H.264 / HEVC elementary streams are cut per clip; other containers not at all
        can = ("clip",) if manifest.video_ext in annexb.EXTS else ()
    if cut == "auto":
        # Every frame of an MJPEG stream is a keyframe: per-frame cuts decode only the sampled
        # frames, a dense clip's too (a stride of 2 decodes half the span's frames).
        want = "frame" if manifest.codec == "mjpeg" else DEFAULT_CUT[sampling.mode]
        return want if want in can else (can[-1] if can else "none")
    if cut not in can:
        raise ValueError(f"{manifest.set}/{manifest.split}: shard format {manifest.format_version} "
                         f"({manifest.video_ext}) cannot be cut per {cut}; re-shard it with this version")
    return cut
