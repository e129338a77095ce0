"""`synapt-fast shard`: round trips through webdataset and DALI, determinism, resume, parts,
list files and every kind of bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import webdataset as wds

from synapt_fast.format.manifest import Manifest
from synapt_fast.synth.sampleclips import make_folder, render, write_clip
from synapt_fast.sharding.pipeline import ShardOptions, merge_parts, shard_source
from synapt_fast.sharding.sources import FolderSource, ListSource
from synapt_fast.sharding.transcode import decode_all

from tests.conftest import run_cli


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.suffix in (".tar", ".idx", ".json")}


def test_round_trip_with_plain_webdataset(vp9_split, clip_folder):
    m = Manifest.load(vp9_split)
    assert m.num_samples == 9 and len(m.shards) == 3 and m.class_counts == {f"class_{i:02d}": 3 for i in range(3)}
    seen = []
    urls = [str(vp9_split / s.tar) for s in m.shards]
    for sample in wds.WebDataset(urls, shardshuffle=False):
        meta = json.loads(sample["meta.json"])
        label = int(np.frombuffer(sample["label.i32"], "<i4")[0])
        nframes = int(np.frombuffer(sample["nframes.i32"], "<i4")[0])
        frames = decode_all(sample["ivf"])
        assert meta["class_name"] == m.class_names[label] and meta["id"].startswith(meta["class_name"])
        assert nframes == len(frames) == 30  # 1 s at 25 fps resampled to 30 fps
        assert frames.shape[1:] == (128, 170, 3)
        # Content: the stored clip matches the source clip resized the same way.
        with av.open(str(clip_folder / meta["id"])) as c:
            first = next(c.decode(video=0)).reformat(width=170, height=128, format="rgb24").to_ndarray()
        assert np.abs(frames[0].astype(float) - first).mean() < 6
        seen.append(meta["id"])
    assert sorted(seen) == sorted(p.relative_to(clip_folder).as_posix() for p in clip_folder.rglob("*.mp4"))


def test_every_shard_mixes_classes(vp9_split):
    m = Manifest.load(vp9_split)
    labels_per_shard = []
    for s in m.shards:
        labels = {int(np.frombuffer(x["label.i32"], "<i4")[0]) for x in wds.WebDataset(str(vp9_split / s.tar), shardshuffle=False)}
        labels_per_shard.append(labels)
    assert sum(len(ls) > 1 for ls in labels_per_shard) >= 2


def test_round_trip_with_dali_cpu_reader_and_decoder(vp9_split):
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    m = Manifest.load(vp9_split)

    @pipeline_def(batch_size=3, num_threads=1, device_id=None)
    def pipe():
        video, label, nframes, meta = fn.readers.webdataset(
            paths=[str(vp9_split / s.tar) for s in m.shards], index_paths=[str(vp9_split / s.index) for s in m.shards],
            ext=["ivf", "label.i32", "nframes.i32", "meta.json"],
            dtypes=[types.UINT8, types.INT32, types.INT32, types.UINT8], name="r")
        return fn.decoders.video(video, device="cpu"), label, nframes, meta

    p = pipe()
    p.build()
    got = {}
    for _ in range(3):
        frames, label, nframes, meta = p.run()
        for i in range(len(frames)):
            info = json.loads(bytes(np.array(meta[i])).decode())
            arr = np.array(frames[i])
            got[info["id"]] = (int(np.array(label[i])[0]), int(np.array(nframes[i])[0]), arr)
    assert len(got) == 9
    for clip_id, (label, nframes, arr) in got.items():
        assert m.class_names[label] == clip_id.split("/")[0]
        assert arr.shape == (nframes, 128, 170, 3)
        assert arr.mean() > 20  # real picture, not black padding


def test_same_inputs_same_bytes_for_any_worker_count(clip_folder, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shard_source(FolderSource(clip_folder), a, ShardOptions("d", "train", max_count=4, workers=1))
    shard_source(FolderSource(clip_folder), b, ShardOptions("d", "train", max_count=4, workers=2))
    assert _files(a) == _files(b) and len(_files(a)) == 7  # 3 tars + 3 idx + manifest


def test_size_rolling(clip_folder, tmp_path):
    out = tmp_path / "s"
    shard_source(FolderSource(clip_folder), out, ShardOptions("d", "train", max_mb=0.05))
    m = Manifest.load(out)
    assert len(m.shards) > 1 and sum(s.samples for s in m.shards) == 9
    assert all(s.bytes <= 0.05e6 or s.samples == 1 for s in m.shards)


def test_parts_write_disjoint_shards_and_merge(clip_folder, tmp_path):
    out = tmp_path / "p"
    for part in range(2):
        shard_source(FolderSource(clip_folder), out, ShardOptions("d", "train", max_count=2, num_parts=2, part=part))
    assert not (out / "manifest.json").exists()
    merged = merge_parts(out)
    names = [s.tar for s in merged.shards]
    assert len(names) == len(set(names)) and merged.num_samples == 9
    assert any(n.startswith("d-train-01") for n in names)  # part 1 starts at index 10000
    whole = tmp_path / "w"
    shard_source(FolderSource(clip_folder), whole, ShardOptions("d", "train"))
    assert merged.class_counts == Manifest.load(whole).class_counts
    run_cli("verify", str(out))


def test_sampling_picks_the_gop_and_the_manifest_records_both(clip_folder, tmp_path):
    """`shard --codec vp9 --sampling segments` makes GOP 8 shards (sparse sampling decodes about
    half a GOP per sampled frame); an explicit --gop wins; an unknown mode is refused by name. The
    default codec (MJPEG) has every frame a keyframe, and records GOP 1 whatever is asked."""
    vp9 = ["--codec", "vp9"]
    for args, gop, sampling in (([*vp9, "--sampling", "segments"], 8, "segments"),
                                ([*vp9, "--sampling", "dense"], 32, "dense"),
                                ([*vp9, "--sampling", "uniform", "--gop", "4"], 4, "uniform"), (vp9, 32, None),
                                ([], 1, None), (["--sampling", "segments", "--gop", "8"], 1, "segments")):
        out = tmp_path / f"g{gop}{sampling}{len(args)}"
        run_cli("shard", str(clip_folder), "--set", "g", "--out", str(out), *args)
        m = Manifest.load(out / "g" / "train")
        assert (m.encoding["gop"], m.encoding["sampling"], m.format_version) == (gop, sampling, 3), args
        for sample in wds.WebDataset([str(out / "g" / "train" / m.shards[0].tar)], shardshuffle=False):
            keys = np.frombuffer(sample["keyframes.i32"], "<i4").reshape(-1, 2)[:, 0]
            n = int(np.frombuffer(sample["nframes.i32"], "<i4")[0])
            assert keys.tolist() == list(range(0, n, gop)), (args, keys)
    proc = run_cli("shard", str(clip_folder), "--set", "g", "--out", str(tmp_path / "bad"), "--sampling", "tsn",
                   check=False)
    assert proc.returncode != 0 and "sampling must be one of ['dense', 'segments', 'uniform'], got 'tsn'" in \
        proc.stdout + proc.stderr


def test_list_file_sources(clip_folder, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("class_00\nclass_01\nclass_02\n")
    lines = ["class_00/clip_000.mp4 0", "class_01/clip_000.mp4;1", "class_02/clip_001.mp4   2",
             "class_02/clip_001.mp4 2", "class_00/nope.mp4 0", "class_01/clip_001.mp4 7"]
    lst = tmp_path / "list.txt"
    lst.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    src = ListSource(lst, clip_folder, ["class_00", "class_01", "class_02"])
    out = tmp_path / "o"
    summary = shard_source(src, out, ShardOptions("l", "train"))
    assert summary.samples == 3
    reasons = {s["id"]: s["reason"] for s in Manifest.load(out).skipped}
    assert "duplicate" in reasons["class_02/clip_001.mp4"]
    assert "missing file" in reasons["class_00/nope.mp4"] and "list.txt:5" in reasons["class_00/nope.mp4"]
    assert "label 7 outside" in reasons["class_01/clip_001.mp4"]
    # Class names as labels, and an unknown one.
    named = tmp_path / "named.txt"
    named.write_text("class_00/clip_000.mp4 class_00\nclass_01/clip_000.mp4 class_01\nclass_02/clip_000.mp4 walking\n")
    proc = run_cli("shard", str(clip_folder), "--set", "n", "--list", str(named), "--classes", str(classes),
                   "--out", str(tmp_path / "n"), "--json", "-")
    summary = json.loads(proc.stdout)
    assert summary["samples"] == 2 and "unknown class 'walking'" in summary["skipped_items"][0]["reason"]
    # Integer labels without a class file are refused with a message naming the file.
    proc = run_cli("shard", str(clip_folder), "--set", "x", "--list", str(lst), "--out", str(tmp_path / "x"), check=False)
    assert proc.returncode == 2 and "list.txt" in proc.stderr and "--classes" in proc.stderr


def _make_bad_inputs(root: Path) -> dict[str, str]:
    """Every kind of bad input beside one good clip per class; returns file -> expected reason."""
    make_folder(root, num_classes=2, per_class=1, seconds=1.0)
    bad = root / "class_00"
    good_webm = write_clip(bad / "tmp_good.webm", render(0, 5, 60, 160, 120)).read_bytes()
    good_avi = write_clip(bad / "tmp_good.avi", render(0, 6, 20, 160, 120)).read_bytes()
    (bad / "tmp_good.webm").unlink()
    (bad / "tmp_good.avi").unlink()
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "notes.mp4").write_text("this is not a video\n" * 20)
    (bad / "unreadable.mp4").symlink_to(root / "does-not-exist.mp4")
    (bad / "truncated.webm").write_bytes(good_webm[: len(good_webm) * 6 // 10])
    corrupt = bytearray(good_webm)
    mid = len(corrupt) // 2
    corrupt[mid:mid + 1500] = np.random.default_rng(0).integers(0, 256, 1500, dtype=np.uint8).tobytes()
    (bad / "corrupt.webm").write_bytes(bytes(corrupt))
    (bad / "unknown_codec.avi").write_bytes(good_avi.replace(b"MJPG", b"ZZZZ"))
    # A well-formed AVI whose video stream holds no frames.
    with av.open(str(bad / "no_frames.avi"), "w") as out:
        stream = out.add_stream("mjpeg", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuvj420p"
        out.start_encoding()
    with av.open(str(bad / "audio_only.webm"), "w") as out:
        stream = out.add_stream("libopus", rate=48000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.float32), format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48000, i * 960
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)
    return {
        "class_00/empty.mp4": "empty file",
        "class_00/notes.mp4": "not a readable video container",
        "class_00/unreadable.mp4": "cannot read file",
        "class_00/truncated.webm": "truncated",
        "class_00/corrupt.webm": "",  # truncated or corrupt, depending on where the damage lands
        "class_00/unknown_codec.avi": "no decoder",
        "class_00/no_frames.avi": "no decodable video frames",
        "class_00/audio_only.webm": "no video stream",
    }


def test_bad_inputs_are_skipped_with_reasons(tmp_path):
    expected = _make_bad_inputs(tmp_path / "src")
    out = tmp_path / "out"
    proc = run_cli("shard", str(tmp_path / "src"), "--set", "b", "--out", str(out), "--json", str(tmp_path / "s.json"),
                   "--workers", "2")
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["samples"] == 2 and summary["skipped"] == len(expected)
    reasons = {s["id"]: s["reason"] for s in Manifest.load(out / "b" / "train").skipped}
    assert set(reasons) == set(expected)
    for clip, want in expected.items():
        assert want in reasons[clip], (clip, reasons[clip])
    assert "corrupt" in reasons["class_00/corrupt.webm"] or "truncated" in reasons["class_00/corrupt.webm"]
    assert "skipped class_00/empty.mp4" in proc.stdout
    run_cli("verify", str(out / "b"), "--decode")  # what was packed is sound
    # --strict turns skips into failure; an unknown class folder is a skip too.
    strict = run_cli("shard", str(tmp_path / "src"), "--set", "b", "--out", str(tmp_path / "o2"), "--strict", check=False)
    assert strict.returncode != 0 and "--strict" in strict.stderr


def test_unknown_class_folder_is_skipped(clip_folder, tmp_path):
    src = FolderSource(clip_folder, class_names=["class_00", "class_01"])
    summary = shard_source(src, tmp_path / "o", ShardOptions("u", "train"))
    assert summary.samples == 6 and all("unknown class 'class_02'" in s["reason"] for s in summary.skipped_items)


def test_nothing_packable_exits_non_zero(tmp_path):
    (tmp_path / "src" / "a").mkdir(parents=True)
    (tmp_path / "src" / "a" / "x.mp4").write_bytes(b"\x00" * 100)
    proc = run_cli("shard", str(tmp_path / "src"), "--set", "e", "--out", str(tmp_path / "o"), check=False)
    assert proc.returncode != 0 and "nothing could be packed" in proc.stderr


def test_resume_after_kill_ends_byte_identical(tmp_path):
    src = make_folder(tmp_path / "src", num_classes=4, per_class=6, seconds=1.0)
    args = ["shard", str(src), "--set", "k", "--shard-count", "2", "--speed", "good"]
    run_cli(*args, "--out", str(tmp_path / "ref"))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "synapt_fast.cli", *args, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    split = out / "k" / "train"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(split.glob("*.tar"))) < 3:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(split.glob("*.tar"))
    assert 3 <= len(finished) < 12, "the kill should land mid-run"
    assert not (split / "manifest.json").exists()
    # Whatever is under a final name is a complete tar (partial output keeps a .partial suffix).
    for tar in finished:
        assert len(list(wds.WebDataset(str(tar), shardshuffle=False))) == 2
    summary = json.loads(run_cli(*args, "--out", str(out), "--json", "-").stdout)
    assert summary["resumed_shards"] >= 2
    assert _files(split) == _files(tmp_path / "ref" / "k" / "train")
    assert not list(split.glob("*.partial"))


def test_changed_options_refuse_to_resume(clip_folder, tmp_path):
    shard_source(FolderSource(clip_folder), tmp_path, ShardOptions("c", "train"))
    with pytest.raises(RuntimeError, match="different inputs or options"):
        shard_source(FolderSource(clip_folder), tmp_path, ShardOptions("c", "train", seed=1))
    shard_source(FolderSource(clip_folder), tmp_path, ShardOptions("c", "train", seed=1), overwrite=True)
