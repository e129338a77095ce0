"""Measuring a user's own split (`synapt-fast bench loader SPLIT_DIR --recipe R`) and the
benchmark's camera-like clips, on real shards, real DALI pipelines and the real command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from synapt_fast.loader import Sampling
from synapt_fast.loader.throughput import frames_decoded, paired_ratio
from synapt_fast.synth.sampleclips import SampleSource, camera
from synapt_fast.sharding.pipeline import ShardOptions, shard_source
from synapt_fast.sharding.transcode import EncodeOptions

from tests.conftest import run_cli

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tsn_r50_8x1_kinetics150_ft-ucf101.toml"


@pytest.fixture(scope="module")
def long_gop_split(tmp_path_factory) -> Path:
    """4 s VP9 clips (120 frames) at GOP 32: TSN segments leave most of each GOP undecoded."""
    out = tmp_path_factory.mktemp("tp") / "tp" / "train"
    shard_source(SampleSource(2, 3, 120, 160, 128), out, ShardOptions("tp", "train", max_count=3),
                 EncodeOptions(codec="vp9", gop=32))
    return out


def test_frames_decoded_counts_what_each_cut_leaves_the_decoder(long_gop_split):
    s = Sampling("segments", 8)
    frame, clip = (frames_decoded(long_gop_split, s, c) for c in ("frame", "clip"))
    none = frames_decoded(long_gop_split, s, "none")
    assert frame["clips"] == 6 and frame["sampled_per_clip"] == 8
    # Segments 15 frames apart in GOPs of 32: about 8 pieces of half a GOP, against the whole span.
    assert 8 <= frame["decoded_per_clip"] < 0.75 * clip["decoded_per_clip"] <= 0.75 * none["decoded_per_clip"]
    assert frames_decoded(long_gop_split, s, "frame", gop=8)["decoded_per_clip"] < 0.5 * frame["decoded_per_clip"]
    dense = Sampling("dense", 8)
    assert frames_decoded(long_gop_split, dense, "frame")["decoded_per_clip"] == \
        frames_decoded(long_gop_split, dense, "clip")["decoded_per_clip"]  # one run of frames: the same


def test_on_mjpeg_shards_the_decoder_goes_through_only_the_sampled_frames(tmp_path):
    out = tmp_path / "mj" / "train"
    shard_source(SampleSource(2, 2, 120, 160, 128), out, ShardOptions("mj", "train"), EncodeOptions(codec="mjpeg"))
    for s in (Sampling("segments", 8), Sampling("dense", 16, interval=2), Sampling("uniform", 8)):
        assert frames_decoded(out, s, "frame")["decoded_per_clip"] == s.frames_per_clip()
    assert frames_decoded(out, Sampling("dense", 16, interval=2), "clip")["decoded_per_clip"] == 31


def _bench(split: Path, out: Path, *extra: str):
    return run_cli("bench", "loader", str(split), "--recipe", str(RECIPE), "--set", "data.image_size=64",
                   "--set", "data.batch_size=3", "--repeats", "1", "--out-dir", str(out), *extra)


def test_bench_loader_on_a_users_split_measures_stages_and_suggests_shard_settings(long_gop_split, tmp_path):
    proc = _bench(long_gop_split, tmp_path)
    r = json.loads((tmp_path / "loader_split.json").read_text())
    assert r["cut"] == "frame" and r["device"] == "cpu"
    assert set(r["stages"]) == {"decode", "graph", "loader"}
    assert all(v["clips_per_s"] > 0 and v["cpu_ms_per_clip"] > 0 and len(v["runs"]) == 1 for v in r["stages"].values())
    assert r["limited_by"] in ("decode", "augmentation", "hand-over")
    assert set(r["wall_ms_per_clip"]) == {"decode", "augmentation", "hand-over"}
    assert r["frames"]["sampled_per_clip"] == 8
    assert any("--gop 8" in s for s in r["suggestions"]), r["suggestions"]
    assert any("MJPEG: every frame a keyframe" in s for s in r["suggestions"]), r["suggestions"]
    for words in ("decode-only ceiling", "limited by", "suggestion: GOP 32"):
        assert words in proc.stdout, words
    # A format 2 split (no frame table) is cut per clip, and told what re-sharding would give it.
    old = tmp_path / "v2" / "train"
    shutil.copytree(long_gop_split, old)
    m = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps(dict(m, format_version=2)))
    _bench(old, tmp_path / "o2")
    r2 = json.loads((tmp_path / "o2" / "loader_split.json").read_text())
    assert r2["cut"] == "clip" and r2["frames"]["decoded_per_clip"] > r["frames"]["decoded_per_clip"]
    assert any("shard format 2 cannot be cut per sampled frame" in s for s in r2["suggestions"])


def test_bench_loader_on_a_split_needs_a_recipe_and_a_real_split(long_gop_split, tmp_path):
    proc = run_cli("bench", "loader", str(long_gop_split), check=False)
    assert proc.returncode != 0 and "needs --recipe" in proc.stdout + proc.stderr
    proc = run_cli("bench", "loader", str(tmp_path / "nothing"), "--recipe", str(RECIPE), check=False)
    assert proc.returncode != 0 and "no manifest" in proc.stdout + proc.stderr


def test_camera_clips_are_deterministic_moving_and_noisy():
    a, b = camera(2, 1, 12, 96, 64), camera(2, 1, 12, 96, 64)
    assert a.shape == (12, 64, 96, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(a, camera(2, 2, 12, 96, 64))
    diff = np.abs(a[1:].astype(int) - a[:-1]).mean(axis=(1, 2, 3))
    assert (diff > 2).all()  # every frame moves or carries fresh noise: nothing for an encoder to skip
    assert 40 < a.mean() < 215 and a.std() > 15  # textured, neither black nor flat


def test_ratios_pair_the_runs_of_each_repeat():
    # Runs of a committed `bench loader` (3 s dense 32x2, default and decode-only, 5 repeats): the
    # default's slow repeats are not the ceiling's, so the ratio of the two medians (0.732 by
    # clips/s, 0.756 by CPU) pairs unlike repeats; the median of each repeat's ratio does not.
    res = {"default": {"runs": [[133.1, 11.98], [133.1, 12.85], [128.6, 12.64], [172.2, 10.42], [175.1, 10.1]]},
           "decode": {"runs": [[157.8, 10.17], [181.8, 9.06], [169.7, 10.0], [201.3, 8.54], [199.1, 8.68]]}}
    assert paired_ratio(res, "default", "decode") == 0.843
    assert paired_ratio(res, "default", "decode", cpu=True) == 0.82
    res["decode"]["runs"][0] = [0.0, 0.0]  # a run with nothing to divide by is left out
    assert paired_ratio(res, "default", "decode") == 0.807
    assert paired_ratio({"a": {"runs": []}, "b": {"runs": []}}, "a", "b") is None
