"""Transcoding one clip: constant-rate resampling, sizing, codecs, determinism, fidelity."""

from __future__ import annotations

import av
import numpy as np
import pytest

from synapt_fast.format import ivf
from synapt_fast.synth.sampleclips import render, write_clip
from synapt_fast.sharding.sources import Frames, SourceItem
from synapt_fast.sharding.transcode import BadClip, EncodeOptions, decode_all, encode_item, remux, resample, target_size


def test_resample_25_to_30_fps_picks_nearest_frames():
    timed = [(i / 25, i) for i in range(25)]
    out = list(resample(iter(timed), 30.0, 1 / 25, None))
    assert len(out) == 30
    # Output frame k at k/30 s maps to the input frame nearest that time (ties: the later one).
    nearest = [min(range(25), key=lambda j: (round(abs(j / 25 - k / 30), 9), -j)) for k in range(30)]
    assert out == nearest


def test_resample_60_to_30_takes_every_other_frame_and_caps_duration():
    timed = [(i / 60, i) for i in range(120)]
    assert list(resample(iter(timed), 30.0, 1 / 60, None)) == list(range(0, 120, 2))
    assert len(list(resample(iter(timed), 30.0, 1 / 60, 1.0))) == 30


def test_resample_millisecond_timestamps_keep_the_frame_count():
    # WebM stores milliseconds: 30 fps becomes 0, .033, .067, ...
    timed = [(round(i / 30, 3), i) for i in range(60)]
    assert list(resample(iter(timed), 30.0, 1 / 30, None)) == list(range(60))


@pytest.mark.parametrize("w,h,short,expected", [(320, 240, 128, (170, 128)), (240, 320, 128, (128, 170)),
                                                 (171, 99, 0, (170, 98)), (1920, 1080, 256, (454, 256))])
def test_target_size_is_even_with_the_requested_short_side(w, h, short, expected):
    assert target_size(w, h, short) == expected


@pytest.mark.parametrize("codec,ext", [("vp9", "ivf"), ("h264", "h264"), ("hevc", "mp4"), ("mjpeg", "ivf")])
def test_each_codec_encodes_deterministically(tmp_path, codec, ext):
    src = write_clip(tmp_path / "in.mp4", render(2, 0, 20, 160, 120), fps=25.0)
    item = SourceItem("in.mp4", 0, "c", path=src)
    a = encode_item(item, EncodeOptions(codec=codec, short_side=64))
    b = encode_item(item, EncodeOptions(codec=codec, short_side=64))
    assert a.data == b.data and a.ext == ext
    frames = decode_all(a.data)
    assert frames.shape == (24, 64, 84, 3) == (a.num_frames, a.height, a.width, 3)


def test_transcoded_content_stays_close_to_the_source(tmp_path):
    source = render(5, 1, 30, 160, 120)
    path = write_clip(tmp_path / "in.avi", source, fps=30.0)  # MJPEG q3: nearly lossless input
    enc = encode_item(SourceItem("in", 0, "c", path=path), EncodeOptions(short_side=0))
    out = decode_all(enc.data).astype(np.float32)
    assert out.shape == source.shape
    mae = np.abs(out - source).mean()
    assert mae < 5.0, mae
    # And it is not just "close to anything": a different clip is far away.
    assert np.abs(out - render(3, 1, 30, 160, 120)).mean() > 4 * mae


def test_rendered_frames_encode_without_files():
    arr = render(1, 0, 16, 96, 64)
    enc = encode_item(SourceItem("r", 1, "c", render=lambda: Frames(arr, 30.0)), EncodeOptions(short_side=64))
    assert enc.num_frames == 16 and (enc.width, enc.height) == (96, 64)


def test_copy_packs_a_conforming_clip_byte_for_byte(tmp_path):
    conforming = encode_item(SourceItem("r", 0, "c", render=lambda: Frames(render(0, 0, 30, 170, 128), 30.0)),
                             EncodeOptions(codec="vp9", gop=8))
    path = tmp_path / "ok.ivf"
    path.write_bytes(conforming.data)
    copied = encode_item(SourceItem("ok.ivf", 0, "c", path=path), EncodeOptions(codec="vp9", copy=True))
    assert copied.data == conforming.data and copied.meta["copied"] and copied.num_frames == 30
    # The same stream in another container (VP9 in WebM): its packets are repacked into IVF, not
    # re-encoded, and get their keyframe table.
    webm = tmp_path / "ok.webm"
    webm.write_bytes(remux(conforming.data, "webm"))
    repacked = encode_item(SourceItem("ok.webm", 0, "c", path=webm), EncodeOptions(codec="vp9", copy=True))
    assert repacked.meta["copied"] and repacked.ext == "ivf" and repacked.data[:4] == b"DKIF"
    assert np.array_equal(decode_all(repacked.data), decode_all(conforming.data))
    assert repacked.keyframes[:, 0].tolist() == conforming.keyframes[:, 0].tolist() == [0, 8, 16, 24]
    # A clip at another size is re-encoded even with copy=True.
    other = write_clip(tmp_path / "big.webm", render(0, 0, 30, 320, 240))
    redone = encode_item(SourceItem("big.webm", 0, "c", path=other), EncodeOptions(codec="vp9", copy=True))
    assert not redone.meta["copied"] and redone.height == 128


def test_mjpeg_goes_into_ivf_every_frame_a_keyframe_and_conforming_mjpeg_is_repacked(tmp_path):
    """FFmpeg's IVF muxer refuses MJPEG: the clip's own packets are packed into IVF (fourcc MJPG),
    which PyAV and DALI read back; every frame is a keyframe, the tables say so."""
    enc = encode_item(SourceItem("r", 0, "c", render=lambda: Frames(render(0, 0, 20, 170, 128), 30.0)),
                      EncodeOptions(codec="mjpeg"))
    assert enc.ext == "ivf" and enc.data[:4] == b"DKIF" and enc.data[8:12] == b"MJPG"
    assert enc.keyframes[:, 0].tolist() == list(range(20)) and len(enc.frame_offsets) == 21
    frames = decode_all(enc.data)
    assert frames.shape == (20, 128, 170, 3) and np.abs(frames.astype(np.float32) - render(0, 0, 20, 170, 128)).mean() < 5
    # Conforming MJPEG in AVI (the size, rate and pixel format of the shards): packets unchanged.
    avi = tmp_path / "ok.avi"
    with av.open(str(avi), "w") as out:
        stream = out.add_stream("mjpeg", rate=30)
        stream.width, stream.height, stream.pix_fmt = 170, 128, "yuvj420p"
        for i, a in enumerate(render(1, 0, 12, 170, 128)):
            f = av.VideoFrame.from_ndarray(a, format="rgb24").reformat(format="yuvj420p")
            f.pts = i
            for p in stream.encode(f):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)
    with av.open(str(avi)) as c:
        packets = [bytes(p) for p in c.demux(video=0) if p.size]
    copied = encode_item(SourceItem("ok.avi", 0, "c", path=avi), EncodeOptions(codec="mjpeg", copy=True))
    assert copied.meta["copied"] and copied.ext == "ivf" and copied.num_frames == 12
    _, where = ivf.frames(copied.data)
    assert [copied.data[pos + ivf.FRAME_HEADER:pos + ivf.FRAME_HEADER + size] for pos, size in where] == packets
    assert np.array_equal(decode_all(copied.data), decode_all(avi.read_bytes()))


def test_max_seconds_caps_the_clip(tmp_path):
    path = write_clip(tmp_path / "long.mp4", render(0, 0, 90, 160, 120), fps=30.0)
    enc = encode_item(SourceItem("long", 0, "c", path=path), EncodeOptions(max_seconds=1.0))
    assert enc.num_frames == 30


def test_bad_clip_reasons(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(BadClip, match="empty file"):
        encode_item(SourceItem("e", 0, "c", path=empty), EncodeOptions())
