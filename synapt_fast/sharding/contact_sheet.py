"""Contact sheets: a few frames of several clips tiled into one image, the first clips of a shard
split to tile, and a dependency-free PNG writer to save it (zlib + the PNG chunk format; no Pillow
needed)."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from synapt_fast.format.manifest import Manifest


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes for an (H, W, 3) uint8 image (8-bit RGB, no interlace, filter 0 per row)."""
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + _chunk(b"IEND", b""))


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    Path(path).write_bytes(encode_png(rgb))


# A 3x5 bitmap font for labels: digits, lower-case letters and a little punctuation. Each
# glyph is 5 rows of 3 bits.
_FONT = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001010010010",
    "8": "111101111101111", "9": "111101111001111", "a": "010101111101101", "b": "110101110101110",
    "c": "011100100100011", "d": "110101101101110", "e": "111100110100111", "f": "111100110100100",
    "g": "011100101101011", "h": "101101111101101", "i": "111010010010111", "j": "001001001101010",
    "k": "101101110101101", "l": "100100100100111", "m": "101111111101101", "n": "110101101101101",
    "o": "010101101101010", "p": "110101110100100", "q": "010101101110011", "r": "110101110101101",
    "s": "011100010001110", "t": "111010010010010", "u": "101101101101111", "v": "101101101101010",
    "w": "101101111111101", "x": "101101010101101", "y": "101101010010010", "z": "111001010100111",
    "-": "000000111000000", "_": "000000000000111", ".": "000000000000010", " ": "000000000000000",
    ":": "000010000010000", "/": "001001010100100", "=": "000111000111000",
}


def draw_text(img: np.ndarray, text: str, y: int, x: int, scale: int = 1,
              colour=(255, 255, 255)) -> None:
    """Draw `text` into `img` (H, W, 3) in place with the 3x5 font; clipped at the border."""
    for ch in text.lower():
        bits = _FONT.get(ch, _FONT[" "])
        glyph = np.array([int(b) for b in bits], bool).reshape(5, 3)
        glyph = np.kron(glyph, np.ones((scale, scale), bool))
        h, w = glyph.shape
        ys, xs = slice(y, min(y + h, img.shape[0])), slice(x, min(x + w, img.shape[1]))
        if ys.start < ys.stop and xs.start < xs.stop:
            img[ys, xs][glyph[: ys.stop - ys.start, : xs.stop - xs.start]] = colour
        x += 4 * scale


def contact_sheet(clips: Sequence[np.ndarray], labels: Sequence[str] | None = None,
                  frames_per_clip: int = 4, gap: int = 2) -> np.ndarray:
    """One row per clip: `frames_per_clip` frames spread evenly over the clip, a label strip
    above each row. Clips are uint8 (T, H, W, 3) and may differ in size (rows are padded)."""
    if not clips:
        raise ValueError("no clips to tile")
    label_h = 9 if labels is not None else 0
    hs = [c.shape[1] for c in clips]
    width = max(frames_per_clip * (c.shape[2] + gap) + gap for c in clips)
    height = sum(h + label_h + gap for h in hs) + gap
    sheet = np.full((height, width, 3), 24, np.uint8)
    y = gap
    for i, clip in enumerate(clips):
        if labels is not None:
            draw_text(sheet, str(labels[i]), y + 2, gap + 1)
            y += label_h
        T, h, w, _ = clip.shape
        picks = np.linspace(0, T - 1, frames_per_clip).round().astype(int)
        for j, t in enumerate(picks):
            x = gap + j * (w + gap)
            sheet[y:y + h, x:x + w] = clip[t]
        y += h + gap
    return sheet


def first_clips(split_dir: Path, manifest: Manifest, count: int,
                notes: list[str] | None = None) -> tuple[list[np.ndarray], list[str]]:
    """The first `count` decodable clips of a shard split in shard order, each decoded whole to uint8
    (T, H, W, 3), and their class names: what `synapt-fast inspect --contact-sheet` tiles. A clip
    that does not decode (a split damaged after it was written) is left out, with a line in `notes`."""
    import av
    import webdataset as wds

    from .transcode import decode_all  # PyAV: imported only when clips are decoded

    frames, labels = [], []
    for sample in wds.WebDataset([str(Path(split_dir) / s.tar) for s in manifest.shards], shardshuffle=False):
        try:
            meta = json.loads(sample["meta.json"])
            clip = decode_all(sample[manifest.video_ext])
        except (av.FFmpegError, ValueError, KeyError) as e:  # ValueError: no frames to stack, bad JSON
            if notes is not None:
                notes.append(f"skipped sample {sample.get('__key__', '?')} of {Path(sample.get('__url__', '?')).name}: "
                             f"does not decode ({type(e).__name__}: {e}); `synapt-fast verify --decode` names all")
            continue
        frames.append(clip)
        labels.append(meta["class_name"])
        if len(frames) >= count:
            break
    return frames, labels
