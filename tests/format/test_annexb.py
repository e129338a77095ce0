"""H.264 / HEVC as Annex-B streams cut at keyframes (`annexb`, shard format 3): the cutting and
the table on real x264 / x265 output, the shard writer (H.264; HEVC stays in MP4) and verify, the
reference loader on them, and (on a GPU) DALI's mixed decoder from every keyframe."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
import torch

from synapt_fast.format import annexb
from synapt_fast.format.codecs import cuda_device_count
from synapt_fast.format.ivf import KEYFRAMES
from synapt_fast.loader import Sampling, Transform, make_loader
from synapt_fast.loader.sampling import numpy_indices
from synapt_fast.format.manifest import Manifest
from synapt_fast.synth.sampleclips import SampleSource
from synapt_fast.sharding.pipeline import ShardOptions, shard_source
from synapt_fast.format.index import file_sha256
from synapt_fast.sharding.sources import FolderSource
from synapt_fast.sharding.transcode import EncodeOptions, decode_all, encode_item
from synapt_fast.format.verify import verify_split

CODECS = ["h264", "hevc"]
RAW = dict(mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255))


SHARD_CODECS = ["h264"]  # what the shard writer stores as Annex-B


def _raw_hevc(frames, gop: int) -> bytes:
    """x265 without B-frames into the raw `hevc` muxer (not what the writer does: see transcode)."""
    import io
    from fractions import Fraction

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="hevc") as out:
        s = out.add_stream("libx265", rate=Fraction(30), options={
            "crf": "28", "preset": "veryfast", "x265-params": f"log-level=error:keyint={gop}:bframes=0:pools=1"})
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for i, a in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 30)
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return buf.getvalue()


@pytest.fixture(scope="module")
def encoded():
    """One 50-frame clip per codec, GOP 8, 160x144: H.264 as the writer encodes it, HEVC raw."""
    from types import SimpleNamespace

    from synapt_fast.synth.sampleclips import render

    item = next(iter(SampleSource(1, 1, 50, 160, 144).items()))
    data = _raw_hevc(render(0, 0, 50, 160, 144), 8)
    return {"h264": encode_item(item, EncodeOptions(codec="h264", gop=8, short_side=0)),
            "hevc": SimpleNamespace(data=data, ext="hevc", num_frames=50,
                                    keyframes=annexb.keyframe_table(data, "hevc"))}


@pytest.mark.parametrize("codec", CODECS)
def test_every_listed_keyframe_starts_a_stream_of_the_same_frames(encoded, codec):
    enc = encoded[codec]
    assert enc.ext == codec and enc.data[:4] in (b"\x00\x00\x00\x01", b"\x00\x00\x01\x09")
    table = enc.keyframes
    assert table.dtype == np.dtype("<i4") and table[0].tolist() == [0, 0]
    # A keyframe at least every GOP (x264's scene cuts may add more), strictly increasing.
    assert np.all(np.diff(table[:, 0]) > 0) and np.all(np.diff(table[:, 0]) <= 8) and np.all(np.diff(table[:, 1]) > 0)
    full = decode_all(enc.data)
    assert len(full) == enc.num_frames == annexb.num_frames(enc.data, codec) == 50
    for k, off in table.tolist()[1:]:
        part = decode_all(annexb.cut(enc.data, off))
        assert len(part) == 50 - k and np.array_equal(part, full[k:]), (codec, k)
        # The cut is itself a stream with a table: its own first keyframe, then the rest shifted.
        sub = annexb.keyframe_table(annexb.cut(enc.data, off), codec)
        assert sub.tolist() == [[i - k, o - off] for i, o in table.tolist() if i >= k]


@pytest.mark.parametrize("codec", CODECS)
def test_a_stream_that_does_not_start_at_a_keyframe_is_refused(encoded, codec):
    enc = encoded[codec]
    units = annexb.access_units(enc.data, codec)
    off = units[1][0]  # the second picture: not a keyframe
    assert not units[1][1]
    with pytest.raises(ValueError, match="does not start with a keyframe"):
        annexb.keyframe_table(enc.data[off:], codec)
    with pytest.raises(ValueError, match="no .* pictures"):
        annexb.keyframe_table(b"\x00" * 64, codec)


def test_the_writer_gives_display_order_h264_and_keeps_hevc_in_mp4(encoded):
    # DALI decodes a raw stream in decode order: no B-frames allowed.
    import av, io  # noqa: E401

    with av.open(io.BytesIO(encoded["h264"].data)) as c:
        assert c.format.name == "h264" and not c.streams.video[0].codec_context.has_b_frames
    item = next(iter(SampleSource(1, 1, 10, 160, 144).items()))
    hevc = encode_item(item, EncodeOptions(codec="hevc", gop=8, short_side=0))
    assert hevc.ext == "mp4" and hevc.keyframes is None


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("annexb")
    out = {}
    for c in SHARD_CODECS:
        out[c] = root / c / "train"
        shard_source(SampleSource(2, 2, 40, 192, 144), out[c], ShardOptions(c, "train", max_count=3),
                     EncodeOptions(codec=c, gop=8, short_side=144))
    return out


@pytest.mark.parametrize("codec", SHARD_CODECS)
def test_shards_store_the_stream_and_its_table_and_verify_checks_it(splits, codec, tmp_path):
    split = splits[codec]
    m = Manifest.load(split)
    assert m.format_version == 3 and m.video_ext == codec and m.encoding["container"] == codec
    manifest, problems = verify_split(split)
    assert not problems, problems
    with tarfile.open(split / m.shards[0].tar) as tf:
        names = tf.getnames()
        assert f"00000000.{codec}" in names and f"00000000.{KEYFRAMES}" in names
        table = np.frombuffer(tf.extractfile(f"00000000.{KEYFRAMES}").read(), "<i4").reshape(-1, 2)
        data = tf.extractfile(f"00000000.{codec}").read()
    assert np.array_equal(table, annexb.keyframe_table(data, codec)) and len(table) >= 5
    # A table that points elsewhere is caught before any loader trusts it.
    import shutil

    bad = tmp_path / "bad" / "train"
    shutil.copytree(split, bad)
    tar = bad / m.shards[0].tar
    raw = bytearray(tar.read_bytes())
    with tarfile.open(tar) as tf:
        member = tf.getmember(f"00000000.{KEYFRAMES}")
    raw[member.offset_data + 12] ^= 0x01  # the second keyframe's byte offset
    tar.write_bytes(bytes(raw))
    d = json.loads((bad / "manifest.json").read_text())  # a consistent but wrong split
    d["shards"][0]["sha256"] = file_sha256(tar)
    (bad / "manifest.json").write_text(json.dumps(d))
    _, problems = verify_split(bad)
    assert any("does not match the keyframes" in p for p in problems), problems


def test_copy_repacks_mp4_h264_without_b_frames_and_refuses_it_with_them(tmp_path, clip_folder):
    import av
    from fractions import Fraction

    from synapt_fast.synth.sampleclips import render
    from synapt_fast.sharding.sources import SourceItem
    from synapt_fast.sharding.transcode import BadClip

    # clip_folder's clips come from x264's defaults: B-frames, which a stream without timestamps
    # would decode out of display order.
    item = next(iter(FolderSource(clip_folder).items()))
    with pytest.raises(BadClip, match="B-frames .* without --copy"):
        encode_item(item, EncodeOptions(codec="h264", fps=25.0, short_side=0, copy=True))
    path = tmp_path / "nob.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(25), options={"bf": "0", "g": "8", "threads": "1"})
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for i, a in enumerate(render(1, 0, 20, 160, 120)):
            f = av.VideoFrame.from_ndarray(a, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    enc = encode_item(SourceItem("nob.mp4", 0, "c", path=path),
                      EncodeOptions(codec="h264", fps=25.0, short_side=0, copy=True))
    assert enc.meta["copied"] and enc.ext == "h264" and {0, 8, 16} <= set(enc.keyframes[:, 0].tolist()) and enc.keyframes[0, 0] == 0
    assert len(decode_all(enc.data)) == enc.num_frames == 20


@pytest.mark.parametrize("codec", SHARD_CODECS)
def test_the_reference_loader_counts_frames_of_streams_without_timestamps(splits, codec):
    split = splits[codec]
    full = {}
    m = Manifest.load(split)
    for s in m.shards:
        with tarfile.open(split / s.tar) as tf:
            for name in tf.getnames():
                if name.endswith(f".{codec}"):
                    full[int(name.split(".")[0])] = decode_all(tf.extractfile(name).read())
    sampling = Sampling("dense", 4, interval=3)
    t = Transform(size=144, resize_ratio=1.0, layout="NTCHW", eval_crops=1, **RAW)
    seen = 0
    for b in make_loader(split, sampling, t, train=False, batch_size=2, backend="reference", workers=0):
        for clip, pos in zip(b.video[:, 0].permute(0, 1, 3, 4, 2).numpy(), b.pos.tolist()):
            frames = full[pos]
            idx = numpy_indices(sampling, len(frames), train=False).reshape(-1)
            x0 = (frames.shape[2] - 144) // 2
            assert np.abs(clip - frames[idx][:, :, x0:x0 + 144]).max() < 1.0
            seen += 1
    assert seen == 4


needs_gpu = pytest.mark.skipif(cuda_device_count() < 1 or not torch.cuda.is_available(),
                               reason="needs a CUDA GPU visible to DALI and torch")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("codec", SHARD_CODECS)
@pytest.mark.parametrize("sampling", [Sampling("dense", 4, interval=2), Sampling("segments", 4),
                                      Sampling("uniform", 6)], ids=["dense", "segments", "uniform"])
def test_nvdec_decodes_annexb_clips_from_their_keyframes_to_pyavs_frames(splits, codec, sampling):
    split = splits[codec]
    full = {}
    for s in Manifest.load(split).shards:
        with tarfile.open(split / s.tar) as tf:
            for name in tf.getnames():
                if name.endswith(f".{codec}"):
                    full[int(name.split(".")[0])] = decode_all(tf.extractfile(name).read())
    t = Transform(size=144, resize_ratio=1.0, layout="NTCHW", eval_crops=1, **RAW)
    loader = make_loader(split, sampling, t, train=False, batch_size=2, decode="gpu", workers=2)
    assert loader.device == "gpu"
    seen = 0
    for b in loader:
        assert b.video.is_cuda
        for clip, pos in zip(b.video[:, 0].permute(0, 1, 3, 4, 2).float().cpu().numpy(), b.pos.tolist()):
            frames = full[pos]
            idx = numpy_indices(sampling, len(frames), train=False).reshape(-1)
            x0 = (frames.shape[2] - 144) // 2
            diff = np.abs(clip - frames[idx][:, :, x0:x0 + 144])
            assert diff.mean() < 3 and np.percentile(diff, 95) < 10, (codec, pos, diff.mean())
            for k, frame in enumerate(clip):  # the frame of that index, not a neighbour
                dist = np.abs(frames[:, :, x0:x0 + 144] - frame).mean(axis=(1, 2, 3))
                assert dist[idx[k]] <= dist.min() + 1e-3, (codec, pos, k, idx[k], int(dist.argmin()))
            seen += 1
    assert seen == 4
