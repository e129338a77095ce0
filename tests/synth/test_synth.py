"""The synthetic generator: determinism, every class renders, classes are learnable and
distinct, downstream label sets are disjoint, and the bias knob does what it says."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import struct
import zlib

import numpy as np
import pytest

from synapt_fast.sharding.contact_sheet import contact_sheet, encode_png
from synapt_fast.synth.motions import class_pose, downstream_class_names, pretrain_class_names
from synapt_fast.synth.probe import probe_source
from synapt_fast.synth.render import render_clip, render_clip_with_mask
from synapt_fast.synth.skeleton import JOINTS, forward_kinematics, sample_body
from synapt_fast.synth import build
from synapt_fast.synth.sources import DownstreamSource, SynthSource, downstream_suite, render_frames


def _render_item(item):
    return item.render().array


# ---- determinism ------------------------------------------------------------------------

def test_same_seed_same_bytes_in_any_order_and_process():
    src = SynthSource(3, 2, frames=8, size=48, seed=7)
    items = list(src.items())
    first = [it.render().array.tobytes() for it in items]
    again = [it.render().array.tobytes() for it in reversed(items)][::-1]
    assert first == again
    # A spawned worker (what the shard writer uses) renders the same bytes from pickled items.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        remote = pool.map(_render_item, [pickle.loads(pickle.dumps(it)) for it in items])
    assert [r.tobytes() for r in remote] == first
    assert len(set(first)) == len(first)  # every clip differs from every other


def test_different_seed_split_or_index_gives_different_clips():
    name = pretrain_class_names()[0]
    base = render_clip(name, 0, 0, 0, 8, 48)
    assert base.dtype == np.uint8 and base.shape == (8, 48, 48, 3)
    for args in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
        other = render_clip(name, *args, 8, 48)
        assert np.abs(other.astype(int) - base).mean() > 5


def test_subsets_are_nested():
    # The paper's 30/90/150-class and 250/750/1000-per-class subsets nest: same names, same clips.
    small, big = SynthSource(30, 2, frames=4, size=32), SynthSource(90, 3, frames=4, size=32)
    assert big.class_names[:30] == small.class_names
    a = next(small.items())
    b = next(big.items())
    assert a.id == b.id and np.array_equal(a.render().array, b.render().array)


# ---- classes ----------------------------------------------------------------------------

def test_grammar_has_enough_unique_classes_and_disjoint_downstream():
    pre, down = pretrain_class_names(), downstream_class_names()
    assert len(pre) >= 150 and len(set(pre)) == len(pre)
    assert len(down) >= 48 and len(set(down)) == len(down)
    assert not set(pre) & set(down)
    suite = downstream_suite((0.0, 0.5, 1.0), num_classes=20, clips_per_class=1)
    for task in suite.values():
        assert not set(task.class_names) & set(SynthSource(len(pre), 1).class_names)
        assert task.class_names == suite["down_b000"].class_names
    second = DownstreamSource(20, 1, class_offset=20)
    assert not set(second.class_names) & set(suite["down_b000"].class_names)
    with pytest.raises(ValueError):
        SynthSource(len(pre) + 1, 1)
    with pytest.raises(ValueError):
        DownstreamSource(3, 1, bias=1.5)


@pytest.mark.parametrize("names", [pretrain_class_names(), downstream_class_names()],
                         ids=["pretrain", "downstream"])
def test_every_class_renders_with_the_actor_in_view(names):
    for i, name in enumerate(names):
        frames, mask = render_clip_with_mask(name, 0, 0, i, 8, 32)
        coverage = mask.mean(axis=(1, 2))
        # The actor is on screen in every frame, neither a speck nor filling the frame.
        assert coverage.min() > 0.02 and coverage.max() < 0.6, (name, coverage)
        assert frames.std() > 10, name  # not a flat image
        # It moves: the actor's silhouette changes over the clip.
        assert (mask[1:] != mask[:-1]).mean() > 0.001, name


def _pose_features(name: str, index: int) -> np.ndarray:
    """Body-frame joint statistics of one clip: mean pose, spread and speed per joint."""
    rng = np.random.default_rng([index, 99])
    joints = forward_kinematics(sample_body(rng), class_pose(name, 32, rng))
    rel = joints - joints[:, :1] * np.array([1, 0, 1])  # relative to the pelvis on the floor
    speed = np.abs(np.diff(rel, axis=0)).mean(axis=0)
    return np.concatenate([rel.mean(0).ravel(), rel.std(0).ravel(), 8 * speed.ravel()])


def test_classes_are_distinct_and_learnable_from_motion():
    """Nearest class mean on body-frame motion statistics recognises held-out clips of all
    238 pre-training classes (chance is 0.4 %)."""
    names = pretrain_class_names()
    feats = np.array([[_pose_features(n, i) for i in range(6)] for n in names])  # (C, 6, F)
    assert feats.shape[-1] == 3 * 3 * len(JOINTS)
    centroids = feats[:, :4].mean(axis=1)
    test = feats[:, 4:].reshape(-1, feats.shape[-1])
    truth = np.repeat(np.arange(len(names)), 2)
    pred = ((test[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (pred == truth).mean() > 0.85
    # Every pair of class means is apart by more than the clips of one class spread.
    d = np.sqrt(((centroids[:, None] - centroids[None]) ** 2).sum(-1))
    within = np.sqrt(((feats[:, :4] - centroids[:, None]) ** 2).sum(-1)).mean()
    assert np.min(d + np.eye(len(names)) * 1e9) > 0.5 * within


def _silhouette_features(mask: np.ndarray) -> np.ndarray:
    """Rendered-pixel motion statistics of one clip from the actor's silhouette: how much of
    it changes per frame, how much its height, width and area vary, its mean aspect."""
    area = mask.mean(axis=(1, 2)) + 1e-6
    h, w = mask.any(2).sum(1), mask.any(1).sum(1)
    change = (mask[1:] ^ mask[:-1]).mean(axis=(1, 2)) / area[1:]
    return np.array([change.mean(), h.std() / h.mean(), w.std() / w.mean(), (w / h).mean(),
                     area.std() / area.mean()])


def test_pixel_motion_statistics_differ_between_classes():
    """In rendered pixels too (random camera, body and timing), per-class mean motion
    statistics differ far more between classes than between clips of a class, and recognise
    held-out clips well above chance."""
    names = pretrain_class_names()[:12]
    feats = np.array([[_silhouette_features(render_clip_with_mask(n, 3, 0, i, 16, 48)[1])
                       for i in range(8)] for n in names])  # (C, 8, F)
    ratio = feats.mean(1).var(0) / feats.var(1).mean(0)
    assert ratio.max() > 5, ratio
    scale = feats.reshape(-1, feats.shape[-1]).std(0)
    centroids = feats[:, :5].mean(1) / scale
    test = feats[:, 5:].reshape(-1, feats.shape[-1]) / scale
    pred = ((test[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (pred == np.repeat(np.arange(len(names)), 3)).mean() > 3 / len(names)


# ---- bias ---------------------------------------------------------------------------------

def _one_frame_probe(bias: float, n: int = 6, per: int = 12, size: int = 48) -> float:
    """Still-frame probe accuracy: 8 clips per class fit class centroids, 4 test."""
    return probe_source(DownstreamSource(n, per, bias=bias, frames=4, size=size), fit_per_class=8)


def test_bias_knob_controls_how_much_one_still_frame_reveals():
    low, high = _one_frame_probe(0.0), _one_frame_probe(1.0)
    assert low < 0.4  # chance is 1/6
    assert high > 0.7
    assert high - low > 0.4


def test_bias_sets_the_share_of_label_contexts_and_only_the_scene_changes():
    n, per = 5, 40
    shares = {}
    for bias in (0.0, 0.5, 1.0):
        src = DownstreamSource(n, per, bias=bias)
        ctx = np.array([[src.context_of(c, i) for i in range(per)] for c in range(n)])
        shares[bias] = (ctx == np.arange(n)[:, None]).mean()
    assert shares[1.0] == 1.0
    assert abs(shares[0.5] - (0.5 + 0.5 / n)) < 0.12
    assert abs(shares[0.0] - 1 / n) < 0.12
    # Same class and index at two biases: the same actor and motion (the actor mask matches
    # wherever no prop covers it), only the background differs.
    lo = DownstreamSource(n, 20, bias=0.0, frames=4, size=48)
    hi = DownstreamSource(n, 20, bias=1.0, frames=4, size=48)
    i = next(i for i in range(20) if lo.context_of(1, i) != hi.context_of(1, i))
    args = (lo.class_names[1], 0, lo.stream, i, 4, 48)
    a_frames, a_mask = render_clip_with_mask(*args, lo.context_of(1, i))
    b_frames, b_mask = render_clip_with_mask(*args, hi.context_of(1, i))
    assert (a_mask == b_mask).mean() > 0.97
    assert np.abs(a_frames.astype(int) - b_frames).mean() > 5



def test_pretraining_bias_gives_classes_their_own_scene_and_zero_leaves_clips_unchanged():
    n, per = 5, 40
    plain, biased = SynthSource(n, per, frames=4, size=32), SynthSource(n, per, frames=4, size=32, bias=0.8)
    assert all(plain.context_of(c, i) is None for c in range(n) for i in range(per))
    ctx = np.array([[biased.context_of(c, i) for i in range(per)] for c in range(n)])
    assert abs((ctx == np.arange(n)[:, None]).mean() - (0.8 + 0.2 / n)) < 0.12
    first = next(plain.items())
    assert "bias" not in first.meta  # unbiased sets keep their metadata and bytes
    assert np.array_equal(first.render().array, render_frames(plain.class_names[0], 0, 0, 0, 4, 32, None, 30.0).array)
    assert next(biased.items()).meta["bias"] == 0.8
    with pytest.raises(ValueError, match="bias"):
        SynthSource(3, 1, bias=-0.1)


def test_per_class_bias_ramp_orders_classes_by_how_much_the_scene_reveals():
    n, per = 6, 60
    ramp = [i / (n - 1) for i in range(n)]
    src = DownstreamSource(n, per, bias=ramp)
    own = [np.mean([src.context_of(c, i) == c for i in range(per)]) for c in range(n)]
    assert own[-1] == 1.0 and own[0] < 0.4
    assert np.corrcoef(ramp, own)[0, 1] > 0.9
    assert [it.meta["bias"] for it in src.items()][::per] == ramp
    with pytest.raises(ValueError, match="one such value per class"):
        DownstreamSource(n, 1, bias=[0.5] * (n - 1))
    jobs = build.plan(classes=2, clips_per_class=1, val_clips_per_class=0, downstream_classes=3,
                      downstream_clips_per_class=2, downstream_val_clips_per_class=1, biases=[0.0],
                      frames=4, size=32, fps=30.0, seed=0, pretrain_bias=0.5, ramp_classes=4)
    names = [(j.set_name, j.split) for j in jobs]
    assert names == [("synth2", "train"), ("down_b000", "train"), ("down_b000", "val"),
                     ("down_ramp", "train"), ("down_ramp", "val")]
    assert jobs[0].source.bias == 0.5 and jobs[-1].source.biases == [0.0, 1 / 3, 2 / 3, 1.0]


# ---- sources and outputs ------------------------------------------------------------------

def test_source_items_follow_the_source_interface():
    src = SynthSource(4, 3, frames=6, size=40, split="val", fps=25.0)
    items = list(src.items())
    assert len(items) == len(src) == 12
    assert len({it.id for it in items}) == 12 and all("." not in it.id for it in items)
    assert {it.label for it in items} == set(range(4))
    frames = items[0].render()
    assert frames.fps == 25.0 and frames.array.shape == (6, 40, 40, 3)
    assert all(src.class_names[it.label] == it.class_name for it in items)


def test_png_writer_round_trips_and_contact_sheet_tiles():
    clips = [render_clip(n, 0, 0, 0, 8, 32) for n in pretrain_class_names()[:3]]
    sheet = contact_sheet(clips, labels=["a", "b", "c"], frames_per_clip=4)
    assert sheet.dtype == np.uint8 and sheet.shape[1] >= 4 * 32 and sheet.shape[0] >= 3 * 32
    assert np.array_equal(sheet[11:43, 2:34], clips[0][0])  # first frame of the first clip
    png = encode_png(sheet)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    assert (h, w) == sheet.shape[:2]
    idat_len = struct.unpack(">I", png[33:37])[0]
    raw = zlib.decompress(png[41:41 + idat_len])
    rows = np.frombuffer(raw, np.uint8).reshape(h, 1 + 3 * w)
    assert (rows[:, 0] == 0).all() and np.array_equal(rows[:, 1:].reshape(h, w, 3), sheet)


def test_files_output_decodes(tmp_path):
    pytest.importorskip("synapt_fast.sharding.transcode")
    import av

    from synapt_fast.synth.files import write_files

    summary = write_files(SynthSource(2, 1, frames=8, size=32), tmp_path)
    assert summary["clips"] == 2
    files = sorted(tmp_path.rglob("*.ivf"))
    assert len(files) == 2 and files[0].parent.name in SynthSource(2, 1).class_names
    with av.open(str(files[0])) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 8 and decoded[0].shape == (32, 32, 3)
    assert (tmp_path / "classes.txt").read_text().split() == SynthSource(2, 1).class_names


def test_shards_through_the_shard_writer(tmp_path):
    pytest.importorskip("synapt_fast.sharding")
    from synapt_fast.synth import build
    from synapt_fast.sharding.transcode import decode_all

    jobs = build.plan(classes=2, clips_per_class=2, val_clips_per_class=0, downstream_classes=2,
                      downstream_clips_per_class=1, downstream_val_clips_per_class=0,
                      biases=[0.9], frames=8, size=32, fps=30.0, seed=0)
    assert [(j.set_name, j.split) for j in jobs] == [("synth2", "train"), ("down_b090", "train")]
    summaries = build.write(jobs, tmp_path, workers=1)
    assert [s["samples"] for s in summaries] == [4, 2]
    manifest = json.loads((tmp_path / "synth2" / "train" / "manifest.json").read_text())
    assert manifest["class_names"] == jobs[0].source.class_names and manifest["num_samples"] == 4
    import tarfile

    tar = next((tmp_path / "synth2" / "train").glob("*.tar"))
    with tarfile.open(tar) as t:
        video = next(m for m in t.getmembers() if m.name.endswith(".ivf"))
        frames = decode_all(t.extractfile(video).read())
    assert frames.shape == (8, 32, 32, 3)
    info = json.loads((tmp_path / "down_b090" / "synth.json").read_text())
    assert info["train"]["bias"] == 0.9


def test_cli_writes_pretraining_and_downstream_sets(tmp_path):
    pytest.importorskip("synapt_fast.sharding")
    from typer.testing import CliRunner

    from synapt_fast.cli import app

    args = ["synth", str(tmp_path), "--classes", "2", "--clips-per-class", "1", "--val-clips-per-class", "1",
            "--downstream-classes", "2", "--downstream-clips-per-class", "1",
            "--downstream-val-clips-per-class", "0", "--bias", "0,1", "--frames", "4", "--size", "32",
            "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for split_dir in ("synth2/train", "synth2/val", "down_b000/train", "down_b100/train"):
        manifest = json.loads((tmp_path / split_dir / "manifest.json").read_text())
        assert manifest["num_samples"] == 2
    assert not (tmp_path / "down_b000" / "val").exists()
    out = tmp_path / "files"
    files = CliRunner().invoke(app, ["synth", str(out), "--format", "files", "--classes", "2",
                                     "--clips-per-class", "1", "--val-clips-per-class", "0",
                                     "--downstream-classes", "0", "--frames", "4", "--size", "32",
                                     "--workers", "1"])
    assert files.exit_code == 0, files.output
    assert len(list((out / "synth2" / "train").rglob("*.ivf"))) == 2


def test_variation_narrows_the_nuisance_spread():
    """At lower variation the camera, body and placement vary less: the actor's silhouettes in
    different clips of a class overlap more. Out-of-range values are refused."""
    name = pretrain_class_names()[5]

    def overlap(v: float) -> float:
        masks = [render_clip_with_mask(name, 0, 0, i, 4, 48, None, v)[1][0] for i in range(6)]
        ious = [(a & b).sum() / max((a | b).sum(), 1) for j, a in enumerate(masks) for b in masks[j + 1:]]
        return float(np.mean(ious))

    assert overlap(0.0) > overlap(1.0) + 0.15
    src = SynthSource(2, 1, frames=4, size=32, variation=0.3)
    assert next(src.items()).meta["variation"] == 0.3
    with pytest.raises(ValueError):
        render_clip(name, 0, 0, 0, 4, 32, None, 1.5)
