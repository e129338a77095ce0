"""Decode, check and re-encode one clip with PyAV, entirely in memory.

Decoding the whole clip is also the validity check: a clip that fails here is skipped with a
reason, so DALI (for which a bad clip is a fatal pipeline error) never meets it. Output is
constant frame rate, yuv420p 8-bit, short side resized to an even size.
"""

from __future__ import annotations

import io
import math
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from synapt_fast.format import annexb, ivf
from .encoder import EncodeOptions, _Encoder, target_size
from .sources import Frames, SourceItem

# PyAV's decoder names -> our codec names, for recognising conforming inputs (--copy).
_DECODER_NAMES = {"vp9": "vp9", "libvpx-vp9": "vp9", "h264": "h264", "hevc": "hevc", "mjpeg": "mjpeg"}


class BadClip(Exception):
    """The clip cannot be used; the message is the reason recorded in the manifest."""


@dataclass(frozen=True)
class Encoded:
    data: bytes
    ext: str
    num_frames: int
    width: int
    height: int
    meta: dict
    keyframes: np.ndarray | None = None  # IVF and Annex-B: (frame index, byte offset) of each keyframe
    frame_offsets: np.ndarray | None = None  # IVF only: byte offset of each frame, then the length


def _encoded(data: bytes, ext: str, num_frames: int, width: int, height: int, meta: dict) -> Encoded:
    keyframes = offsets = None
    if ext == "ivf":
        try:
            keyframes, offsets = ivf.keyframe_table(data), ivf.frame_offsets(data)
        except ValueError as e:
            raise BadClip(f"unusable IVF stream: {e}") from None
        if len(offsets) - 1 != num_frames:  # the loader's frame indices count IVF frames
            raise BadClip(f"IVF stream holds {len(offsets) - 1} frames, {num_frames} decoded")
    elif ext in annexb.EXTS:
        try:
            keyframes, stored = annexb.keyframe_table(data, ext), annexb.num_frames(data, ext)
        except ValueError as e:
            raise BadClip(f"unusable {ext} stream: {e}") from None
        if stored != num_frames:  # the GPU decoder counts pictures of the stream
            raise BadClip(f"{ext} stream holds {stored} pictures, {num_frames} decoded")
        if meta.get("copied") and _reorders(data):
            raise BadClip(f"{ext} stream with B-frames (pictures out of display order): a stream without "
                          "timestamps would decode in the wrong order; shard without --copy to re-encode it")
    return Encoded(data, ext, num_frames, width, height, meta, keyframes, offsets)


def _reorders(data: bytes) -> bool:
    """Whether an encoded stream has pictures out of display order (B-frames)."""
    with av.open(io.BytesIO(data)) as c:
        return bool(c.streams.video[0].codec_context.has_b_frames)


def _frame_times(container: av.container.InputContainer, stream) -> Iterator[tuple[float, av.VideoFrame]]:
    """Decoded frames with their presentation time in seconds (from stream start)."""
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    start = None
    n = 0
    try:
        for frame in container.decode(stream):
            t = frame.time
            if t is None:
                t = n / rate
            if start is None:
                start = t
            yield t - start, frame
            n += 1
    except av.FFmpegError as e:
        raise BadClip(f"corrupt stream after {n} frames: {e}") from None


def resample(timed: Iterator[tuple[float, object]], fps: float, end_gap: float,
             max_seconds: float | None) -> Iterator[object]:
    """Constant-rate resampling: output frame i (time i/fps) is the input frame nearest that time.

    `timed` yields (time, frame) in presentation order; the last input frame lasts `end_gap`.
    Streaming: one input frame of look-ahead, no buffering of the clip.
    """
    out_i = 0
    limit = math.inf if max_seconds is None else max_seconds
    prev_t, prev = None, None
    for t, frame in timed:
        if prev is not None:
            if t <= prev_t:  # out-of-order or duplicate timestamps: keep the earlier frame
                continue
            mid = (prev_t + t) / 2
            while out_i / fps < mid - 1e-9 and out_i / fps < limit - 1e-9:
                yield prev
                out_i += 1
            if out_i / fps >= limit - 1e-9:
                return
        prev_t, prev = t, frame
    if prev is None:
        return
    # The clip lasts until the last frame's end; rounding to whole output frames absorbs
    # millisecond timestamps (WebM) that put that end a hair past an output frame time.
    last = round(min(prev_t + end_gap, limit) * fps)
    while out_i < last:
        yield prev
        out_i += 1


def _declared_seconds(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1e6
    return None


def _open(path: Path):
    try:
        st = path.stat()
    except OSError as e:
        raise BadClip(f"cannot read file: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block the reader forever
        raise BadClip("not a regular file")
    if st.st_size == 0:
        raise BadClip("empty file")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        raise BadClip(f"cannot read file: {e.strerror}") from None
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        # strerror, not str(e): the latter repeats the (machine-specific) path.
        raise BadClip(f"not a readable video container: {e.strerror or e}") from None


def _conforming(stream, opts: EncodeOptions) -> bool:
    """True when the input stream already has the target codec, pixel format, rate and size (for
    --copy); the container may still differ (see `remux`)."""
    ctx = stream.codec_context
    codec = _DECODER_NAMES.get(ctx.name)
    encoder, fmt, ext, pix = opts.spec()
    rate = float(stream.average_rate or stream.guessed_rate or 0)  # IVF declares no average rate
    w, h = ctx.width, ctx.height
    return (
        codec == opts.codec
        and ctx.pix_fmt == pix
        and abs(rate - opts.fps) < 1e-3
        and (w, h) == target_size(w, h, opts.short_side)
        and opts.max_seconds is None
    )


def remux(data: bytes, fmt: str) -> bytes:
    """The first video stream of an encoded clip in another container, packets unchanged."""
    if fmt == "ivf":
        with av.open(io.BytesIO(data)) as src:
            s = src.streams.video[0]
            name = _DECODER_NAMES.get(s.codec_context.name)
            if name == "mjpeg":  # not FFmpeg's IVF muxer's: packed here
                rate = Fraction(s.average_rate or s.guessed_rate or 30).limit_denominator(1001)
                packets = [bytes(p) for p in src.demux(video=0) if p.size]
                return ivf.write(ivf.FOURCCS[name], s.codec_context.width, s.codec_context.height,
                                 (rate.numerator, rate.denominator), packets)
    buf = io.BytesIO()
    with av.open(io.BytesIO(data)) as src, av.open(buf, "w", format=fmt, options={"fflags": "+bitexact"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.dts is not None:  # the demuxer's empty flush packet
                packet.stream = stream
                dst.mux(packet)
    return buf.getvalue()


def encode_item(item: SourceItem, opts: EncodeOptions) -> Encoded:
    """Turn one source item into an encoded clip, or raise BadClip with the reason."""
    if item.render is not None:
        return _encode_frames(item.render(), opts)
    if Path(item.path).is_dir():
        from .frame_clip import encode_frame_folder  # it builds on this module's encoder

        return encode_frame_folder(Path(item.path), opts)
    return _encode_file(Path(item.path), opts)


def _upright(frames: Iterator[tuple[float, av.VideoFrame]]) -> Iterator[tuple[float, av.VideoFrame]]:
    """Frames turned as their display matrix says (a phone clip stored sideways comes out upright).
    `rotation` is counter-clockwise degrees, as np.rot90 turns."""
    for t, frame in frames:
        k = round((frame.rotation or 0) / 90) % 4
        if k:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), k)),
                                               format="rgb24")
        yield t, frame


def _encode_file(path: Path, opts: EncodeOptions) -> Encoded:
    container = _open(path)
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise BadClip(f"no video stream (streams: {', '.join(kinds)})")
        stream = container.streams.video[0]
        if stream.codec_context is None or not stream.codec_context.codec.name:
            raise BadClip("no decoder for this video codec")
        stream.thread_count = 1  # one clip per core: worker processes give the parallelism
        src_w, src_h = stream.codec_context.width, stream.codec_context.height
        src_rate = float(stream.average_rate or stream.guessed_rate or 0) or None
        declared = _declared_seconds(container, stream)
        meta = {"source_codec": stream.codec_context.name, "source_fps": src_rate,
                "source_size": [src_w, src_h], "source_seconds": declared}
        copy = opts.copy and _conforming(stream, opts)
        fmt = opts.spec()[1]
        if copy and _rotation(path):
            copy = False  # IVF and MP4 as packed carry no display matrix: turn it upright instead
        # Bytes as they are only from the target container holding nothing but the video.
        as_is = fmt in container.format.name.split(",") and len(container.streams) == 1
        frames = _upright(_frame_times(container, stream))
        end_gap = 1.0 / (src_rate or opts.fps)
        if copy:
            count, last = 0, 0.0
            for t, _ in frames:
                count, last = count + 1, t
            _check_complete(count, last + end_gap, declared)
            # Another container (VP9 from WebM into IVF), or other streams beside the video: the
            # video's packets, repacked.
            try:
                data = path.read_bytes() if as_is else remux(path.read_bytes(), fmt)
            except av.FFmpegError as e:
                raise BadClip(f"cannot repack: {e}") from None
            return _encoded(data, opts.spec()[2], count, src_w, src_h, dict(meta, copied=True))
        width, height = target_size(src_w or 2, src_h or 2, opts.short_side)
        enc = _Encoder(opts, width, height)
        last = [0.0]

        def timed():
            for t, f in frames:
                last[0] = t
                yield t, f

        try:
            for frame in resample(timed(), opts.fps, end_gap, opts.max_seconds):
                if enc.count == 0 and (frame.width, frame.height) != (src_w, src_h):
                    # the container reported a stale size, or the clip is turned upright
                    width, height = target_size(frame.width, frame.height, opts.short_side)
                    enc = _Encoder(opts, width, height)
                enc.add(frame)
            data = enc.finish()
        except av.FFmpegError as e:
            raise BadClip(f"cannot encode: {e}") from None
        if enc.count == 0:
            raise BadClip("no decodable video frames")
        if opts.max_seconds is None:
            _check_complete(enc.count, last[0] + end_gap, declared)
        return _encoded(data, enc.ext, enc.count, width, height, dict(meta, copied=False))


def _rotation(path: Path) -> int:
    """The first frame's display rotation in degrees (0 when none or undecodable)."""
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            for frame in c.decode(video=0):
                return frame.rotation or 0
    except av.FFmpegError:
        pass
    return 0


def _check_complete(count: int, decoded_seconds: float, declared: float | None) -> None:
    if count == 0:
        raise BadClip("no decodable video frames")
    # A clip cut mid-stream still decodes its first part without any error; the container's
    # declared duration is what gives it away.
    if declared and decoded_seconds < 0.9 * declared - 0.25:
        raise BadClip(f"truncated: decoded {decoded_seconds:.2f}s of {declared:.2f}s declared")


def _encode_frames(frames: Frames, opts: EncodeOptions) -> Encoded:
    arr = np.ascontiguousarray(frames.array)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or len(arr) == 0:
        raise BadClip(f"rendered frames must be uint8 (T,H,W,3) with T > 0, got {arr.dtype} {arr.shape}")
    t, h, w, _ = arr.shape
    width, height = target_size(w, h, opts.short_side)
    enc = _Encoder(opts, width, height)
    timed = ((i / frames.fps, i) for i in range(t))
    for i in resample(timed, opts.fps, 1.0 / frames.fps, opts.max_seconds):
        enc.add(av.VideoFrame.from_ndarray(arr[i], format="rgb24"))
    data = enc.finish()
    meta = {"source_codec": "rendered", "source_fps": frames.fps, "source_size": [w, h],
            "source_seconds": t / frames.fps, "copied": False}
    return _encoded(data, enc.ext, enc.count, width, height, meta)


def decode_all(data: bytes) -> np.ndarray:
    """Every frame of an encoded clip as uint8 RGB (T, H, W, 3) — for tests, verify and inspect."""
    with av.open(io.BytesIO(data)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
