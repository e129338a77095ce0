"""Dataset adapters read tiny fixture trees in each official layout, including malformed ones."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds

from synapt_fast.sharding.datasets import (DATA, DATASETS, HMDB51, IKEA_FA_CLASSES, SSV2, UAV_HUMAN_CSV1_TRAIN, UCF101,
                                  Diving48, IkeaFA, Kinetics150, MiniSSV2, MiT150, Synthetic150, UAVHuman,
                                  choose_classes, ssv2_class, synthetic_asset, synthetic_folders)
from synapt_fast.format.manifest import Manifest
from synapt_fast.synth.sampleclips import render, write_clip
from synapt_fast.sharding.pipeline import ShardOptions, shard_source

from tests.conftest import run_cli


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


# --- SSV2, Mini-SSV2, Diving48, IkeaFA, UAV-Human, Kinetics-150, synthetic-150, MiT-150 ---------


@pytest.fixture(scope="module")
def tiny_clips(tmp_path_factory) -> dict[str, Path]:
    """One tiny real clip per container the adapters look for, copied wherever a tree needs a video."""
    d = tmp_path_factory.mktemp("tiny")
    return {ext: write_clip(d / f"clip.{ext}", render(0, 0, 8, 64, 48)) for ext in ("webm", "mp4")}


def _put(path: Path, clip: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clip, path)
    return path


def _ssv2(tmp_path: Path, clip: Path, classes: list[str]) -> tuple[Path, Path]:
    videos, lists = tmp_path / "20bn-something-something-v2", tmp_path / "labels"
    lists.mkdir()
    (lists / "labels.json").write_text(json.dumps({c: str(i) for i, c in enumerate(classes)}, indent=1))
    for vid in ("11", "12", "13"):
        _put(videos / f"{vid}.webm", clip)
    return videos, lists


def test_ssv2_template_normalisation_and_skips(tmp_path, tiny_clips):
    assert ssv2_class("Putting [something] on [Something]") == "Putting something on Something"
    assert ssv2_class("Pretending to [some substance] spill") == "Pretending to some substance spill"
    classes = ["Holding something next to something", "Pushing Something from left to right"]
    videos, lists = _ssv2(tmp_path, tiny_clips["webm"], classes)
    entries = [
        {"id": "11", "label": "pushing a cup", "template": "Pushing [Something] from left to right", "placeholders": ["a cup"]},
        {"id": "12", "label": "holding x next to y", "template": "Holding [something] next to [something]", "placeholders": []},
        {"id": "13", "label": "flying", "template": "Flying [something]", "placeholders": []},
        {"id": "14", "label": "holding", "template": "Holding [something] next to [something]", "placeholders": []},
    ]
    (lists / "validation.json").write_text(json.dumps(entries, indent=4))
    src = SSV2(videos, lists, "val")
    assert src.class_names == classes
    items = list(src.items())
    assert [(it.id, it.label) for it in items if not it.problem] == [("11.webm", 1), ("12.webm", 0)]
    problems = [it.problem for it in items if it.problem]
    assert problems[0] == "validation.json[2]: unknown class 'Flying something'"
    assert problems[1].startswith("validation.json[3]: missing file")


def test_ssv2_malformed_files_name_the_place(tmp_path, tiny_clips):
    videos, lists = _ssv2(tmp_path, tiny_clips["webm"], ["A something"])
    (lists / "train.json").write_text('[\n {"id": "11", "template": "A [something]"},\n {"id": 12 \n]')
    with pytest.raises(ValueError, match=r"train.json:4: not valid JSON"):
        list(SSV2(videos, lists).items())
    (lists / "train.json").write_text('[{"id": "11", "template": "A [something]"}, {"id": "12"}]')
    with pytest.raises(ValueError, match=r"train.json\[1\]: expected an object with id, template"):
        list(SSV2(videos, lists).items())
    (lists / "labels.json").write_text('{"A something": "0", "B something": "0"}')
    with pytest.raises(ValueError, match="labels.json: class 'B something' has a bad or repeated index"):
        SSV2(videos, lists)
    with pytest.raises(ValueError, match="subset is train or val"):
        SSV2(videos, lists, "test")


def test_mini_ssv2_keeps_the_87_classes_in_file_order(tmp_path, tiny_clips):
    mini = (DATA / "mini_ssv2_classes.txt").read_text().splitlines()
    assert mini[0] == "" and len(mini[1:]) == 87 and mini[1:] == sorted(mini[1:])
    full = ["Zooming in on something"] + mini[1:] + ["Burying something in something"]
    videos, lists = _ssv2(tmp_path, tiny_clips["webm"], full)
    (lists / "train.json").write_text(json.dumps([
        {"id": "11", "template": "Zooming in on [something]"},  # an SSV2 class outside Mini-SSV2: left out
        {"id": "12", "template": mini[5].replace("something", "[something]")},
        {"id": "13", "template": mini[1]},
    ]))
    src = MiniSSV2(videos, lists, "train")
    assert src.class_names == mini[1:]
    assert [(it.id, it.label, it.class_name) for it in src.items()] == [("12.webm", 4, mini[5]), ("13.webm", 0, mini[1])]
    assert [it.label for it in SSV2(videos, lists).items()] == [0, 5, 1]
    (lists / "labels.json").write_text(json.dumps({c: str(i) for i, c in enumerate(full[:50])}))
    with pytest.raises(ValueError, match="labels.json: lacks Mini-SSV2 classes"):
        MiniSSV2(videos, lists)


def _diving(tmp_path: Path, clips: list[Path]) -> tuple[Path, Path]:
    videos, lists = tmp_path / "rgb", tmp_path / "lists"
    lists.mkdir()
    vocab = [["Back", "15som", "05Twis", "FREE"], ["Forward", "25som", "NoTwis", "PIKE"], ["Inward", "25som", "NoTwis", "TUCK"]]
    (lists / "Diving48_vocab.json").write_text(json.dumps(vocab))
    entries = [{"vid_name": f"v_{i}", "label": i, "start_frame": 0, "end_frame": 7 + i} for i in range(3)]
    entries += [{"vid_name": "v_x", "label": 48, "start_frame": 0, "end_frame": 9},
                {"vid_name": "v_gone", "label": 1, "start_frame": 0, "end_frame": 9}]
    (lists / "Diving48_V2_train.json").write_text(json.dumps(entries))
    for i, clip in enumerate(clips):
        _put(videos / f"v_{i}.mp4", clip)
    return videos, lists


def test_diving48_vocabulary_classes_and_skips(tmp_path, tiny_clips):
    videos, lists = _diving(tmp_path, [tiny_clips["mp4"]] * 3)
    src = Diving48(videos, lists, "train")
    assert src.class_names == ["Back_15som_05Twis_FREE", "Forward_25som_NoTwis_PIKE", "Inward_25som_NoTwis_TUCK"]
    items = list(src.items())
    assert [(it.id, it.label) for it in items if not it.problem] == [("v_0.mp4", 0), ("v_1.mp4", 1), ("v_2.mp4", 2)]
    assert items[2].meta == {"list_entry": 2, "start_frame": 0, "end_frame": 9}
    assert items[3].problem == "Diving48_V2_train.json[3]: label 48 outside the vocabulary 0..2"
    assert items[4].problem.startswith("Diving48_V2_train.json[4]: missing file")
    (lists / "Diving48_V2_train.json").write_text('[{"vid_name": "v_0", "label": "0", "start_frame": 0, "end_frame": 1}]')
    with pytest.raises(ValueError, match=r"Diving48_V2_train.json\[0\]: expected a vid_name string and an integer"):
        list(Diving48(videos, lists).items())
    (lists / "Diving48_vocab.json").write_text('[["Back", "15som", "05Twis"]]')
    with pytest.raises(ValueError, match=r"Diving48_vocab.json\[0\]: expected \[takeoff, somersault, twist, flight\]"):
        Diving48(videos, lists)


def test_ikea_fa_fixed_classes_and_folder_errors(tmp_path, tiny_clips):
    root = tmp_path / "ikea"
    for i, cls in enumerate(IKEA_FA_CLASSES):  # clips of a training video (GOPR0086 is not held out)
        _put(root / cls / f"GOPR0086_{i:05d}_{i + 1:05d}_05.mp4", tiny_clips["mp4"])
    src = IkeaFA(root)
    assert len(src.class_names) == 12 and src.class_names[8:] == ["flip_over", "pick_leg", "spin_in", "spin_out"]
    assert [(it.class_name, it.label) for it in src.items()] == [(c, i) for i, c in enumerate(IKEA_FA_CLASSES)]
    (root / "dancing").mkdir()
    with pytest.raises(ValueError, match=r"unexpected class folder\(s\) \['dancing'\]"):
        IkeaFA(root)
    (root / "dancing").rmdir()
    shutil.rmtree(root / "spin_in")
    with pytest.raises(ValueError, match=r"missing class folder\(s\) \['spin_in'\]"):
        IkeaFA(root)


def test_uav_human_cross_subject_v1(tmp_path, tiny_clips):
    assert len(UAV_HUMAN_CSV1_TRAIN) == 89 and 0 in UAV_HUMAN_CSV1_TRAIN and 1 not in UAV_HUMAN_CSV1_TRAIN
    root = tmp_path / "uav"
    names = {
        "P000S00G10B10H10UC022000LC021000A000R0_08241716.avi": "train",
        "P002S01G10B00H10UC102000LC092000A154R1_09131758.avi": "train",
        "P001S00G20B00H00UC072000LC021000A031R0_08241716.avi": "test",
        "P118S00G20B00H00UC072000LC021000A002R0_08241716.avi": "train",
        "P119S00G10B10H10UC022000LC021000A000R0_08241716.avi": "outside",
        "P003S00G10B10H10UC022000LC021000A155R0_08241716.avi": "outside",
        "notes/clip_without_ids.avi": "no pattern",
    }
    for name in names:
        _put(root / name, tiny_clips["mp4"])
    train, test = UAVHuman(root, "train"), UAVHuman(root, "test")
    assert train.class_names[0] == "A000" and len(train.class_names) == 155
    got_train = {it.id: (it.label, it.meta["subject"]) for it in train.items() if not it.problem}
    assert got_train == {"P000S00G10B10H10UC022000LC021000A000R0_08241716.avi": (0, 0),
                         "P002S01G10B00H10UC102000LC092000A154R1_09131758.avi": (154, 2),
                         "P118S00G20B00H00UC072000LC021000A002R0_08241716.avi": (2, 118)}
    assert [(it.id, it.label) for it in test.items() if not it.problem] == [
        ("P001S00G20B00H00UC072000LC021000A031R0_08241716.avi", 31)]
    problems = {it.id: it.problem for it in test.items() if it.problem}
    assert set(problems) == {n for n, kind in names.items() if kind in ("outside", "no pattern")}
    assert "no UAV-Human P###...A###" in problems["notes/clip_without_ids.avi"]
    assert "A155 outside" in problems["P003S00G10B10H10UC022000LC021000A155R0_08241716.avi"]


def test_synthetic_assets_on_the_released_validation_list():
    lines = (DATA / "sim150_val.txt").read_text().splitlines()
    assert len(lines) == 12547
    assets = Counter(synthetic_asset(line.split("/", 1)[1]) for line in lines)
    assert assets == {"surreact_ntu": 4986, "eldersim": 3680, "phav": 2195, "surreact_uestc": 1686}
    # Independent check: SURREACT-UESTC clips, and only they, live in the a0..a39 folders.
    for line in lines:
        folder, name = line.split("/")
        assert (synthetic_asset(name) == "surreact_uestc") == (re.fullmatch(r"a\d+", folder) is not None), line
    names = Synthetic150(Path("/nonexistent")).class_names
    assert len(names) == 150 and names[40] == "back pain" and names[-1] == "wiping off the dinning table"
    folders = synthetic_folders(names)
    assert {line.split("/")[0] for line in lines} <= set(folders)  # every released folder has its label
    assert folders["a0"] == 0 and folders["a39"] == 39 and folders["wipping_off_the_dinning_table"] == 149
    assert synthetic_asset("PRE_PRE_a27_d1_p066_c1_color.avi_v225_r00") == "surreact_uestc"
    assert synthetic_asset("some_other_clip") is None


def test_synthetic150_list_lookup_asset_and_skips(tmp_path, tiny_clips):
    videos = tmp_path / "sim"
    _put(videos / "a3" / "a3_d1_p001_c1_color.avi_v000_r00.mp4", tiny_clips["mp4"])
    _put(videos / "wipping_off_the_dinning_table" / "A041_P106_G014_C025.webm", tiny_clips["webm"])
    listing = tmp_path / "sim150_train.txt"
    listing.write_text("a3/a3_d1_p001_c1_color.avi_v000_r00\nwipping_off_the_dinning_table/A041_P106_G014_C025\n"
                       "a3/mystery_clip\nflying/A041_P106_G014_C025\nback_pain/A001_P001_G001_C001")
    items = list(Synthetic150(videos, "train", listing).items())
    good = [(it.label, it.class_name, it.meta["asset"], it.path.suffix) for it in items if not it.problem]
    assert good == [(3, Synthetic150(videos).class_names[3], "surreact_uestc", ".mp4"),
                    (149, "wiping off the dinning table", "eldersim", ".webm")]
    problems = [it.problem for it in items if it.problem]
    assert problems[0].startswith("sim150_train.txt:3: name matches no asset pattern")
    assert problems[1] == "sim150_train.txt:4: unknown class folder 'flying'"
    assert problems[2].startswith("sim150_train.txt:5: missing file: tried ") and "back_pain/A001_P001_G001_C001.{mp4,webm,mkv,avi}" in problems[2]
    with pytest.raises(ValueError, match="training list was not released"):
        Synthetic150(videos, "train")


def test_kinetics150_released_lists_and_lookup(tmp_path, tiny_clips):
    labels = Kinetics150(tmp_path).class_names
    assert len(labels) == 150
    for subset, count in (("train", 89665), ("val", 7423)):
        classes = [line.split("/")[0] for line in (DATA / f"kinetics150_{subset}.txt").read_text().splitlines()]
        assert len(classes) == count and set(classes) == set(labels)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "kinetics_labels.txt").write_text("peeling apples\nhurling (sport)\n")
    (lists / "kinetics150_val.txt").write_text("peeling apples/abc_000001_000011\nhurling (sport)/def_000002_000012\n"
                                               "hurling (sport)/gone_000002_000012\nknitting/x_1_2\n")
    _put(tmp_path / "k" / "peeling_apples" / "abc_000001_000011.mkv", tiny_clips["webm"])
    _put(tmp_path / "k" / "hurling (sport)" / "def_000002_000012.mp4", tiny_clips["mp4"])
    items = list(Kinetics150(tmp_path / "k", "val", lists).items())
    assert [(it.path.relative_to(tmp_path / "k").as_posix(), it.label) for it in items if not it.problem] == [
        ("peeling_apples/abc_000001_000011.mkv", 0), ("hurling (sport)/def_000002_000012.mp4", 1)]
    problems = [it.problem for it in items if it.problem]
    assert problems[0].startswith("kinetics150_val.txt:3: missing file: tried ")
    assert "hurling (sport)/gone_000002_000012.{mp4,webm,mkv,avi} and " in problems[0]
    assert problems[0].endswith("hurling_(sport)/gone_000002_000012.{mp4,webm,mkv,avi}")
    assert problems[1] == "kinetics150_val.txt:4: unknown class 'knitting'"
    (lists / "kinetics150_val.txt").write_text("peeling apples/abc\nno_slash_here\n")
    with pytest.raises(ValueError, match="kinetics150_val.txt:2: expected '<class name>/<youtubeid_start_end>'"):
        list(Kinetics150(tmp_path / "k", "val", lists).items())


def _mit_lists(tmp_path: Path) -> Path:
    lists = tmp_path / "Moments_in_Time_Raw"
    lists.mkdir()
    names = [f"verb{i:03d}ing" for i in range(339)]
    (lists / "moments_categories.txt").write_text("".join(f"{n},{i}\n" for i, n in enumerate(names)))
    return lists


def test_mit150_seeded_class_choice(tmp_path):
    lists = _mit_lists(tmp_path)
    a, b = MiT150(tmp_path, lists, seed=0), MiT150(tmp_path, lists, seed=0)
    other = MiT150(tmp_path, lists, seed=1)
    assert a.class_names == b.class_names and len(a.class_names) == 150 and a.class_names == sorted(a.class_names)
    assert set(a.class_names) <= set(a.all_classes) and len(a.all_classes) == 339
    assert other.class_names != a.class_names
    assert choose_classes(a.all_classes, 150, 0) == a.class_names
    (lists / "moments_categories.txt").write_text("opening,0\nclosing,2\n")
    with pytest.raises(ValueError, match="moments_categories.txt:2: expected '<name>,1'"):
        MiT150(tmp_path, lists)


def test_mit150_rows_skips_and_malformed(tmp_path, tiny_clips):
    lists = _mit_lists(tmp_path)
    src = MiT150(tmp_path / "training", lists, "train", seed=3)
    chosen, left_out = src.class_names[7], next(c for c in src.all_classes if c not in src.class_names)
    _put(tmp_path / "training" / chosen / "yt-abc_1.mp4", tiny_clips["mp4"])
    _put(tmp_path / "training" / left_out / "yt-def_2.mp4", tiny_clips["mp4"])
    (lists / "trainingSet.csv").write_text(
        f"{chosen}/yt-abc_1.mp4,{chosen},3,0\r\n{left_out}/yt-def_2.mp4,{left_out},2,1\r\n"
        f"{chosen}/gone.mp4,{chosen},3,0\r\nflying/x.mp4,flying,3,0\r\n")
    items = list(src.items())
    assert [(it.id, it.label, it.meta["class_seed"]) for it in items if not it.problem] == [
        (f"{chosen}/yt-abc_1.mp4", 7, 3)]
    problems = [it.problem for it in items if it.problem]
    assert problems[0].startswith("trainingSet.csv:3: missing file") and problems[1] == (
        "trainingSet.csv:4: unknown class 'flying'")
    (lists / "trainingSet.csv").write_text(f"{chosen}/yt-abc_1.mp4,{chosen},3,0\nyt-abc_1.mp4\n")
    with pytest.raises(ValueError, match="trainingSet.csv:2: expected '<class>/<file>,<class>"):
        list(src.items())


def _shard_labels(split: Path) -> dict[str, tuple[int, dict]]:
    m = Manifest.load(split)
    out = {}
    for sample in wds.WebDataset([str(split / s.tar) for s in m.shards], shardshuffle=False):
        meta = json.loads(sample["meta.json"])
        out[meta["id"]] = (int(np.frombuffer(sample["label.i32"], "<i4")[0]), meta)
    return out


def test_cli_shard_dataset_diving48_end_to_end(tmp_path):
    clips = [write_clip(tmp_path / "src" / f"c{i}.mp4", render(i, i, 10, 64, 48)) for i in range(3)]
    videos, lists = _diving(tmp_path, clips)
    proc = run_cli("shard", str(videos), "--set", "d48", "--dataset", "diving48", "--lists", str(lists),
                   "--out", str(tmp_path / "shards"), "--short-side", "48")
    assert "skipped v_x.mp4: Diving48_V2_train.json[3]: label 48 outside" in proc.stdout
    split = tmp_path / "shards" / "d48" / "train"  # the split name defaults to the subset
    got = _shard_labels(split)
    assert {k: v[0] for k, v in got.items()} == {"v_0.mp4": 0, "v_1.mp4": 1, "v_2.mp4": 2}
    assert got["v_1.mp4"][1]["class_name"] == "Forward_25som_NoTwis_PIKE" and got["v_1.mp4"][1]["end_frame"] == 8
    assert Manifest.load(split).class_names[0] == "Back_15som_05Twis_FREE"
    bad = run_cli("shard", str(videos), "--set", "d48", "--dataset", "diving48", "--lists", str(lists),
                  "--subset", "val", "--out", str(tmp_path / "shards"), check=False)
    assert bad.returncode == 2 and "Diving48: subset is train or test, got 'val'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_cli_shard_synthetic150_writes_the_asset(tmp_path):
    videos = tmp_path / "sim"
    write_clip(videos / "a3" / "a3_d1_p001_c1_color.avi_v000_r00.mp4", render(1, 0, 10, 64, 48))
    write_clip(videos / "push" / "b3071-Urban-Day-Clear-82_07-MaleCharacter-Kite-w-bc91.mp4", render(2, 0, 10, 64, 48))
    listing = tmp_path / "train.txt"
    listing.write_text("a3/a3_d1_p001_c1_color.avi_v000_r00\npush/b3071-Urban-Day-Clear-82_07-MaleCharacter-Kite-w-bc91\n")
    run_cli("shard", str(videos), "--set", "syn", "--dataset", "synthetic150", "--list", str(listing),
            "--out", str(tmp_path / "shards"), "--short-side", "48", "--strict")
    got = _shard_labels(tmp_path / "shards" / "syn" / "train")
    names = Synthetic150(videos).class_names
    assert {meta["id"]: (label, meta["asset"]) for label, meta in got.values()} == {
        "a3/a3_d1_p001_c1_color.avi_v000_r00": (3, "surreact_uestc"),
        "push/b3071-Urban-Day-Clear-82_07-MaleCharacter-Kite-w-bc91": (names.index("push"), "phav")}
    listed = run_cli("datasets")
    assert listed.stdout.count("\n") == len(DATASETS) and "uav_human" in listed.stdout
    bad = run_cli("shard", str(videos), "--set", "syn", "--dataset", "kinetics", check=False)
    assert bad.returncode == 2 and "unknown dataset 'kinetics'" in bad.stderr


def test_cli_shard_dataset_ucf101_fold_and_subset(tmp_path):
    videos, lists = _ucf(tmp_path)
    run_cli("shard", str(videos), "--set", "ucf", "--dataset", "ucf101", "--lists", str(lists), "--subset", "test",
            "--fold", "1", "--out", str(tmp_path / "shards"), "--short-side", "48", "--strict")
    got = _shard_labels(tmp_path / "shards" / "ucf" / "val")  # the held-out subset goes where recipes read it
    assert {k: v[0] for k, v in got.items()} == {"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi": 0,
                                                 "Archery/v_Archery_g01_c01.avi": 1}
    bad = run_cli("shard", str(videos), "--set", "ucf", "--dataset", "ucf101", "--lists", str(lists), "--fold", "2",
                  "--out", str(tmp_path / "shards"), check=False)
    assert bad.returncode == 2 and "trainlist02.txt: no such annotation file" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "shards" / "ucf" / "train").exists()
