"""Trees laid out as the published datasets are, with tiny real videos and frame folders."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from synapt_fast.sharding.pipeline import ShardOptions, shard_source
from synapt_fast.synth.sampleclips import render, write_clip

_count = [0]


def video(path: Path, frames: int = 8, size: tuple[int, int] = (64, 48)) -> Path:
    """A real clip at `path` (any letter case of mp4/webm/avi/mkv), different from every other one made."""
    _count[0] += 1
    path = Path(path)
    tmp = write_clip(path.with_name(path.stem + ".tmp" + path.suffix.lower()),
                     render(_count[0] % 7, _count[0], frames, *size))
    tmp.rename(path)
    return path


def jpeg(path: Path, rgb: np.ndarray) -> Path:
    """One real JPEG file (PyAV's MJPEG encoder writes a JFIF image per frame)."""
    h, w, _ = rgb.shape
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = w, h, "yuvj420p", Fraction(1, 30)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuvj420p")
    data = b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def frame_folder(folder: Path, count: int, name: str = "img_{:05d}.jpg", size: tuple[int, int] = (64, 48),
                 start: int = 1, seed: int = 0) -> Path:
    """Frames whose brightness rises with their number: frame k (from 0) is grey 20 + 12 k (+ seed)."""
    w, h = size
    for k in range(count):
        jpeg(Path(folder) / name.format(start + k), np.full((h, w, 3), 20 + 12 * k + seed, np.uint8))
    return Path(folder)


def shard(src, out: Path, **encode) -> dict:
    """Shard `src` into `out` and return the manifest as JSON."""
    from synapt_fast.sharding.transcode import EncodeOptions

    shard_source(src, out, ShardOptions("t", out.name), EncodeOptions(**encode))
    return json.loads((out / "manifest.json").read_text())


def packed(split: Path) -> dict[str, tuple[dict, np.ndarray]]:
    """id -> (meta.json, decoded frames) of every packed clip."""
    import webdataset as wds

    from synapt_fast.sharding.transcode import decode_all

    m = json.loads((split / "manifest.json").read_text())
    out = {}
    for s in wds.WebDataset([str(split / sh["tar"]) for sh in m["shards"]], shardshuffle=False):
        meta = json.loads(s["meta.json"])
        out[meta["id"]] = (meta, decode_all(s[m["encoding"]["ext"]]))
    return out


def skipped(manifest: dict) -> dict[str, str]:
    return {s["id"]: s["reason"] for s in manifest["skipped"]}
