"""How a clip is encoded: the codec table, the options recorded in every manifest, and the
encoder that turns frames into one in-memory clip (PyAV)."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from fractions import Fraction

import av
from av.video.reformatter import VideoReformatter

from synapt_fast.format import ivf

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
    # In IVF as well (packed by `ivf.write`): every frame a keyframe, so the loader's per-frame
    # cuts decode only the sampled frames. Full-range JPEG 4:2:0 is what MJPEG decoders (DALI's
    # included) expect. Shards written before kept MJPEG in Matroska (`.mkv`), still read.
    "mjpeg": ("mjpeg", "ivf", "ivf", "yuvj420p"),
}
# Encoders FFmpeg's IVF muxer takes (the others' packets go into IVF through `ivf.write`).
_IVF_MUXED = {"libvpx-vp9"}


# The GOP `synapt-fast shard --sampling MODE` picks (VP9, H.264, HEVC) for the sampling the shards are made for. With
# each sampled frame decoded from its own keyframe (shard format 3), TSN segments and uniform
# sampling decode about half a GOP per sampled frame: on 10 s camera-like VP9 clips GOP 8 took
# about half the CPU a clip of GOP 32 for segments 8 and uniform 8, for 1.35-1.5x the bytes
# (benchmarks/results/loader.md). Dense clips are one run of frames: GOP 8 saved 0-17 % there.
GOP_FOR_SAMPLING = {"segments": 8, "uniform": 8, "dense": 32}


def gop_for(sampling: str | None) -> int:
    """The GOP for shards meant for `sampling` (a sampling mode; None: the default, 32)."""
    if sampling is None:
        return 32
    if sampling not in GOP_FOR_SAMPLING:
        raise ValueError(f"sampling must be one of {sorted(GOP_FOR_SAMPLING)}, got {sampling!r}")
    return GOP_FOR_SAMPLING[sampling]


@dataclass(frozen=True)
class EncodeOptions:
    """How clips are normalised and encoded. Recorded verbatim in each split's manifest."""

    # MJPEG: every frame a keyframe, so the loader decodes only the frames it samples, in every
    # sampling mode; VP9 with a GOP takes less space (benchmarks/results/loader.md has both).
    codec: str = "mjpeg"
    fps: float = 30.0
    short_side: int = 128  # 0 keeps the source size (rounded down to even)
    max_seconds: float | None = None
    gop: int = 32  # frames between keyframes (vp9, h264, hevc; MJPEG frames are all keyframes)
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
        if self.codec == "mjpeg":
            d["gop"] = 1
        return d


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
    # MJPEG: a fixed quantiser scale (2 best - 31), pinned through qmin = qmax; "q:v" is only the
    # ffmpeg command line's name for it, which the encoder itself ignores (it then falls back to
    # 200 kb/s rate control: 24.7 dB PSNR on the loader benchmark's clips, a one-off check). 5 gives
    # 31.9 dB there, VP9's default CRF 32 32.2 dB at about a quarter of the bytes
    # (benchmarks/results/loader.md, storage tables).
    q = 5 if q is None else q
    return {"qmin": str(q), "qmax": str(q), "threads": "1"}


def target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Scale so the short side is `short_side` (0 = keep), both sides even and at least 2."""
    if short_side:
        scale = short_side / min(width, height)
        width, height = width * scale, height * scale
    even = lambda v: max(2, int(round(v)) // 2 * 2)  # noqa: E731
    return even(width), even(height)


class _Encoder:
    def __init__(self, opts: EncodeOptions, width: int, height: int):
        encoder, fmt, self.ext, pix = opts.spec()
        rate = Fraction(opts.fps).limit_denominator(1001)
        self.rate = rate
        if fmt == "ivf" and encoder not in _IVF_MUXED:
            # FFmpeg's IVF muxer refuses the codec: encode bare packets, packed by `ivf.write`.
            self.out, self.packets = None, []
            self.stream = av.CodecContext.create(encoder, "w")
            self.stream.options = _encoder_options(opts)
            self.stream.time_base = 1 / rate
        else:
            self.buf = io.BytesIO()
            # bitexact: no random segment UIDs or timestamps, so identical inputs give identical bytes.
            self.out = av.open(self.buf, mode="w", format=fmt, options={"fflags": "+bitexact"})
            self.stream = self.out.add_stream(encoder, rate=rate, options=_encoder_options(opts))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, pix
        self.codec = opts.codec
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
        self._put(self.stream.encode(frame))
        self.count += 1

    def _put(self, packets) -> None:
        for packet in packets:
            if self.out is None:
                self.packets.append(bytes(packet))
            else:
                self.out.mux(packet)

    def finish(self) -> bytes:
        self._put(self.stream.encode())
        if self.out is None:
            return ivf.write(ivf.FOURCCS[self.codec], self.width, self.height,
                             (self.rate.numerator, self.rate.denominator), self.packets)
        self.out.close()
        return self.buf.getvalue()
