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
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from synapt_fast.format import annexb, ivf
from .sources import Frames, SourceItem

# codec -> (encoder, container format, member extension, pixel format)
CODECS: dict[str, tuple[str, str, str, str]] = {
    # IVF, not WebM: a raw VP9 stream the DALI loader can cut at any keyframe (see `ivf`).
    "vp9": ("libvpx-vp9", "ivf", "ivf", "yuv420p"),
    # An Annex-B elementary stream, not MP4: cut at any keyframe like IVF (see `annexb`).
    "h264": ("libx264", "h264", "h264", "yuv420p"),
    # HEVC stays in MP4: a raw stream must have no B-frames (see `annexb`), and x265 without
    # B-frames gave different bytes for the same clip in 1-19 of 40 runs on a loaded machine
    # (its thread pool off or on), breaking the same-inputs-same-bytes guarantee.
    "hevc": ("libx265", "mp4", "mp4", "yuv420p"),
    # Full-range JPEG 4:2:0 is what MJPEG decoders (DALI's included) expect.
    "mjpeg": ("mjpeg", "matroska", "mkv", "yuvj420p"),
}
# PyAV's decoder names -> our codec names, for recognising conforming inputs (--copy).
_DECODER_NAMES = {"vp9": "vp9", "libvpx-vp9": "vp9", "h264": "h264", "hevc": "hevc", "mjpeg": "mjpeg"}


# The GOP `synapt-fast shard --sampling MODE` picks for the sampling the shards are made for. With
# each sampled frame decoded from its own keyframe (shard format 3), TSN segments and uniform
# sampling decode about half a GOP per sampled frame: on 10 s camera-like clips GOP 8 took 2.7x
# less CPU a clip than GOP 32 for segments 8 and 1.5x less for uniform 8, for 1.3-1.7x the bytes
# (benchmarks/README.md, note 17). Dense clips are one run of frames: GOP 8 saved 0-17 % there.
GOP_FOR_SAMPLING = {"segments": 8, "uniform": 8, "dense": 32}


def gop_for(sampling: str | None) -> int:
    """The GOP for shards meant for `sampling` (a sampling mode; None: the default, 32)."""
    if sampling is None:
        return 32
    if sampling not in GOP_FOR_SAMPLING:
        raise ValueError(f"sampling must be one of {sorted(GOP_FOR_SAMPLING)}, got {sampling!r}")
    return GOP_FOR_SAMPLING[sampling]


class BadClip(Exception):
    """The clip cannot be used; the message is the reason recorded in the manifest."""


@dataclass(frozen=True)
class EncodeOptions:
    """How clips are normalised and encoded. Recorded verbatim in each split's manifest."""

    codec: str = "vp9"
    fps: float = 30.0
    short_side: int = 128  # 0 keeps the source size (rounded down to even)
    max_seconds: float | None = None
    gop: int = 32  # frames between keyframes
    quality: int | None = None  # CRF for vp9/h264/hevc, qscale for mjpeg; None = codec default below
    speed: str = "fast"  # fast | good: encoder effort
    copy: bool = False  # pack already-conforming inputs without re-encoding
    sampling: str | None = None  # the sampling mode the shards are meant for (chose the GOP; recorded)
    # h264 / hevc: keep the MP4 container (the loader then decodes each clip from frame 0): for
    # tools and peer loaders that read MP4, as users' own downloads are
    mp4: bool = False
    frame_rate: float = 30.0  # the rate of frame-folder inputs, which declare none (the paper's 30 fps)

    def __post_init__(self):
        if self.codec not in CODECS:
            raise ValueError(f"codec must be one of {sorted(CODECS)}, got {self.codec!r}")
        if self.speed not in ("fast", "good"):
            raise ValueError(f"speed must be 'fast' or 'good', got {self.speed!r}")
        if self.sampling is not None:
            gop_for(self.sampling)  # names the mode if unknown
        if self.fps <= 0 or self.gop < 1 or self.short_side < 0 or self.frame_rate <= 0:
            raise ValueError("fps, frame_rate and gop must be positive and short_side >= 0")
        if self.mp4 and self.codec not in ("h264", "hevc"):
            raise ValueError(f"mp4 applies to h264 and hevc only, not {self.codec!r}")

    def spec(self) -> tuple[str, str, str, str]:
        """(encoder, container format, member extension, pixel format) these options write."""
        encoder, fmt, ext, pix = CODECS[self.codec]
        return (encoder, "mp4", "mp4", pix) if self.mp4 else (encoder, fmt, ext, pix)

    def to_dict(self) -> dict:
        d = asdict(self)
        encoder, fmt, ext, pix = self.spec()
        d.update(encoder=encoder, container=fmt, ext=ext, pix_fmt=pix)
        return d


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


def _encoder_options(opts: EncodeOptions) -> dict[str, str]:
    # One encoder thread per clip: parallelism comes from worker processes, and single-threaded
    # encoders are bit-for-bit deterministic.
    q = opts.quality
    if opts.codec == "vp9":
        fast = opts.speed == "fast"
        return {"crf": str(32 if q is None else q), "b": "0", "g": str(opts.gop), "threads": "1",
                "deadline": "realtime" if fast else "good", "cpu-used": "8" if fast else "2",
                "row-mt": "0", "lag-in-frames": "0" if fast else "25"}
    if opts.codec in ("h264", "hevc"):
        preset = "veryfast" if opts.speed == "fast" else "medium"
        o = {"crf": str((23 if opts.codec == "h264" else 28) if q is None else q), "g": str(opts.gop),
             "preset": preset, "threads": "1"}
        if opts.codec == "hevc":
            o["x265-params"] = f"log-level=error:keyint={opts.gop}:pools=1:frame-threads=1"
        else:
            o["bf"] = "0"  # no B-frames: decode order equals display order, cheaper seeking
        return o
    return {"q:v": str(3 if q is None else q), "threads": "1"}


def target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Scale so the short side is `short_side` (0 = keep), both sides even and at least 2."""
    if short_side:
        scale = short_side / min(width, height)
        width, height = width * scale, height * scale
    even = lambda v: max(2, int(round(v)) // 2 * 2)  # noqa: E731
    return even(width), even(height)


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


class _Encoder:
    def __init__(self, opts: EncodeOptions, width: int, height: int):
        encoder, fmt, self.ext, pix = opts.spec()
        self.buf = io.BytesIO()
        # bitexact: no random segment UIDs or timestamps, so identical inputs give identical bytes.
        self.out = av.open(self.buf, mode="w", format=fmt, options={"fflags": "+bitexact"})
        rate = Fraction(opts.fps).limit_denominator(1001)
        self.stream = self.out.add_stream(encoder, rate=rate, options=_encoder_options(opts))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, pix
        self.time_base = 1 / rate
        self.color_range = 2 if pix.startswith("yuvj") else 1  # JPEG (full) or MPEG (limited)
        self.pix, self.width, self.height, self.count = pix, width, height, 0
        # One reformatter per clip: it keeps its swscale context, which costs many times a frame's
        # conversion to set up (a bare frame.reformat() builds a new one every call;
        # benchmarks/README.md, performance note 1).
        self._reformatter = VideoReformatter()
        self._last_in = self._last_out = None

    def add(self, frame: av.VideoFrame) -> None:
        # Colour range must be explicit: swscale otherwise copies a full-range (JPEG) tag onto
        # limited-range output and every decoder downstream shifts the levels.
        src_range = frame.color_range or (2 if frame.format.name.startswith("yuvj") else 1)
        if frame.format.name.startswith(("rgb", "bgr", "gbr")):
            src_range = 2
        if frame is not self._last_in:  # resampling repeats frames; convert each only once
            out = self._reformatter.reformat(frame, width=self.width, height=self.height, format=self.pix,
                                             interpolation="AREA", src_color_range=src_range,
                                             dst_color_range=self.color_range)
            out.color_range = self.color_range
            self._last_in, self._last_out = frame, out
        frame = self._last_out
        frame.pts, frame.time_base = self.count, self.time_base  # constant rate: pts = frame number
        for packet in self.stream.encode(frame):
            self.out.mux(packet)
        self.count += 1

    def finish(self) -> bytes:
        for packet in self.stream.encode():
            self.out.mux(packet)
        self.out.close()
        return self.buf.getvalue()


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
