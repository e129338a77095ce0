"""IVF, the raw VP8 / VP9 container (also MJPEG's here), and where each clip's keyframes start.

DALI 2.4's CPU decoder does not seek: it decodes from frame 0 up to the last frame requested,
whatever the GOP (benchmarks/README.md, performance note 2), so a dense clip late in a video paid
for every frame before it. An IVF stream is a 32-byte file header followed by frames, each a
12-byte frame header (size, timestamp) and its bytes; the file header plus the frames from any
keyframe on is again a valid stream, and it decodes to the same pictures. The shard writer stores
where each keyframe starts (`KEYFRAMES`), and the DALI loader cuts every clip at the last
keyframe at or before its first sampled frame, inside the graph (`loader.dali_loader`).

Frames sampled far apart (TSN segments, uniform sampling) want more than one cut: the stream
from a keyframe up to the end of one wanted frame, then from the next wanted frame's keyframe on,
and so on, is again a valid stream (a VP8 / VP9 keyframe resets every reference), and it decodes
to the wanted frames at known positions. For that the writer also stores where every frame
starts (`FRAMES`, shard format 3), so that a piece can end right after its wanted frame.

MJPEG clips travel in IVF too (fourcc `MJPG`, which FFmpeg's IVF demuxer, and so DALI's
decoders, map to MJPEG): every frame is a keyframe, so the per-frame cuts leave the decoder
exactly the sampled frames. FFmpeg's IVF muxer takes only VP8, VP9 and AV1; `write` packs them.
"""

from __future__ import annotations

import struct

import numpy as np

HEADER = 32  # file header bytes: b"DKIF", version, header size, fourcc, size, rate, frame count
FRAME_HEADER = 12  # per frame: little-endian uint32 size, uint64 timestamp
KEYFRAMES = "keyframes.i32"  # member: int32 (frame index, byte offset) pairs, one per keyframe
FRAMES = "frames.i32"  # member (format 3): int32 byte offset of every frame's header, then the stream length


def frames(data: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """(fourcc, [(offset of each frame's header, payload size)]); ValueError if malformed."""
    if len(data) < HEADER or data[:4] != b"DKIF":
        raise ValueError("not an IVF stream (no DKIF signature)")
    header_size = struct.unpack_from("<H", data, 6)[0]
    if header_size != HEADER:
        raise ValueError(f"IVF header of {header_size} bytes, expected {HEADER}")
    fourcc = data[8:12]
    out, pos = [], HEADER
    while pos < len(data):
        if pos + FRAME_HEADER > len(data):
            raise ValueError(f"IVF frame {len(out)} header cut off at byte {pos}")
        size = struct.unpack_from("<I", data, pos)[0]
        if size == 0 or pos + FRAME_HEADER + size > len(data):
            raise ValueError(f"IVF frame {len(out)} at byte {pos}: size {size} runs past the end")
        out.append((pos, size))
        pos += FRAME_HEADER + size
    return fourcc, out


FOURCCS = {"vp8": b"VP80", "vp9": b"VP90", "mjpeg": b"MJPG"}


def write(fourcc: bytes, width: int, height: int, rate: tuple[int, int], packets: list[bytes]) -> bytes:
    """An IVF stream of `packets`, one frame each, frame i at timestamp i in time base
    rate[1] / rate[0] (`rate`: frames per second as numerator, denominator)."""
    if any(not p for p in packets):
        raise ValueError("IVF frames cannot be empty")
    out = [struct.pack("<4sHH4sHHIII4x", b"DKIF", 0, HEADER, fourcc, width, height, rate[0], rate[1], len(packets))]
    for i, p in enumerate(packets):
        out += [struct.pack("<IQ", len(p), i), p]
    return b"".join(out)


def is_keyframe(fourcc: bytes, payload: bytes) -> bool:
    """Whether a frame is a keyframe: from the first byte of a VP8 / VP9 frame's uncompressed
    header; every MJPEG frame is one."""
    if fourcc == b"MJPG":
        return True
    b = payload[0]
    if fourcc == b"VP80":
        return b & 1 == 0  # frame tag bit 0: 0 = key frame
    if fourcc == b"VP90":
        # frame_marker (2 bits), profile_low_bit, profile_high_bit, [reserved bit if profile 3],
        # show_existing_frame, frame_type (0 = key frame)
        shift = 1 if (b >> 4) & 3 == 3 else 0
        if (b >> (3 - shift)) & 1:
            return False  # shows an earlier frame again: no picture data
        return (b >> (2 - shift)) & 1 == 0
    raise ValueError(f"IVF stream of codec {fourcc!r}: only VP8, VP9 and MJPEG are handled")


def keyframe_table(data: bytes) -> np.ndarray:
    """(frame index, byte offset) of every keyframe, int32 (K, 2); frame 0 must be one."""
    fourcc, fr = frames(data)
    table = [(i, pos) for i, (pos, size) in enumerate(fr)
             if is_keyframe(fourcc, data[pos + FRAME_HEADER:pos + FRAME_HEADER + size])]
    if not table or table[0] != (0, HEADER):
        raise ValueError("IVF stream does not start with a keyframe")
    return np.asarray(table, dtype="<i4")


def frame_offsets(data: bytes) -> np.ndarray:
    """Byte offset of every frame's header, then the stream's length: int32 (N + 1,)."""
    return np.asarray([pos for pos, _ in frames(data)[1]] + [len(data)], dtype="<i4")


def frame_pieces(keyframe_frames, wanted) -> tuple[list[tuple[int, int]], list[int]]:
    """The rule of the DALI loader's per-frame cut, in numpy: ([(first, last) frame of each
    piece], [position of each wanted frame in the joined pieces]).

    Each wanted frame's piece starts at the keyframe at or before it, or just after the previous
    wanted frame when that is later; a repeated frame adds no piece. Indices that step back get
    one piece over the whole span (joined pieces would run backwards in time, which DALI's
    decoder does not follow).
    """
    keys, wanted = np.asarray(keyframe_frames), [int(x) for x in wanted]
    key = [int(keys[keys <= w].max()) for w in wanted]
    if any(b < a for a, b in zip(wanted, wanted[1:])):
        return [(min(key), max(wanted))], [w - min(key) for w in wanted]
    pieces, positions, prev, decoded = [], [], -1, 0
    for w, k in zip(wanted, key):
        start = max(k, prev + 1)
        if start <= w:
            pieces.append((start, w))
            decoded += w - start + 1
        positions.append(decoded - 1)
        prev = w
    return pieces, positions


def join(data: bytes, offsets: np.ndarray, pieces: list[tuple[int, int]]) -> bytes:
    """The file header and the frames of each (first, last) piece: a valid stream (see above)."""
    return data[:HEADER] + b"".join(data[offsets[a]:offsets[b + 1]] for a, b in pieces)


def cut(data: bytes, offset: int) -> bytes:
    """The stream from the frame at byte `offset` (a keyframe's) on: what the loader decodes."""
    return data[:HEADER] + data[offset:]
