"""A folder of frames (`00001.jpg`, `img_00001.jpg`, ...) encoded as one clip, the way a video
file's decoded frames are: every frame decoded (the decode check), resampled to the output rate
from `EncodeOptions.frame_rate` (frame folders declare no rate), resized and encoded."""

from __future__ import annotations

from pathlib import Path

import av

from .frames import FrameFolderError, frame_files
from .encoder import EncodeOptions, _Encoder, target_size
from .transcode import BadClip, Encoded, _encoded, resample


def _image(path: Path) -> av.VideoFrame:
    try:
        with av.open(str(path)) as c:
            for frame in c.decode(video=0):
                return frame
    except av.FFmpegError as e:
        raise BadClip(f"frame {path.name}: not a readable image ({e.strerror or e})") from None
    raise BadClip(f"frame {path.name}: no image in the file")


def encode_frame_folder(folder: Path, opts: EncodeOptions) -> Encoded:
    """A folder of frames as one clip at `opts.frame_rate`: every frame decoded (the check),
    all of one size, resampled and encoded like a video file's frames."""
    try:
        paths = frame_files(folder)
    except (FrameFolderError, OSError) as e:
        raise BadClip(str(e)) from None
    size = []

    def timed():
        for i, p in enumerate(paths):
            frame = _image(p)
            if not size:
                size.append((frame.width, frame.height))
            elif (frame.width, frame.height) != size[0]:
                raise BadClip(f"frame {p.name} is {frame.width}x{frame.height}, the first is {size[0][0]}x{size[0][1]}")
            yield i / opts.frame_rate, frame

    enc = None
    try:
        for frame in resample(timed(), opts.fps, 1.0 / opts.frame_rate, opts.max_seconds):
            if enc is None:
                enc = _Encoder(opts, *target_size(frame.width, frame.height, opts.short_side))
            enc.add(frame)
        if enc is None:
            raise BadClip("no decodable frames")
        data = enc.finish()
    except av.FFmpegError as e:
        raise BadClip(f"cannot encode: {e}") from None
    meta = {"source_codec": "frames", "source_fps": opts.frame_rate, "source_size": list(size[0]),
            "source_seconds": len(paths) / opts.frame_rate, "source_frames": len(paths), "copied": False}
    return _encoded(data, enc.ext, enc.count, enc.width, enc.height, meta)
