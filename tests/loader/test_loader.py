"""The DALI loader and the reference loader on real shards: shapes, parity with PyAV, per-clip
augmentation, short clips, refusals, determinism, resume, and exact DDP epochs under torchrun."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds

from synapt_fast.format.codecs import DecodeDeviceError, cuda_device_count
from synapt_fast.loader import Sampling, Transform, make_loader
from synapt_fast.loader.sampling import numpy_indices
from synapt_fast.format.manifest import Manifest
from synapt_fast.synth.sampleclips import SampleSource
from synapt_fast.sharding.pipeline import ShardOptions, shard_source
from synapt_fast.sharding.transcode import EncodeOptions, decode_all
from synapt_fast.format.verify import ShardError, verify_split

# The DALI loader with each of its sources, and the reference loader.
BACKENDS = ["dali", "dali-seek", "reference"]
RAW = dict(mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255))  # normalisation that keeps pixel values


def loader_for(backend: str, *args, **kw):
    # DALI decodes on the CPU here on every machine: these tests hold the CPU decoder to PyAV's
    # frames; tests/test_gpu_loader.py holds the GPU decoder to the CPU's.
    if backend == "dali-seek":
        return make_loader(*args, backend="dali", source="seek", decode="cpu", **kw)
    return make_loader(*args, backend=backend, source="reader", decode="cpu", **kw) if backend == "dali" else \
        make_loader(*args, backend=backend, **kw)


def _split(root: Path, name: str, source, **encode) -> Path:
    out = root / name / "train"
    shard_source(source, out, ShardOptions(name, "train", max_count=5), EncodeOptions(**{"codec": "vp9", **encode}))
    return out


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    return {
        "main": _split(root, "main", SampleSource(3, 4, 40, 160, 128), gop=8),
        # The slower encoder settings (25 frames of look-ahead) around each keyframe cut.
        "good": _split(root, "good", SampleSource(3, 4, 40, 160, 128), gop=8, speed="good"),
        "static": _split(root, "static", SampleSource(2, 2, 20, 160, 128, static=True)),
        "short": _split(root, "short", SampleSource(2, 2, 3, 160, 128)),
        # Every frame a keyframe: the per-frame cuts give the decoder only the sampled frames.
        "mjpeg": _split(root, "mjpeg", SampleSource(3, 4, 40, 160, 128), codec="mjpeg"),
    }


SHAPE_CASES = [(Sampling("segments", 8), True, None), (Sampling("segments", 4, frames_per_segment=2), False, 1),
               (Sampling("dense", 8, interval=2), True, None), (Sampling("dense", 8, interval=2, num_clips=2), False, 2),
               (Sampling("uniform", 8), False, 1)]
LAYOUTS = [("NCTHW", "float32", 1), ("NTCHW", "float16", 3)]


# Every case on DALI's reader; the other two loaders (slower to start) on a cross-section.
@pytest.mark.parametrize("backend,sampling,train,views,layout,dtype,crops", [
    *[("dali", *case, *lay) for case in SHAPE_CASES for lay in LAYOUTS],
    *[(b, *SHAPE_CASES[i], *LAYOUTS[j]) for b in ("dali-seek", "reference") for i, j in ((0, 0), (2, 1), (3, 1))]])
def test_shapes_layouts_dtypes(splits, backend, sampling, train, views, layout, dtype, crops):
    t = Transform(size=64, layout=layout, dtype=dtype, eval_crops=crops,
                  train_crop="random_resized" if layout == "NTCHW" else "multiscale")
    loader = loader_for(backend, splits["main"], sampling, t, train=train, batch_size=5, workers=1)
    batches = list(loader)
    assert len(batches) == len(loader) == 3 and sum(len(b.label) for b in batches) == 12
    clip = (3, 8, 64, 64) if layout == "NCTHW" else (8, 3, 64, 64)
    b = batches[0]
    expected = (5, *clip) if train else (5, views * crops, *clip)
    assert tuple(b.video.shape) == expected and b.video.dtype == getattr(torch, dtype)
    assert b.label.dtype == b.pos.dtype == torch.int64
    assert torch.isfinite(b.video.float()).all()


def _pyav_reference(split: Path, size: int) -> dict[int, np.ndarray]:
    """pos -> (all frames decoded by PyAV, centre-cropped to `size`, and the frame count)."""
    m = Manifest.load(split)
    out = {}
    for s in wds.WebDataset([str(split / sh.tar) for sh in m.shards], shardshuffle=False):
        f = decode_all(s[m.video_ext]).astype(np.float32)
        h, w = f.shape[1:3]
        y0, x0 = (h - size) // 2, (w - size) // 2
        out[int(np.frombuffer(s["pos.i32"], "<i4")[0])] = f[:, y0:y0 + size, x0:x0 + size]
    return out


# Dense evaluation clips start mid-video, after a keyframe: the DALI reader decodes them from a
# stream cut at that keyframe (`ivf`), and the clips must still be the same frames.
@pytest.mark.parametrize("backend,sampling,split", [
    ("dali", Sampling("segments", 8), "main"), ("dali", Sampling("dense", 8, interval=3), "main"),
    ("dali", Sampling("uniform", 6), "main"), ("dali", Sampling("dense", 4), "good"),
    ("dali", Sampling("dense", 4, num_clips=3), "good"),
    ("dali-seek", Sampling("dense", 8, interval=3), "main"), ("reference", Sampling("segments", 8), "main"),
    ("reference", Sampling("dense", 4), "good"),
    # IBM's evaluation placement, computed in DALI's float32 graph: the same frames as numpy's
    ("dali", Sampling("segments", 8, style="ibm"), "main"),
    ("dali", Sampling("dense", 4, interval=3, num_clips=3, style="ibm"), "good"),
    ("dali", Sampling("segments", 8), "mjpeg"), ("dali", Sampling("dense", 8, interval=2, num_clips=2), "mjpeg"),
    ("dali", Sampling("uniform", 6), "mjpeg")])
def test_frames_equal_pyav_frames_for_the_same_indices(splits, backend, sampling, split):
    t = Transform(size=128, resize_ratio=1.0, layout="NTCHW", **RAW)
    decoded = _pyav_reference(splits[split], 128)
    seen = 0
    for b in loader_for(backend, splits[split], sampling, t, train=False, batch_size=4, workers=1):
        got = b.video.flatten(1, 2).permute(0, 1, 3, 4, 2).numpy()  # B, views x T, H, W, 3
        for clip, pos in zip(got, b.pos.tolist()):
            frames = decoded[pos]
            idx = numpy_indices(sampling, len(frames), train=False).reshape(-1)
            diff = np.abs(clip - frames[idx])
            # DALI converts YUV to RGB with its own rounding and chroma upsampling (sharp colour
            # edges differ most): small differences, no more.
            assert diff.mean() < 3 and np.percentile(diff, 95) < 8, (backend, pos, diff.mean())
            # Each frame is closest to the PyAV frame of the same index (not a neighbour).
            for k, frame in enumerate(clip):
                dist = np.abs(frames - frame).mean(axis=(1, 2, 3))
                assert dist[idx[k]] <= dist.min() + 1e-4, (backend, pos, k, idx[k], int(dist.argmin()))
            seen += 1
    assert seen == 12


@pytest.mark.parametrize("split", ["main", "good"])
def test_dense_training_clips_are_consecutive_frames_wherever_they_start(splits, split):
    """Random starts over the whole clip: every keyframe cut of the DALI reader gets exercised."""
    t = Transform(size=128, resize_ratio=1.0, train_crop="center", flip=False, layout="NTCHW", **RAW)
    decoded = _pyav_reference(splits[split], 128)
    starts = []
    for epoch in range(3):
        for b in loader_for("dali", splits[split], Sampling("dense", 4), t, train=True, batch_size=4, workers=1,
                            seed=epoch):
            for clip, pos in zip(b.video.permute(0, 1, 3, 4, 2).numpy(), b.pos.tolist()):
                frames = decoded[pos]
                dist = np.abs(frames[None] - clip[:, None]).mean(axis=(2, 3, 4))  # (4 clip, T video)
                start = int(dist[0].argmin())
                assert dist.argmin(axis=1).tolist() == list(range(start, start + 4)), (split, pos, start)
                assert dist.min(axis=1).max() < 3, (split, pos, start)
                starts.append(start)
    assert min(starts) < 8 and max(starts) > 24  # clips before the first keyframe cut and well after it


def _as_version_1(split: Path, out: Path) -> Path:
    """The same VP9 streams as a format 1 split (WebM, no keyframe table): the benchmark's helper."""
    bench = str(Path(__file__).resolve().parents[2] / "benchmarks")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    from bench_gop import as_format_1

    return as_format_1(split, out)


def test_format_1_webm_splits_still_load_and_give_the_same_clips(splits, tmp_path):
    old = _as_version_1(splits["good"], tmp_path / "v1" / "train")
    manifest, problems = verify_split(old, decode=True)
    assert not problems and manifest.format_version == 1 and manifest.video_ext == "webm"
    t = Transform(size=64, layout="NTCHW")
    for sampling in (Sampling("dense", 4), Sampling("segments", 4)):
        new_batches = list(loader_for("dali", splits["good"], sampling, t, train=False, batch_size=4, workers=1))
        old_batches = list(loader_for("dali", old, sampling, t, train=False, batch_size=4, workers=1))
        assert len(new_batches) == len(old_batches) == 3
        for a, b in zip(new_batches, old_batches):
            assert torch.equal(a.pos, b.pos) and torch.equal(a.video, b.video)


def _as_version_2(split: Path, out: Path) -> Path:
    """A copy of `split` whose manifest says shard format 2 (the frame tables are then not read)."""
    shutil.copytree(split, out)
    d = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps(dict(d, format_version=2)))
    return out


# Spread frames, runs of two, uniform, and short clips (repeated last frames; training segment
# offsets on a 3-frame clip can step back).
@pytest.mark.parametrize("split,sampling", [
    ("main", Sampling("segments", 8)), ("main", Sampling("segments", 3, frames_per_segment=2)),
    ("good", Sampling("uniform", 5)), ("short", Sampling("segments", 8)), ("main", Sampling("dense", 4, interval=3)),
    ("mjpeg", Sampling("dense", 4, interval=2)), ("mjpeg", Sampling("segments", 8))])
def test_per_frame_cuts_give_the_clips_of_one_cut_per_clip_and_resume_exactly(splits, split, sampling, tmp_path):
    """Decoding each sampled frame from its own keyframe (default for segments and uniform on format
    3) gives exactly the frames, crops and order of one cut per clip, and of a format 2 split."""
    t = Transform(size=48, layout="NTCHW")
    v2 = _as_version_2(splits[split], tmp_path / "v2" / "train")

    def run(path, cut, start=0):
        loader = make_loader(path, sampling, t, train=True, batch_size=3, seed=5, workers=1, source="reader",
                             cut=cut)
        return loader.cut, [(b.pos.tolist(), b.video) for b in loader.iterate(1, start_batch=start)]

    cut, frame = run(splits[split], "frame")
    assert cut == "frame"
    for other in (run(splits[split], "clip"), run(v2, "auto"), run(splits[split], "frame", start=2)):
        assert other[0] == "clip" or other[0] == "frame"
        skip = len(frame) - len(other[1])
        assert [p for p, _ in other[1]] == [p for p, _ in frame[skip:]]
        assert all(torch.equal(a, b) for (_, a), (_, b) in zip(other[1], frame[skip:]))
    # Dense clips are one run of frames, cut once; every MJPEG frame is a keyframe, cut per frame.
    expected = "clip" if sampling.mode == "dense" and split != "mjpeg" else "frame"
    assert make_loader(splits[split], sampling, t, train=True, batch_size=3).cut == expected
    with pytest.raises(ValueError, match="shard format 2 .* cannot be cut per frame"):
        make_loader(v2, sampling, t, train=True, batch_size=3, cut="frame")


@pytest.mark.gpu
def test_the_gpu_decoder_gets_the_per_frame_streams_too(splits):
    """The mixed (GPU) decoder is fed by the same graph: per-frame cuts there give the clips of one cut
    per clip on the GPU, and the CPU decoder's clips up to YUV-to-RGB rounding."""
    from synapt_fast.format.codecs import cuda_device_count

    if cuda_device_count() == 0:
        pytest.skip("needs a CUDA GPU")
    t = Transform(size=64, resize_ratio=1.0, layout="NTCHW", **RAW)
    for split, sampling in (("main", Sampling("segments", 8)), ("main", Sampling("uniform", 5)),
                            ("mjpeg", Sampling("segments", 8)), ("mjpeg", Sampling("dense", 8, interval=2))):
        runs = {(d, c): list(make_loader(splits[split], sampling, t, train=False, batch_size=4, workers=1,
                                         decode=d, cut=c)) for d in ("gpu", "cpu") for c in ("frame", "clip")}
        for a, b, c in zip(runs["gpu", "frame"], runs["gpu", "clip"], runs["cpu", "frame"]):
            assert a.pos.tolist() == b.pos.tolist() == c.pos.tolist()
            assert torch.equal(a.video.cpu(), b.video.cpu())
            assert (a.video.cpu().float() - c.video.float()).abs().mean() < 3


def test_the_graph_cuts_by_the_rule_of_ivf_frame_pieces(splits):
    """The joined stream DALI's decoder gets is the one `ivf.frame_pieces` describes (which
    test_ivf decodes against full decodes): about half a GOP per spread-out sampled frame."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    from synapt_fast.format.ivf import FRAMES, KEYFRAMES, frame_offsets, frame_pieces, join, keyframe_table
    from synapt_fast.loader.dali_graph import _frame_cuts

    split = splits["main"]
    m = Manifest.load(split)
    wanted = [[3, 9, 14, 20, 27, 31, 36, 39], [0, 0, 0, 1, 2, 39, 39, 39], [20, 21, 5, 6, 30, 30, 31, 8]]
    feed = [np.array(w, np.int32) for w in wanted]

    @pipeline_def(batch_size=3, num_threads=1, device_id=None, seed=0)
    def pipe():
        video, kf, fr = fn.readers.webdataset(
            paths=[str(split / s.tar) for s in m.shards], index_paths=[str(split / s.index) for s in m.shards],
            ext=["ivf", KEYFRAMES, FRAMES], dtypes=[types.UINT8, types.INT32, types.INT32])
        idx = fn.external_source(source=lambda: feed, batch=True, dtype=types.INT32)
        joined, positions = _frame_cuts(video, kf, fr, idx, 8)
        return video, joined, positions

    p = pipe()
    p.build()
    videos, joined, positions = (o.as_array() if o.is_dense_tensor() else o for o in p.run())
    for j, w in enumerate(wanted):
        data = np.asarray(videos[j]).tobytes()
        pieces, pos = frame_pieces(keyframe_table(data)[:, 0], w)
        assert np.asarray(joined[j]).tobytes() == join(data, frame_offsets(data), pieces), w
        assert np.asarray(positions[j]).tolist() == pos, w


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("crop", ["multiscale", "random_resized", "jitter"])
def test_the_same_augmentation_applies_to_every_frame(splits, backend, crop):
    t = Transform(size=64, train_crop=crop, layout="NTCHW", **RAW)
    crops = []
    for b in loader_for(backend, splits["static"], Sampling("segments", 6), t, train=True, batch_size=2, seed=3,
                        workers=1):
        for clip in b.video:  # T, 3, H, W of a still clip: every frame must be cropped the same
            # (lossy VP9 leaves a still clip's frames a few levels apart; a different crop of the
            # textured background would differ by far more)
            assert (clip - clip[0]).abs().mean(dim=(1, 2, 3)).max() < 1
            crops.append(clip[0])
    # ... while different clips get different crops (the augmentation is random at all).
    assert max((crops[0] - c).abs().mean() for c in crops[1:]) > 5


# (y0, x0, h, w) boxes of 160x128 frames resized to 112: enlarged (the multi-scale crop's 0.66
# and 0.75 sides), shrunk, and one of the output size, which is only cut out.
BOXES = [(10, 20, 84, 84), (0, 40, 96, 112), (0, 0, 128, 128), (16, 8, 112, 112)]


def test_cpu_training_crops_are_resized_as_the_reference_loader_resizes(splits):
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    from synapt_fast.loader.dali_graph import _resize_box
    from synapt_fast.loader.reference import _resize

    m = Manifest.load(splits["mjpeg"])
    sample = next(iter(wds.WebDataset([str(splits["mjpeg"] / m.shards[0].tar)], shardshuffle=False)))
    frames = np.ascontiguousarray(decode_all(sample[m.video_ext])[:6])  # F, 128, 160, 3: rendered shapes, sharp edges
    t = Transform(size=112)

    @pipeline_def(batch_size=len(BOXES), num_threads=1, device_id=None, seed=0)
    def resized():
        f = fn.external_source(source=lambda: [frames] * len(BOXES), batch=True, layout="FHWC")
        box = fn.external_source(source=lambda: [np.array(b, np.float32) for b in BOXES], batch=True)
        return _resize_box(f, t, fn.cast(box, dtype=types.FLOAT))

    pipe = resized()
    pipe.build()
    (out,) = pipe.run()
    for got, (y0, x0, h, w) in zip(out, BOXES):
        clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float()[..., y0:y0 + h, x0:x0 + w]
        want = _resize(clip, 112, 112).permute(0, 2, 3, 1).numpy()
        got = np.array(got).astype(np.float32)
        assert got.shape == (6, 112, 112, 3)
        # uint8 rounding of fixed-point weights only (DALI's own CPU resize was up to 14 levels off
        # on enlarged edges)
        assert np.abs(got - want).max() < 1.01, (h, w)
        if (h, w) == (112, 112):
            assert np.array_equal(got, want)


def test_the_graphs_torch_resize_runs_on_its_calling_thread_alone():
    """DALI calls `HostResize` on its own threads; torch there must not start OpenMP helpers
    (which spin), and whichever thread calls it keeps its thread count afterwards: DALI's
    synchronous executor calls it on the thread running the pipeline, here the main thread."""
    import threading

    import nvidia.dali.fn as fn
    from nvidia.dali import pipeline_def

    from synapt_fast.loader.dali_graph import HostResize

    seen = []

    class Probe(HostResize):
        def _one(self, frames, box):
            seen.append(torch.get_num_threads())
            return super()._one(frames, box)

    frames, box = np.zeros((4, 128, 160, 3), np.uint8), np.array([0, 0, 96, 96], np.float32)
    before = torch.get_num_threads()
    result = {}

    def lane():
        torch.set_num_threads(2)  # as on any machine with 2 or more cores
        (out,) = Probe(112)([frames], [box])
        result.update(shape=out.shape, after=torch.get_num_threads())

    try:
        t = threading.Thread(target=lane)
        t.start()
        t.join()
        assert result == {"shape": (4, 112, 112, 3), "after": 2} and seen == [1]

        torch.set_num_threads(2)

        @pipeline_def(batch_size=2, num_threads=1, device_id=None, exec_async=False, exec_pipelined=False,
                      exec_dynamic=False)
        def synchronous():
            f = fn.external_source(source=lambda: [frames] * 2, batch=True, layout="FHWC")
            b = fn.external_source(source=lambda: [box] * 2, batch=True)
            return fn.python_function(f, b, function=Probe(112), batch_processing=True, output_layouts="FHWC")

        pipe = synchronous()
        pipe.build()
        (out,) = pipe.run()
        assert out.as_array().shape == (2, 4, 112, 112, 3)
        assert seen == [1, 1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_clips_repeat_the_last_frame_never_black(splits, backend):
    t = Transform(size=128, resize_ratio=1.0, layout="NTCHW", **RAW)
    for b in loader_for(backend, splits["short"], Sampling("dense", 8), t, train=False, batch_size=4, workers=1):
        clips = b.video[:, 0]  # B, 8, 3, H, W from 3-frame clips
        for clip in clips:
            assert (clip[2:] - clip[2]).abs().max() < 1e-3
            assert clip.mean() > 20


@pytest.mark.parametrize("backend", BACKENDS)
def test_ibm_style_short_clips_wrap_to_the_start(splits, backend):
    """IBM's dense sampling loops a short clip (`% n`); in the DALI graph as in the reference loader."""
    t = Transform(size=128, resize_ratio=1.0, layout="NTCHW", **RAW)
    for b in loader_for(backend, splits["short"], Sampling("dense", 8, style="ibm"), t, train=False, batch_size=4,
                        workers=1):
        for clip in b.video[:, 0]:  # 8 frames of a 3-frame clip: 0 1 2 0 1 2 0 1
            for i in range(3, 8):
                assert (clip[i] - clip[i % 3]).abs().max() < 1e-3
            assert (clip[1] - clip[0]).abs().mean() > 0.5 and clip.mean() > 20  # moving content, not black


def test_h264_shards_are_refused_on_cpu_with_the_codec_to_use(tmp_path):
    split = _split(tmp_path, "h264", SampleSource(1, 2, 8, 64, 64), codec="h264")
    with pytest.raises(DecodeDeviceError, match="--codec vp9"):
        make_loader(split, Sampling(), Transform(), train=True, batch_size=2, decode="cpu")
    if cuda_device_count() > 0:  # a GPU machine: H.264 goes to NVDEC, on CPU the refusal says why not
        assert make_loader(split, Sampling(), Transform(), train=True, batch_size=2, decode="gpu").device == "gpu"
        assert make_loader(split, Sampling(), Transform(), train=True, batch_size=2).device == "gpu"
    else:
        with pytest.raises(DecodeDeviceError, match="needs a CUDA GPU"):
            make_loader(split, Sampling(), Transform(), train=True, batch_size=2, decode="gpu")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_truncated_shard_is_refused_before_dali_opens_it(splits, tmp_path, backend):
    split = tmp_path / "t" / "train"
    shutil.copytree(splits["main"], split)
    tar = split / Manifest.load(split).shards[1].tar
    tar.write_bytes(tar.read_bytes()[:5000])
    with pytest.raises(ShardError, match=f"{tar.name}: truncated"):
        loader_for(backend, split, Sampling(), Transform(), train=True, batch_size=2)


@pytest.mark.parametrize("source", ["reader", "seek"])
def test_same_seed_same_batches_and_exact_resume(splits, source):
    def loader(seed):
        return make_loader(splits["main"], Sampling("dense", 4, interval=2), Transform(size=48), train=True,
                           batch_size=3, seed=seed, source=source, workers=1)

    def run(loader, epoch, start=0):
        return [(b.pos.tolist(), b.video.clone()) for b in loader.iterate(epoch, start_batch=start)]

    first = loader(7)
    a, a2 = run(first, 1), run(first, 2)  # epochs 1 and 2 in sequence (the seek pipeline carries on)
    b, c = run(loader(7), 1), run(loader(8), 1)
    assert all(x[0] == y[0] and torch.equal(x[1], y[1]) for x, y in zip(a, b))
    assert any(x[0] != y[0] or not torch.equal(x[1], y[1]) for x, y in zip(a, c))
    resumed = run(loader(7), 1, start=2)
    assert [p for p, _ in resumed] == [p for p, _ in a[2:]]
    assert all(torch.equal(x[1], y[1]) for x, y in zip(resumed, a[2:]))
    # Another epoch is another order, and the same whether reached in sequence or directly.
    assert [p for p, _ in a2] != [p for p, _ in a]
    direct = run(loader(7), 2)
    assert all(x[0] == y[0] and torch.equal(x[1], y[1]) for x, y in zip(a2, direct))
    # The reader prepares epoch 3 while epoch 2 ends: resuming into it, or going back to epoch 1
    # instead (the prepared pipeline is dropped), gives the same batches as a fresh loader.
    later = run(loader(7), 3)
    assert [p for p, _ in run(first, 3, start=1)] == [p for p, _ in later[1:]]
    again = run(first, 1)
    assert all(x[0] == y[0] and torch.equal(x[1], y[1]) for x, y in zip(again, a))


DDP_SCRIPT = r"""
import json, sys
import torch.distributed as dist
from synapt_fast.loader import Sampling, Transform, make_loader


def main(split, out, source):
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    record = {}
    for name, train in (("train", True), ("eval", False)):
        loader = make_loader(split, Sampling("dense", 4), Transform(size=32), train=train, batch_size=3,
                             rank=rank, world_size=world, seed=0, source=source, workers=1, decode="cpu")
        for epoch in range(2):
            seen = [p for b in loader for p in b.pos.tolist()]
            gathered = [None] * world
            dist.all_gather_object(gathered, seen)
            record[f"{name}{epoch}"] = gathered
    if rank == 0:
        json.dump(record, open(out, "w"))
    dist.destroy_process_group()


if __name__ == "__main__":  # the seek source's worker processes re-import this file
    main(*sys.argv[1:4])
"""


@pytest.mark.parametrize("source", ["reader", "seek"])
def test_two_process_torchrun_sees_every_sample_once_per_epoch(splits, tmp_path, source):
    script = tmp_path / "ddp_loader.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "seen.json"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(29531 + (source == "seek")), str(script), str(splits["main"]),
                           str(out), source],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    for key, per_rank in record.items():
        everything = [p for r in per_rank for p in r]
        assert sorted(everything) == list(range(12)), key  # each sample exactly once across ranks
        assert all(per_rank), key  # both ranks did work
    # Ranks swap halves between epochs (DALI's shard rotation), so data moves across ranks.
    assert set(record["train0"][0]) != set(record["train1"][0])


def test_prefetched_batches_keep_order_errors_and_close_early():
    from synapt_fast.loader.prefetch import Prefetched

    closed = []

    def batches(fail_at=None):
        try:
            for i in range(6):
                if i == fail_at:
                    raise ValueError(f"bad batch {i}")
                yield i
        finally:
            closed.append(fail_at)

    with Prefetched(batches(), depth=2) as it:
        assert list(it) == list(range(6))
    got = []
    with pytest.raises(ValueError, match="bad batch 3"), Prefetched(batches(fail_at=3)) as it:
        for b in it:
            got.append(b)
    assert got == [0, 1, 2]  # the error comes where it happened, after the batches before it
    with Prefetched(batches(fail_at=-1)) as it:
        assert next(it) == 0  # leaving early stops the thread and closes the source
    assert closed == [None, 3, -1]


def test_cpu_training_leaves_the_loader_threads_its_cores():
    import os

    # One fresh process (torch's thread count is process-wide); the function reads the
    # environment at each call.
    code = """
import json, os, sys
from synapt_fast.engine.distributed import set_cpu_threads
out = [set_cpu_threads(w) for w in (0, 1, int(sys.argv[1]) + 3)]
os.environ["LOCAL_WORLD_SIZE"] = "2"  # two processes per machine share its cores
out.append(set_cpu_threads(0))
import torch
torch.set_num_threads(3)
os.environ["OMP_NUM_THREADS"] = "3"  # an explicit setting is left alone
out.append(set_cpu_threads(0))
print(json.dumps(out))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "LOCAL_WORLD_SIZE")}
    cores = len(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "-c", code, str(cores)], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == [cores, max(1, cores - 1), 1, max(1, cores // 2), 3]


def test_lanes_cover_each_sample_once_and_resume_exactly(splits):
    # Two pipelines per rank over halves of its shard, batches re-cut to whole ones but the last.
    def loader(rank, train=True):
        return make_loader(splits["main"], Sampling("dense", 4), Transform(size=32), train=train, batch_size=5,
                           rank=rank, world_size=2, seed=3, source="reader", workers=2, lanes=2)

    for train in (True, False):
        for epoch in (0, 1):
            seen = []
            for rank in (0, 1):
                ld = loader(rank, train)
                ld.epoch = epoch
                batches = [b.pos.tolist() for b in ld.iterate(epoch)]  # lanes of 3 clips: 5 + 1
                assert len(batches) == len(ld) and all(len(b) == 5 for b in batches[:-1]), batches
                seen += [p for b in batches for p in b]
            assert sorted(seen) == list(range(12)), (train, epoch)
    a = [(b.pos.tolist(), b.video) for b in loader(1).iterate(1)]
    resumed = [(b.pos.tolist(), b.video) for b in loader(1).iterate(1, start_batch=1)]
    assert [p for p, _ in resumed] == [p for p, _ in a[1:]]
    assert all(torch.equal(x[1], y[1]) for x, y in zip(resumed, a[1:]))


def test_jitter_box_is_timesformers_short_side_jitter():
    """A 224 crop after resizing the short side to 256..320: a square of 0.7..0.875 x the short side."""
    from synapt_fast.loader.transforms import numpy_jitter_box

    rng = np.random.default_rng(0)
    boxes = np.array([numpy_jitter_box(240, 320, rng) for _ in range(2000)])
    y0, x0, ch, cw = boxes.T
    assert (ch == cw).all() and ch.min() >= int(240 * 224 / 320) and ch.max() <= int(240 * 224 / 256)
    assert (y0 >= 0).all() and (x0 >= 0).all() and (y0 + ch <= 240).all() and (x0 + cw <= 320).all()
    assert x0.max() > 100 and x0.min() < 5  # anywhere along the long side
