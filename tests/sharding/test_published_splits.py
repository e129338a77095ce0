"""Published split files: IkeaFA's whole-video split from SynAPT's follow-up work (PPMA), the
synthetic list in that work's csv form, and unknown subsets refused by every adapter."""

from __future__ import annotations

import hashlib

import pytest

from synapt_fast.sharding.datasets import DATASETS, IKEA_FA_CLASSES, open_dataset
from synapt_fast.sharding.datasets.ikea_fa import IKEA_FA_VAL, assembly_video

from .layouts import frame_folder, packed, shard, skipped, video

# Clip names as published (ikea_furniture/videos/<class>/<clip>.MP4): val lines of PPMA's val.csv,
# train lines of its train.csv, and one clip of a held-out video that val.csv does not list.
VAL = ["spin_in/GOPR0022_04144_05129_09.MP4", "attach_leg_2/GOPR0020_01434_01599_09.MP4",
       "pick_leg/GOPR0121_02167_02190_13.MP4"]
TRAIN = ["spin_in/GOPR0086_00117_00294_05.MP4", "spin_in/GOPR0100_01054_01321_10.MP4",
         "flip_over/GOPR0070_00091_00464_04.MP4"]
HELD_OUT_UNLISTED = "spin_out/GOPR0020_99000_99100_09.MP4"


def _ikea(tmp_path, real=False):
    root = tmp_path / "ikea_furniture" / "videos"
    for c in IKEA_FA_CLASSES:
        (root / c).mkdir(parents=True)
    for rel in VAL + TRAIN + [HELD_OUT_UNLISTED]:
        if real:
            video(root / rel)
        else:
            (root / rel).write_bytes(rel.encode())
    return root


def test_packaged_ikea_fa_split_is_ppma_val_csv_holding_out_whole_videos():
    data = IKEA_FA_VAL.read_bytes()
    # PPMA data/splits/ikea_furniture/val.csv, byte for byte (CRLF lines, no final newline)
    assert len(data) == 10388 and data.count(b"\r\n") == 162 and not data.endswith(b"\n")
    lines = data.decode().splitlines()
    assert all(ln.startswith("ikea_furniture/videos/") for ln in lines)
    videos = {assembly_video(ln.split("/")[3]) for ln in lines}
    assert videos == {"GOPR0020", "GOPR0022", "GOPR0064", "GOPR0069", "GOPR0115", "GOPR0118", "GOPR0121",
                      "GOPR0124"}
    counts = {c: sum(f"/{c}/" in ln for ln in lines) for c in IKEA_FA_CLASSES}
    assert all(counts.values()) and sum(counts.values()) == 163  # every class has val clips


def test_ikea_fa_train_and_val_share_no_assembly_video(tmp_path):
    root = _ikea(tmp_path)
    val = open_dataset("ikea_fa", root, subset="val")
    train = open_dataset("ikea_fa", root, subset="train")
    val_items = list(val.items())
    listed = {it.id: it for it in val_items if not it.problem}
    assert sorted(listed) == sorted(VAL)
    assert listed["pick_leg/GOPR0121_02167_02190_13.MP4"].label == IKEA_FA_CLASSES.index("pick_leg")
    assert sum(1 for it in val_items if it.problem) == 163 - 3  # the rest of val.csv is not in this tree
    train_ids = sorted(it.id for it in train.items())
    assert train_ids == sorted(TRAIN)  # the unlisted clip of a held-out video is in neither
    assert {it.meta["video"] for it in train.items()} == {"GOPR0086", "GOPR0100", "GOPR0070"}
    sha = hashlib.sha256(IKEA_FA_VAL.read_bytes()).hexdigest()
    assert val.split_from == {"dataset": "ikea_fa", "subset": "val", "file": "ikea_fa_val.csv", "sha256": sha,
                              "rule": "the clips the file lists"}
    assert train.split_from["file"] == "ikea_fa_val.csv" and "assembly video" in train.split_from["rule"]


def test_ikea_fa_val_as_frame_folders_and_a_clip_without_a_video_name(tmp_path):
    root = tmp_path / "videos"
    for c in IKEA_FA_CLASSES:
        (root / c).mkdir(parents=True)
    frame_folder(root / "spin_in" / "GOPR0022_04144_05129_09", 3)  # val.csv names the .MP4: its frames serve
    video(root / "spin_in" / "GOPR0086_00117_00294_05.MP4")
    video(root / "spin_in" / "clip_7.mp4")
    m = shard(open_dataset("ikea_fa", root, subset="val"), tmp_path / "out" / "val")
    assert list(packed(tmp_path / "out" / "val")) == ["spin_in/GOPR0022_04144_05129_09.MP4"]
    assert m["split_from"]["file"] == "ikea_fa_val.csv" and m["split_from"]["subset"] == "val"
    train = list(open_dataset("ikea_fa", root, subset="train").items())
    assert [(it.id, it.problem) for it in train] == [
        ("spin_in/GOPR0086_00117_00294_05.MP4", None),
        ("spin_in/clip_7.mp4", "spin_in/clip_7.mp4: name shows no assembly video (GOPR####_...), so it cannot "
                               "be kept out of val")]


def test_ikea_fa_split_file_that_contradicts_itself_stops(tmp_path):
    root = _ikea(tmp_path)
    lists = tmp_path / "splits"
    lists.mkdir()
    (lists / "val.csv").write_text("ikea_furniture/videos/spin_in/GOPR0022_04144_05129_09.MP4;3\n")
    with pytest.raises(ValueError, match=r"val.csv:1: label 3 is not the class folder 'spin_in'"):
        list(open_dataset("ikea_fa", root, subset="val", lists=lists).items())


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_adapter_refuses_an_unknown_subset(tmp_path, name):
    with pytest.raises(ValueError, match=r"subset is .* got 'bogus'"):
        open_dataset(name, tmp_path, lists=tmp_path, subset="bogus")


def test_synthetic150_reads_the_follow_up_csv_form(tmp_path):
    videos = tmp_path / "sim150"
    a27 = video(videos / "a27" / "PRE_a27_d1_p066_c1_color.avi_v225_r00.mp4")
    video(videos / "smoking" / "A038_P112_G016_C023.mp4")
    lst = tmp_path / "val.csv"
    lst.write_text("a27/PRE_a27_d1_p066_c1_color.avi_v225_r00.mp4;0\n"
                   "smoking/A038_P112_G016_C023.mp4;1\n"
                   "smoking/A038_P111_G014_C014.mp4;1\n"
                   "smoking/A038_P104_G020_C028.mp4;7\n")
    src = open_dataset("synthetic150", videos, subset="val", list_file=lst)
    items = {it.id: it for it in src.items()}
    good = items["a27/PRE_a27_d1_p066_c1_color.avi_v225_r00"]
    assert good.path == a27 and good.label == 27 and good.meta == {"list_line": 1, "asset": "surreact_uestc",
                                                                     "list_label": 0}
    smoking = items["smoking/A038_P112_G016_C023"]
    assert smoking.class_name == "smoking" and smoking.meta["asset"] == "eldersim"
    assert items["smoking/A038_P111_G014_C014"].problem.startswith("val.csv:3: missing file")
    assert items["smoking/A038_P104_G020_C028"].problem == ("val.csv:4: label 7 but line 2 gives folder "
                                                            "'smoking' label 1")
    assert src.split_from["file"] == "val.csv"
    m = shard(src, tmp_path / "out" / "val")
    assert m["num_samples"] == 2 and set(skipped(m)) == {"smoking/A038_P111_G014_C014",
                                                        "smoking/A038_P104_G020_C028"}
