"""IVF streams and their keyframe tables: a stream cut at any keyframe decodes to the same
pictures, malformed streams are named, and `verify` catches a table that disagrees."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from synapt_fast.format.ivf import (FRAMES, HEADER, KEYFRAMES, cut, frame_offsets, frame_pieces, frames, join,
                                    keyframe_table)
from synapt_fast.synth.sampleclips import render
from synapt_fast.sharding.sources import Frames, SourceItem
from synapt_fast.sharding.transcode import EncodeOptions, decode_all, encode_item
from synapt_fast.format.verify import _frames_problem, _keyframes_problem


def _clip(speed: str, gop: int = 8, n: int = 40) -> bytes:
    item = SourceItem("r", 0, "c", render=lambda: Frames(render(3, 1, n, 160, 128), 30.0))
    enc = encode_item(item, EncodeOptions(codec="vp9", gop=gop, speed=speed))
    assert enc.ext == "ivf" and enc.num_frames == n
    assert np.array_equal(enc.keyframes, keyframe_table(enc.data))
    return enc.data


# Both encoder settings: "good" looks 25 frames ahead, "fast" none.
@pytest.mark.parametrize("speed", ["fast", "good"])
def test_a_stream_cut_at_each_keyframe_decodes_to_the_same_frames(speed):
    data = _clip(speed)
    table = keyframe_table(data)
    assert table[:, 0].tolist() == [0, 8, 16, 24, 32] and table[0, 1] == HEADER
    full = decode_all(data)
    for frame, offset in table:
        part = decode_all(cut(data, int(offset)))
        assert np.array_equal(part, full[frame:]), (speed, frame)
    # A cut between keyframes is not a valid start: the table is what makes cutting safe.
    _, fr = frames(data)
    assert all(pos not in table[:, 1] for pos, _ in fr[1:8])


# Spread frames (TSN segments), consecutive runs, repeats (short clips) and a step back.
WANTED = [[3, 9, 14, 20, 27, 31, 36, 39], [2, 3, 4, 5], [0, 0, 39, 39], [20, 21, 5, 6, 30], [17]]


@pytest.mark.parametrize("speed", ["fast", "good"])
def test_joined_pieces_decode_to_the_wanted_frames_and_no_more(speed):
    data = _clip(speed)
    offsets, keys = frame_offsets(data), keyframe_table(data)[:, 0]
    assert len(offsets) == 41 and offsets[0] == HEADER and offsets[-1] == len(data)
    full = decode_all(data)
    for wanted in WANTED:
        pieces, positions = frame_pieces(keys, wanted)
        part = decode_all(join(data, offsets, pieces))
        assert len(part) == sum(b - a + 1 for a, b in pieces)
        assert np.array_equal(part[positions], full[wanted]), (speed, wanted)
    # TSN segments over 40 frames, GOP 8: 32 frames decoded, not the 40 from frame 0 to 39 (on a
    # 300-frame clip with GOP 32, 8 segments decode about 130 frames instead of about 290).
    pieces, _ = frame_pieces(keys, WANTED[0])
    assert pieces == [(0, 3), (8, 9), (10, 14), (16, 20), (24, 27), (28, 31), (32, 36), (37, 39)]
    assert frame_pieces(keys, [0, 0, 39, 39]) == ([(0, 0), (32, 39)], [0, 0, 8, 8])
    assert frame_pieces(keys, [20, 21, 5, 6, 30]) == ([(0, 30)], [20, 21, 5, 6, 30])  # steps back: one piece


def test_malformed_streams_are_named():
    data = _clip("fast")
    with pytest.raises(ValueError, match="no DKIF signature"):
        keyframe_table(b"\x1aE\xdf\xa3" + data[4:])
    with pytest.raises(ValueError, match="runs past the end"):
        keyframe_table(data[:-5])
    _, fr = frames(data)
    with pytest.raises(ValueError, match="does not start with a keyframe"):
        keyframe_table(cut(data, fr[3][0]))


def _tar(members: dict[str, bytes]) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    buf.seek(0)
    return tarfile.open(fileobj=buf)


def test_verify_catches_a_keyframe_table_that_disagrees_with_the_stream():
    data = _clip("fast")
    good = keyframe_table(data)
    bad = good.copy()
    bad[1, 1] += 12  # points into the middle of a frame
    tf = _tar({"0.ivf": data, "0.keyframes.i32": good.tobytes(), "1.ivf": data, "1.keyframes.i32": bad.tobytes(),
               "2.ivf": data[:-5], "2.keyframes.i32": good.tobytes()})
    assert _keyframes_problem(tf, "0.ivf", "0." + KEYFRAMES) is None
    assert _keyframes_problem(tf, "1.ivf", "1." + KEYFRAMES) == "1.keyframes.i32 does not match the keyframes of 1.ivf"
    assert "2.ivf: IVF frame 39" in _keyframes_problem(tf, "2.ivf", "2." + KEYFRAMES)


def test_verify_catches_a_frame_table_that_disagrees_with_the_stream():
    data = _clip("fast")
    good = frame_offsets(data)
    assert _frames_problem(_tar({"k.ivf": data, f"k.{FRAMES}": good.tobytes()}), "k.ivf", f"k.{FRAMES}") is None
    bad = good.copy()
    bad[5] += 1
    problem = _frames_problem(_tar({"k.ivf": data, f"k.{FRAMES}": bad.tobytes()}), "k.ivf", f"k.{FRAMES}")
    assert problem == f"k.{FRAMES} does not match the frames of k.ivf"
    assert "no frames.i32 member" in _frames_problem(_tar({"k.ivf": data}), "k.ivf", None)
