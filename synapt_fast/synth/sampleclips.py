"""Small deterministic test clips written as real video files with PyAV.

Used by the tests and the sharding benchmark as a reference input set: each class is a shape
moving in its own direction over a textured background, so frames differ over time and between
classes, and content survives a lossy round trip well enough to compare.

`camera` makes clips that cost a decoder what camera footage costs (the loader benchmark): flat
shapes compress to almost nothing and decode fast, real footage does not. See its docstring for
what it imitates and what not.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from functools import partial
from pathlib import Path

import av
import numpy as np

from synapt_fast.sharding.sources import Frames, SourceItem

# container extension -> (encoder, pixel format, options)
FILE_CODECS = {
    "mp4": ("libx264", "yuv420p", {"preset": "veryfast", "crf": "20", "threads": "1"}),
    "webm": ("libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0",
                                       "threads": "1"}),
    "avi": ("mjpeg", "yuvj420p", {"q:v": "3", "threads": "1"}),
    "mkv": ("libx265", "yuv420p", {"preset": "ultrafast", "x265-params": "log-level=error:pools=1:frame-threads=1"}),
}


def render(label: int, index: int, num_frames: int, width: int, height: int) -> np.ndarray:
    """uint8 (T, H, W, 3): a bright square moving in a class-specific direction."""
    rng = np.random.default_rng([label, index])
    yy, xx = np.mgrid[0:height, 0:width]
    base = (rng.integers(30, 90, size=3)[None, None, :] + 20 * np.sin(xx / 7.0 + yy / 11.0)[..., None])
    base = np.clip(base, 0, 255).astype(np.uint8)
    angle = 2 * np.pi * label / 8 + 0.3 * (label // 8)
    color = np.array([255, 64 + 24 * (label % 8), 255 - 20 * (label % 10)], dtype=np.uint8)
    side = max(4, min(width, height) // 5)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        cx = width / 2 + np.cos(angle) * (t * 2.0 % (width / 2)) - side / 2
        cy = height / 2 + np.sin(angle) * (t * 2.0 % (height / 2)) - side / 2
        f = base.copy()
        x0, y0 = int(np.clip(cx, 0, width - side)), int(np.clip(cy, 0, height - side))
        f[y0:y0 + side, x0:x0 + side] = color
        f[: 2 + t % 6, :, 1] = 200  # a flickering band so consecutive frames always differ
        frames[t] = f
    return frames


def write_clip(path: Path, frames: np.ndarray, fps: float = 30.0) -> Path:
    """Encode frames to `path`; the codec follows the extension (see FILE_CODECS)."""
    path = Path(path)
    encoder, pix, options = FILE_CODECS[path.suffix.lstrip(".")]
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(encoder, rate=rate, options=options)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix
        for i, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _field(rng: np.random.Generator, height: int, width: int, power: float) -> np.ndarray:
    """float (H, W), zero mean, unit spread: noise with a 1 / f**power amplitude spectrum."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    amp = np.maximum(np.hypot(fy, fx), 1.0 / max(height, width)) ** -power
    img = np.fft.irfft2(amp * np.exp(2j * np.pi * rng.random(amp.shape)), s=(height, width))
    return (img - img.mean()) / (img.std() + 1e-9)


def _scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """float32 (H, W, 3) in 0..255: a natural image's statistics, roughly. Brightness detail at
    every scale (1/f amplitude spectrum), colour in smoother, weaker patches (as in footage, most
    detail is in the luma), a random overall colour."""
    luma = _field(rng, height, width, 1.0)
    base = rng.uniform(70, 150, size=3)
    out = np.empty((height, width, 3), np.float32)
    for c in range(3):
        out[..., c] = base[c] + 40 * luma + 14 * _field(rng, height, width, 1.6)
    return np.clip(out, 0, 255)


def camera(label: int, index: int, num_frames: int, width: int = 320, height: int = 240) -> np.ndarray:
    """uint8 (T, H, W, 3): a hand-held camera panning over a textured scene, with moving objects.

    What makes it decode like footage: a 1/f-spectrum texture (fine detail at every scale), a
    slow pan with hand-held shake (whole-frame motion every frame, sub-pixel-free integer shifts),
    two textured objects moving against it, a slow change of exposure, and fresh sensor noise in
    every frame (sigma 3 grey levels: encoders spend bits on it, decoders then work on every
    block). What it lacks: lens blur, cuts, motion blur and compression history of a downloaded
    video. Deterministic in (label, index).
    """
    rng = np.random.default_rng([7, label, index])
    pad = 48
    scene = _scene(rng, height + 2 * pad, width + 2 * pad)
    objects = [(_scene(rng, height // 3, width // 4), rng.uniform(-2.5, 2.5, size=2), rng.uniform(0.2, 0.8, size=2))
               for _ in range(2)]
    vel = rng.uniform(-1.0, 1.0, size=2) + 0.5 * np.array([np.cos(label), np.sin(label)])
    out = np.empty((num_frames, height, width, 3), np.uint8)
    pos = np.zeros(2)
    for t in range(num_frames):
        pos += vel + rng.normal(0, 0.8, size=2)  # pan plus shake
        pos = np.clip(pos, -pad, pad)
        dy, dx = int(round(pos[0])) + pad, int(round(pos[1])) + pad
        f = scene[dy:dy + height, dx:dx + width].copy()
        for tex, v, start in objects:
            oh, ow = tex.shape[:2]
            y = int((start[0] * (height - oh) + v[0] * t) % (height - oh))
            x = int((start[1] * (width - ow) + v[1] * t) % (width - ow))
            f[y:y + oh, x:x + ow] = tex
        f *= 1.0 + 0.1 * np.sin(2 * np.pi * t / max(num_frames, 60))  # exposure drift
        f += rng.normal(0, 3.0, size=f.shape).astype(np.float32)
        out[t] = np.clip(f, 0, 255).astype(np.uint8)
    return out


def make_camera_folder(root: Path, num_classes: int, per_class: int, seconds: float, fps: float = 30.0,
                       width: int = 320, height: int = 240) -> Path:
    """`root/<class>/<clip>.mp4` of `camera` clips, written as a download would be: H.264 (x264
    `veryfast`, CRF 20) with x264's default long GOP (keyframes up to 250 frames apart) and B-frames."""
    root = Path(root)
    n = max(1, int(round(seconds * fps)))
    for label in range(num_classes):
        for i in range(per_class):
            write_clip(root / f"class_{label:02d}" / f"clip_{i:03d}.mp4", camera(label, i, n, width, height), fps)
    return root


def make_folder(root: Path, num_classes: int = 3, per_class: int = 2, seconds: float = 1.0,
                fps: float = 30.0, width: int = 160, height: int = 120, ext: str = "mp4") -> Path:
    """`root/<class>/<clip>.<ext>`: a folder-of-class-folders source."""
    root = Path(root)
    n = max(1, int(round(seconds * fps)))
    for label in range(num_classes):
        for i in range(per_class):
            write_clip(root / f"class_{label:02d}" / f"clip_{i:03d}.{ext}",
                       render(label, i, n, width, height), fps)
    return root


def frames(label: int, index: int, num_frames: int, width: int, height: int, fps: float = 30.0,
           static: bool = False) -> Frames:
    """`render` as in-memory `Frames`; `static` repeats the first frame (a still clip)."""
    arr = render(label, index, 1 if static else num_frames, width, height)
    if static:
        arr = np.repeat(arr, num_frames, axis=0)
    return Frames(arr, fps)


class SampleSource:
    """A `Source` of rendered clips (no files): `per_class` clips of `num_frames` per class."""

    def __init__(self, num_classes: int, per_class: int, num_frames: int, width: int = 160, height: int = 128,
                 static: bool = False):
        self.class_names = [f"class_{i:02d}" for i in range(num_classes)]
        self._args = (per_class, num_frames, width, height, static)

    def items(self) -> Iterator[SourceItem]:
        per_class, num_frames, width, height, static = self._args
        for label, name in enumerate(self.class_names):
            for i in range(per_class):
                render_fn = partial(frames, label, i, num_frames, width, height, 30.0, static)
                yield SourceItem(id=f"{name}/{i:04d}", label=label, class_name=name, render=render_fn)
