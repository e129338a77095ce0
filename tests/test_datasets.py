"""Dataset adapters read tiny fixture trees in each official layout, including malformed ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from synapt_fast.datasets import HMDB51, UCF101
from synapt_fast.manifest import Manifest
from synapt_fast.sampleclips import render, write_clip
from synapt_fast.sharding import ShardOptions, shard_source


def _ucf(tmp_path: Path) -> tuple[Path, Path]:
    videos, lists = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 Archery\r\n")
    for cls, label in (("ApplyEyeMakeup", 0), ("Archery", 1)):
        for g in (1, 8):
            write_clip(videos / cls / f"v_{cls}_g0{g}_c01.avi", render(label, g, 12, 64, 48))
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g08_c01.avi 2\n"
        "Archery/v_Archery_g09_c01.avi 2\nBowling/v_Bowling_g08_c01.avi 3\n")
    (lists / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nArchery/v_Archery_g01_c01.avi\n")
    return videos, lists


def test_ucf101_official_lists(tmp_path):
    videos, lists = _ucf(tmp_path)
    train = UCF101(videos, lists, "train")
    assert train.class_names == ["ApplyEyeMakeup", "Archery"]
    items = list(train.items())
    good = [(it.id, it.label) for it in items if it.problem is None]
    assert good == [("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0), ("Archery/v_Archery_g08_c01.avi", 1)]
    problems = {it.id: it.problem for it in items if it.problem}
    assert problems["Archery/v_Archery_g09_c01.avi"].startswith("trainlist01.txt:3: missing file")
    assert problems["Bowling/v_Bowling_g08_c01.avi"] == "trainlist01.txt:4: unknown class 'Bowling'"
    test = [it for it in UCF101(videos, lists, "test").items()]
    assert [it.label for it in test] == [0, 1] and all(it.problem is None for it in test)
    # The adapter is a shard source like any other.
    summary = shard_source(train, tmp_path / "shards", ShardOptions("ucf101", "train"))
    assert summary.samples == 2 and summary.skipped == 2
    assert Manifest.load(tmp_path / "shards").class_names == ["ApplyEyeMakeup", "Archery"]


def test_ucf101_malformed_files_name_the_line(tmp_path):
    videos, lists = _ucf(tmp_path)
    (lists / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 2\n")
    with pytest.raises(ValueError, match="trainlist01.txt:1: label 2 does not match class 'ApplyEyeMakeup'"):
        list(UCF101(videos, lists, "train").items())
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n3 Archery\n")
    with pytest.raises(ValueError, match="classInd.txt:2"):
        UCF101(videos, lists, "train")


def _hmdb(tmp_path: Path) -> tuple[Path, Path]:
    videos, splits = tmp_path / "hmdb51", tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    for label, cls in enumerate(("brush_hair", "cartwheel")):
        for v in ("a", "b", "c"):
            write_clip(videos / cls / f"{cls}_{v}.avi", render(label, ord(v), 12, 64, 48))
        (splits / f"{cls}_test_split1.txt").write_text(f"{cls}_a.avi 1 \n{cls}_b.avi 2 \n{cls}_c.avi 0 \n")
    return videos, splits


def test_hmdb51_official_splits(tmp_path):
    videos, splits = _hmdb(tmp_path)
    train, test = HMDB51(videos, splits, "train"), HMDB51(videos, splits, "test")
    assert train.class_names == ["brush_hair", "cartwheel"]
    assert [(it.id, it.label) for it in train.items()] == [("brush_hair/brush_hair_a.avi", 0),
                                                           ("cartwheel/cartwheel_a.avi", 1)]
    assert [it.id for it in test.items()] == ["brush_hair/brush_hair_b.avi", "cartwheel/cartwheel_b.avi"]
    (videos / "cartwheel" / "cartwheel_b.avi").unlink()
    missing = [it for it in HMDB51(videos, splits, "test").items() if it.problem]
    assert missing[0].problem.startswith("cartwheel_test_split1.txt:2: missing file")


def test_hmdb51_malformed_and_absent_split_files(tmp_path):
    videos, splits = _hmdb(tmp_path)
    (splits / "cartwheel_test_split1.txt").write_text("cartwheel_a.avi 1\ncartwheel_b.avi 7\n")
    with pytest.raises(ValueError, match="cartwheel_test_split1.txt:2"):
        list(HMDB51(videos, splits, "train").items())
    with pytest.raises(ValueError, match="no '\\*_test_split2.txt' split files"):
        HMDB51(videos, splits, "train", split=2)
