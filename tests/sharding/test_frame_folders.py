"""Frame folders as clips, and list paths without an extension, on trees laid out as published
(mmaction2 rawframes `<class>/<video>/img_00001.jpg`, SynAPT's `vid_to_frame.py` `00001.jpg`,
UCF101's `ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01` list names)."""

from __future__ import annotations

import numpy as np

from synapt_fast.sharding.datasets import UCF101
from synapt_fast.sharding.sources import FolderSource, ListSource

from .layouts import frame_folder, jpeg, packed, shard, skipped, video


def _brightness(frames: np.ndarray) -> np.ndarray:
    return frames.reshape(len(frames), -1).mean(axis=1)


def test_frame_folders_are_one_clip_each_in_natural_order(tmp_path):
    root = tmp_path / "rawframes"
    # mmaction2 style, numbers not zero-padded so that text order would put img_10 before img_2
    frame_folder(root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01", 12, name="img_{}.jpg")
    frame_folder(root / "ApplyLipstick" / "v_ApplyLipstick_g01_c01", 6, name="{:05d}.jpg", seed=3)
    video(root / "ApplyLipstick" / "v_ApplyLipstick_g01_c02.avi")
    m = shard(FolderSource(root), tmp_path / "out" / "train")
    assert m["num_samples"] == 3 and m["skipped"] == []
    clips = packed(tmp_path / "out" / "train")
    meta, frames = clips["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01"]
    # 12 frames at the default 30 fps -> 12 output frames at 30 fps, in frame-number order
    assert meta["num_frames"] == 12 == len(frames) and meta["source_codec"] == "frames" and meta["source_fps"] == 30
    assert meta["class_name"] == "ApplyEyeMakeup" and meta["label"] == 0
    levels = _brightness(frames)
    assert np.all(np.diff(levels) > 6), levels  # each frame 12 grey levels above the one before
    assert abs(levels[0] - 20) < 4 and abs(levels[-1] - (20 + 11 * 12)) < 4
    assert clips["ApplyLipstick/v_ApplyLipstick_g01_c01"][0]["num_frames"] == 6


def test_frame_rate_option_sets_the_duration_of_frame_folders(tmp_path):
    root = tmp_path / "frames"
    frame_folder(root / "a" / "clip", 10, name="{:05d}.jpg")
    m = shard(FolderSource(root), tmp_path / "out" / "train", frame_rate=15.0)
    meta, frames = packed(tmp_path / "out" / "train")["a/clip"]
    assert len(frames) == 20 and meta["source_fps"] == 15 and m["encoding"]["frame_rate"] == 15


def test_bad_frame_folders_are_recorded_skips_and_the_rest_packs(tmp_path):
    root = tmp_path / "frames"
    frame_folder(root / "a" / "good", 4)
    gap = frame_folder(root / "a" / "gap", 5)
    (gap / "img_00003.jpg").unlink()
    sizes = frame_folder(root / "a" / "sizes", 3)
    jpeg(sizes / "img_00004.jpg", np.zeros((32, 32, 3), np.uint8))
    broken = frame_folder(root / "a" / "broken", 3)
    (broken / "img_00002.jpg").write_bytes(b"not a jpeg at all")
    jpeg(root / "a" / "stray.jpg", np.zeros((8, 8, 3), np.uint8))  # an image where a clip should be
    m = shard(FolderSource(root), tmp_path / "out" / "train")
    reasons = skipped(m)
    assert m["num_samples"] == 1 and set(reasons) == {"a/gap", "a/sizes", "a/broken", "a/stray.jpg"}
    assert "misses frame number(s) [3]" in reasons["a/gap"]
    assert "img_00004.jpg is 32x32" in reasons["a/sizes"]
    assert "img_00002.jpg" in reasons["a/broken"]
    assert "an image where a clip should be" in reasons["a/stray.jpg"]


def test_list_paths_without_extension_resolve_to_the_one_clip_they_name(tmp_path):
    root = tmp_path / "UCF-101"
    video(root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi")
    frame_folder(root / "ApplyLipstick" / "v_ApplyLipstick_g01_c01", 4)
    video(root / "Archery" / "v_Archery_g01_c01.avi")
    video(root / "Archery" / "v_Archery_g01_c01.mp4")  # two clips answer to one name
    lst = tmp_path / "trainlist.txt"
    lst.write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01 0\n"
                   "ApplyLipstick/v_ApplyLipstick_g01_c01 1\n"
                   "Archery/v_Archery_g01_c01 2\n"
                   "Archery/v_Archery_g02_c01 2\n")
    m = shard(ListSource(lst, root, ["ApplyEyeMakeup", "ApplyLipstick", "Archery"]), tmp_path / "out" / "train")
    reasons = skipped(m)
    assert m["num_samples"] == 2
    assert sorted(packed(tmp_path / "out" / "train")) == ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01",
                                                          "ApplyLipstick/v_ApplyLipstick_g01_c01"]
    assert "ambiguous" in reasons["Archery/v_Archery_g01_c01"]
    assert "v_Archery_g01_c01.avi" in reasons["Archery/v_Archery_g01_c01"]
    assert reasons["Archery/v_Archery_g02_c01"].startswith("trainlist.txt:4: missing file")


def test_ucf101_official_list_over_a_tree_of_rawframes(tmp_path):
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 ApplyLipstick\n")
    (lists / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
                                           "ApplyLipstick/v_ApplyLipstick_g01_c01.avi 2\n")
    root = tmp_path / "rawframes"
    frame_folder(root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01", 5)
    video(root / "ApplyLipstick" / "v_ApplyLipstick_g01_c01.avi")
    items = list(UCF101(root, lists, "train").items())
    assert [(it.problem, it.path.name) for it in items] == [(None, "v_ApplyEyeMakeup_g08_c01"),
                                                            (None, "v_ApplyLipstick_g01_c01.avi")]


def test_kinetics150_lines_find_a_frame_folder_where_no_video_is(tmp_path):
    from synapt_fast.sharding.datasets import Kinetics150

    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "kinetics_labels.txt").write_text("peeling apples\nhurling (sport)\n")
    (lists / "kinetics150_val.txt").write_text("peeling apples/abc_000001_000011\nhurling (sport)/def_000002_000012\n")
    root = tmp_path / "k"
    frame_folder(root / "peeling_apples" / "abc_000001_000011", 3, name="{:05d}.jpg")
    video(root / "hurling (sport)" / "def_000002_000012.mp4")
    items = list(Kinetics150(root, "val", lists).items())
    assert [(it.problem, it.path.relative_to(root).as_posix()) for it in items] == [
        (None, "peeling_apples/abc_000001_000011"), (None, "hurling (sport)/def_000002_000012.mp4")]
