"""One bad entry never stops a run: it is a recorded skip with its reason, and the rest packs."""

from __future__ import annotations

import os
import shutil

import av
import numpy as np

from synapt_fast.sharding.sources import FolderSource

from .layouts import packed, shard, skipped, video


def test_symlink_loops_are_recorded_skips(tmp_path):
    root = tmp_path / "videos"
    video(root / "a" / "good.mp4")
    video(root / "b" / "good.mp4")
    os.symlink(".", root / "a" / "again")  # a folder loop
    os.symlink(root, root / "b" / "up")  # back up to the root: not a second walk of class a
    os.symlink("self.mp4", root / "a" / "self.mp4")  # a file that is a link to itself
    m = shard(FolderSource(root), tmp_path / "out" / "train")
    reasons = skipped(m)
    assert m["num_samples"] == 2 and sorted(packed(tmp_path / "out" / "train")) == ["a/good.mp4", "b/good.mp4"]
    assert "symlink loop" in reasons["a/again"] and "symlink loop" in reasons["b/up"]
    assert "symbolic links" in reasons["a/self.mp4"] or "symlink loop" in reasons["a/self.mp4"]


def test_names_that_are_not_utf8_are_named_and_skipped(tmp_path):
    root = tmp_path / "videos"
    good = video(root / "a" / "good.mp4")
    other = video(tmp_path / "other.mp4")
    raw_root = os.fsencode(root)
    shutil.copyfile(other, raw_root + b"/a/caf\xe9.mp4")  # Latin-1 bytes, as an old Windows tree has them
    os.makedirs(raw_root + b"/\xff_class")
    shutil.copyfile(good, raw_root + b"/\xff_class/clip.mp4")
    src = FolderSource(root)
    assert src.class_names == ["a"]
    m = shard(src, tmp_path / "out" / "train")
    assert m["num_samples"] == 1
    assert skipped(m) == {"a/caf\\xe9.mp4": "file or folder name is not valid UTF-8; rename it",
                          "\\xff_class/": "class folder name is not valid UTF-8; rename it"}


def _sideways_clip(path, frames=6):
    """What a phone writes for a portrait clip: landscape pixels and a display matrix turning them
    by 90 degrees. The left half of the stored picture is white."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30, options={"preset": "veryfast", "threads": "1"})
        s.width, s.height, s.pix_fmt = 96, 48, "yuv420p"
        s.set_display_rotation(90)
        for i in range(frames):
            a = np.full((48, 96, 3), 10, np.uint8)
            a[:, :48] = 240
            frame = av.VideoFrame.from_ndarray(a, format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_rotation_metadata_is_honoured(tmp_path):
    root = tmp_path / "videos"
    (root / "phone").mkdir(parents=True)
    _sideways_clip(root / "phone" / "IMG_0001.mp4")
    shard(FolderSource(root), tmp_path / "out" / "train", short_side=0)
    meta, frames = packed(tmp_path / "out" / "train")["phone/IMG_0001.mp4"]
    assert (meta["width"], meta["height"]) == (48, 96) and frames.shape[1:3] == (96, 48)
    # turned 90 degrees counter-clockwise, as players show it: the stored left half is the bottom
    top, bottom = frames[:, :40].mean(), frames[:, 56:].mean()
    assert bottom > 200 and top < 40, (top, bottom)


def test_byte_identical_duplicates_are_packed_once(tmp_path):
    root = tmp_path / "videos"
    first = video(root / "a" / "v_001.mp4")
    shutil.copyfile(first, root / "a" / "v_001_copy.mp4")
    video(root / "b" / "v_002.mp4")
    shutil.copyfile(first, root / "b" / "v_001.mp4")
    m = shard(FolderSource(root), tmp_path / "out" / "train")
    assert m["num_samples"] == 2 and sorted(packed(tmp_path / "out" / "train")) == ["a/v_001.mp4", "b/v_002.mp4"]
    assert skipped(m) == {"a/v_001_copy.mp4": "duplicate: the same bytes as a/v_001.mp4",
                          "b/v_001.mp4": "duplicate: the same bytes as a/v_001.mp4"}


def test_copy_re_encodes_a_sideways_clip_rather_than_pack_it_sideways(tmp_path):
    root = tmp_path / "videos"
    (root / "phone").mkdir(parents=True)
    _sideways_clip(root / "phone" / "IMG_0002.mp4")  # H.264 yuv420p 30 fps: conforming for --codec h264 --copy
    shard(FolderSource(root), tmp_path / "out" / "train", codec="h264", copy=True, short_side=0)
    meta, frames = packed(tmp_path / "out" / "train")["phone/IMG_0002.mp4"]
    assert meta["copied"] is False and frames.shape[1:3] == (96, 48)
