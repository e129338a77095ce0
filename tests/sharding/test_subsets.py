"""`synapt-fast subset`: nested seeded subsets, asset-balanced per-class picks, label remapping,
byte-for-byte copies into verified shards, bias-ranked windows, bad input."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tarfile

import numpy as np
import pytest

from synapt_fast.format.manifest import Manifest
from synapt_fast.synth.sampleclips import SampleSource
from synapt_fast.sharding.pipeline import ShardOptions, shard_source
from synapt_fast.sharding.subsets import SubsetError, bias_windows, read_split, select
from synapt_fast.sharding.transcode import EncodeOptions

from tests.conftest import run_cli

# Per class, the asset of each clip in id order (None: no "asset" key).
ASSETS = {
    0: ["a"] * 4 + ["b"] * 4,
    1: ["a"] * 1 + ["b"] * 7,  # asset a runs short of an equal share
    2: [None] * 8,
    3: ["a"] * 3 + ["b"] * 3 + ["c"] * 2,
}


class AssetSource(SampleSource):
    """Rendered clips whose meta carries an `asset`, as the synthetic set's would."""

    def items(self):
        for item in super().items():
            asset = ASSETS[item.label][int(item.id.rsplit("/", 1)[1])]
            yield item if asset is None else dataclasses.replace(item, meta={"asset": asset})


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    out = tmp_path_factory.mktemp("subsets") / "assets" / "train"
    shard_source(AssetSource(4, 8, 8, width=32, height=32), out, ShardOptions("assets", "train", max_count=10),
                 EncodeOptions(short_side=0))
    return out


def _ids(sel):
    return [s.meta["id"] for s in sel.samples]


def test_subsets_are_nested_prefixes_and_seeded(src):
    manifest, samples = read_split(src)
    for seed in (0, 1, 2):
        c2, c3, c4 = (select(manifest, samples, seed=seed, num_classes=n) for n in (2, 3, 4))
        assert set(c2.class_names) < set(c3.class_names) < set(c4.class_names)
        assert c4.class_names == manifest.class_names  # labels follow the source's class order
        k2, k4, k6 = (select(manifest, samples, seed=seed, num_classes=3, per_class=k) for k in (2, 4, 6))
        assert set(_ids(k2)) < set(_ids(k4)) < set(_ids(k6))
        assert len(_ids(k2)) == 6 and len(_ids(k6)) == 18
    again = select(manifest, samples, seed=1, num_classes=2, per_class=3)
    assert _ids(again) == _ids(select(manifest, samples, seed=1, num_classes=2, per_class=3))
    picks = {tuple(_ids(select(manifest, samples, seed=s, num_classes=4, per_class=3))) for s in range(5)}
    assert len(picks) > 1  # the seed matters


def test_per_class_takes_an_equal_share_of_each_asset(src):
    manifest, samples = read_split(src)
    sel = select(manifest, samples, seed=0, per_class=4)
    assert sel.assets["class_00"] == {"a": 2, "b": 2}
    assert sel.assets["class_01"] == {"a": 1, "b": 3}  # b fills what a lacks ...
    assert any(line.startswith("class_01: asset a has 1") for line in sel.short)  # ... and it is recorded
    assert sel.assets["class_02"] == {"None": 4}
    assert sorted(sel.assets["class_03"].values()) == [1, 1, 2]  # 4 over 3 assets: round-robin
    assert sorted(select(manifest, samples, seed=3, per_class=6).assets["class_03"].values()) == [2, 2, 2]
    assert not [s for s in sel.short if not s.startswith("class_01")]


def _members(split):
    """{meta id: (label, video bytes, meta)} over every tar of a split."""
    m = Manifest.load(split)
    out = {}
    for shard in m.shards:
        with tarfile.open(split / shard.tar) as tf:
            files = {x.name: tf.extractfile(x).read() for x in tf.getmembers()}
        for name, data in files.items():
            if name.endswith(".meta.json"):
                key = name.split(".")[0]
                meta = json.loads(data)
                label = int(np.frombuffer(files[f"{key}.label.i32"], "<i4")[0])
                out[meta["id"]] = (label, files[f"{key}.{m.video_ext}"], meta)
    return m, out


def test_cli_copies_members_remaps_labels_and_verifies(src, tmp_path):
    out = tmp_path / "small" / "train"
    proc = run_cli("subset", str(src), str(out), "--classes", "2", "--per-class", "3", "--seed", "5")
    assert "2 classes, 6 samples" in proc.stdout
    assert "ok" in run_cli("verify", str(out)).stdout
    sub, got = _members(out)
    _, source = _members(src)
    info = json.loads((out / "subset.json").read_text())
    assert sub.class_names == info["class_names"] and len(got) == 6 and sub.set == "small"
    for sample_id, (label, video, meta) in got.items():
        old_label, old_video, _ = source[sample_id]
        assert video == old_video  # copied, not re-encoded
        assert info["label_map"][str(old_label)] == label == meta["label"]
        assert sub.class_names[label] == meta["class_name"]
    assert sorted(label for label, _, _ in got.values()) == [0, 0, 0, 1, 1, 1]

    # The val split takes the train subset's classes, all samples by default.
    val = tmp_path / "small" / "val"
    run_cli("subset", str(src), str(val), "--classes-from", str(out / "subset.json"))
    assert Manifest.load(val).class_names == sub.class_names and Manifest.load(val).num_samples == 16

    again = run_cli("subset", str(src), str(out), "--classes", "2", check=False)
    assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr
    run_cli("subset", str(src), str(out), "--classes", "3", "--overwrite")
    assert len(Manifest.load(out).class_names) == 3 and not list(tmp_path.glob("small/*.partial"))


def test_truncated_source_shard_is_named_and_nothing_is_written(src, tmp_path):
    bad = tmp_path / "bad" / "train"
    shutil.copytree(src, bad)
    tar = bad / Manifest.load(bad).shards[1].tar
    tar.write_bytes(tar.read_bytes()[:3000])
    out = tmp_path / "out" / "train"
    proc = run_cli("subset", str(bad), str(out), "--classes", "2", check=False)
    assert proc.returncode == 2 and tar.name in proc.stderr and "truncated" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.parent.exists()
    with pytest.raises(SubsetError, match="source has 4 classes"):
        select(*read_split(src), num_classes=5)


def test_bias_windows_are_evenly_spaced_over_the_ranking():
    acc = {f"c{i}": (9 - i) / 10 for i in range(10)}  # c9 is the least biased
    windows = bias_windows(acc, k=4, count=3)
    assert [w["rank_start"] for w in windows] == [0, 3, 6]
    assert windows[0]["classes"] == ["c9", "c8", "c7", "c6"] and windows[-1]["classes"] == ["c3", "c2", "c1", "c0"]
    means = [w["mean_probe_accuracy"] for w in windows]
    assert means == sorted(means) and means[0] == pytest.approx(0.15)
    assert windows[-1]["bias_estimate"] == pytest.approx(np.log2(0.75 * 4))
    with pytest.raises(SubsetError, match="at most 7 distinct windows"):
        bias_windows(acc, k=4, count=8)
    with pytest.raises(SubsetError, match="--k 11"):
        bias_windows(acc, k=11, count=1)


def test_bias_ranked_cli_writes_one_verified_split_per_window(src, tmp_path):
    probe = {"per_class_train_cv_accuracy": {"class_00": 0.9, "class_01": 0.1, "class_02": 0.5, "class_03": 0.3}}
    (tmp_path / "bias.json").write_text(json.dumps(probe))
    proc = run_cli("subset", str(src), str(tmp_path / "hm" / "train"), "--bias-ranked", str(tmp_path / "bias.json"),
                   "--k", "2", "--count", "3")
    assert proc.stdout.count("2 classes") == 3
    got = [json.loads((tmp_path / f"hm_w{i:02d}" / "train" / "subset.json").read_text()) for i in range(3)]
    assert [sorted(g["class_names"]) for g in got] == [["class_01", "class_03"], ["class_02", "class_03"],
                                                       ["class_00", "class_02"]]
    assert [g["mean_probe_accuracy"] for g in got] == pytest.approx([0.2, 0.4, 0.7])
    assert "ok" in run_cli("verify", str(tmp_path / "hm_w02" / "train")).stdout
