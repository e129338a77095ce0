"""H.264 / HEVC as Annex-B elementary streams, and where each clip's keyframes start.

In MP4 the GPU path decoded every H.264 / HEVC clip from frame 0, like IVF-less VP9 (see `ivf`).
An Annex-B stream (NAL units after 00 00 01 start codes, what the raw `h264` / `hevc` muxers
write) can be cut like IVF: when the encoder repeats its parameter sets before every keyframe
(x264 and x265 do when the container has no global header), the bytes from any keyframe's access
unit on, with the parameter sets before it, are again a complete stream that decodes to the frames
from that index on. DALI's mixed decoder reads raw H.264 / HEVC (it names both formats in its
bitstream-filter choice) and decodes a stream without timestamps in decode order, which is
display order only without B-frames: the writer encodes H.264 with `bf=0` (and refuses
`--copy` of a stream with B-frames). Keyframes are IDR pictures and, in HEVC, CRA pictures when
the stream has no leading (RASL / RADL) pictures at all: a CRA then starts a clean stream like
an IDR. Raw streams carry no timestamps, so the decoder must not build a timestamp index
(`build_index=False`).

The shard writer uses this form for H.264 only. HEVC shards stay in MP4 (`encoder.CODECS`):
x265 without B-frames was not deterministic between runs; the parsing here handles HEVC streams
(tested on x265 output) for when it is.

The keyframe table has the same form as IVF's (`ivf.KEYFRAMES`: int32 (frame index, byte
offset) pairs, first (0, 0)); offsets point at the first NAL unit of the access unit (its access
unit delimiter or parameter sets).
"""

from __future__ import annotations

import numpy as np

EXTS = ("h264", "hevc")  # member extensions of Annex-B clips (the codec's name)
HEADER = 0  # bytes kept before the cut (IVF keeps its 32-byte file header; a raw stream has none)

# NAL unit types. H.264: 1-5 slices (5 = IDR), 6 SEI, 7 SPS, 8 PPS, 9 access unit delimiter.
# HEVC: 0-31 slices (6-9 leading pictures, 19, 20 = IDR, 21 = CRA), 32 VPS, 33 SPS, 34 PPS, 35 AUD, 39 prefix SEI.
_H264_PARAMS, _HEVC_PARAMS = {7, 8}, {32, 33, 34}
_H264_PREFIX, _HEVC_PREFIX = {6, 7, 8, 9, 14, 15}, {32, 33, 34, 35, 39, 41, 42, 43, 44}


def nal_units(data: bytes) -> list[tuple[int, int]]:
    """(offset of the start code, offset of the NAL header) of every NAL unit."""
    out, i = [], 0
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0:
            return out
        start = j - 1 if j > 0 and data[j - 1] == 0 else j  # a 4-byte start code 00 00 00 01
        out.append((start, j + 3))
        i = j + 3


def _nal_type(codec: str, b: int) -> int:
    return b & 0x1F if codec == "h264" else (b >> 1) & 0x3F


def access_units(data: bytes, codec: str) -> list[tuple[int, bool, bool]]:
    """(byte offset, is a keyframe, carries its parameter sets) of every access unit (picture).

    Keyframes: H.264 IDR pictures; HEVC IDR pictures, and CRA pictures when the stream holds no
    leading pictures (NAL types 6-9) anywhere.

    A picture starts at its first NAL unit that may precede a slice (delimiter, parameter sets,
    SEI) or at a slice that begins a new picture (first_mb_in_slice = 0 in H.264,
    first_slice_segment_in_pic_flag in HEVC: the slice header's first bit, after the NAL
    header's 1 or 2 bytes)."""
    if codec not in EXTS:
        raise ValueError(f"Annex-B streams of {codec!r}: only h264 and hevc are handled")
    prefix = _H264_PREFIX if codec == "h264" else _HEVC_PREFIX
    params = _H264_PARAMS if codec == "h264" else _HEVC_PARAMS
    header = 1 if codec == "h264" else 2
    units, pending, seen = [], None, set()  # pending: offset where the next picture's prefix began
    nals = nal_units(data)
    leading = codec == "hevc" and any(h < len(data) and 6 <= _nal_type(codec, data[h]) <= 9 for _, h in nals)
    keys = {5} if codec == "h264" else ({19, 20} if leading else {19, 20, 21})
    for start, h in nals:
        if h >= len(data):
            break
        t = _nal_type(codec, data[h])
        slice_ = t <= 5 if codec == "h264" else t <= 31
        if not slice_:
            if t in prefix:
                if pending is None:
                    pending, seen = start, set()
                seen.add(t)
            continue
        first = h + header < len(data) and data[h + header] & 0x80
        if not first:
            continue  # another slice of the current picture
        units.append((start if pending is None else pending, t in keys, params <= (seen if pending is not None else set())))
        pending = None
    return units


def keyframe_table(data: bytes, codec: str) -> np.ndarray:
    """(frame index, byte offset) of every keyframe the stream can be cut at (it carries its
    parameter sets), int32 (K, 2); frame 0 must be one, at offset 0."""
    units = access_units(data, codec)
    if not units:
        raise ValueError(f"no {codec} pictures in the stream (not Annex-B?)")
    table = [(i, off) for i, (off, idr, params) in enumerate(units) if idr and params]
    if not table or table[0] != (0, 0):
        raise ValueError(f"{codec} stream does not start with a keyframe and its parameter sets")
    return np.asarray(table, dtype="<i4")


def num_frames(data: bytes, codec: str) -> int:
    return len(access_units(data, codec))


def cut(data: bytes, offset: int) -> bytes:
    """The stream from the access unit at byte `offset` (a keyframe's) on: what the loader decodes."""
    return data[offset:]
