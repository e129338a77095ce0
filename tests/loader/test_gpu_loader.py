"""The DALI loader decoding on the GPU against itself decoding on the CPU: every sampling mode,
training and evaluation views, the same clips and frames within decoder rounding. GPU tests
skip without CUDA; the CPU-side checks of the same options run everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synapt_fast.format.codecs import cuda_device_count
from synapt_fast.loader import Sampling, Transform, make_loader
from synapt_fast.synth.sampleclips import SampleSource
from synapt_fast.sharding.pipeline import ShardOptions, shard_source
from synapt_fast.sharding.transcode import EncodeOptions

HAS_GPU = cuda_device_count() > 0 and torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU visible to DALI and torch")
RAW = dict(mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255))  # pixel values kept
SAMPLINGS = {
    "segments": Sampling("segments", 4),
    "segments-2x2": Sampling("segments", 2, frames_per_segment=2),
    "dense": Sampling("dense", 4, interval=3),
    "dense-2clips": Sampling("dense", 4, interval=2, num_clips=2),
    "uniform": Sampling("uniform", 6),
}


@pytest.fixture(scope="module", params=["mjpeg", "vp9"])
def split(tmp_path_factory, request):
    """The default codec (MJPEG) and VP9 at 192x144 (above NVDEC's smallest VP9 picture,
    128x128): both read by both decoders."""
    out = tmp_path_factory.mktemp("gpu_loader") / "g" / "train"
    shard_source(SampleSource(2, 3, 40, 192, 144), out, ShardOptions("g", "train", max_count=4),
                 EncodeOptions(codec=request.param, gop=8, short_side=144))
    return out


def _batches(split, sampling, transform, train, decode):
    loader = make_loader(split, sampling, transform, train=train, batch_size=3, decode=decode, seed=11, lanes=1,
                         workers=2)
    assert loader.device == decode
    return [(b.video.float().cpu(), b.label, b.pos, b.video.device) for b in loader]


def _close(gpu, cpu, what):
    diff = (gpu - cpu).abs()
    # NVDEC's YUV -> RGB conversion rounds differently from libavcodec + swscale (DALI's CPU
    # path); on these clips the means differ by ~1 level, sharp colour edges by more.
    assert diff.mean() < 3 and torch.quantile(diff.flatten()[:1_000_000], 0.95) < 10, (what, float(diff.mean()))


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("mode", list(SAMPLINGS))
def test_gpu_eval_views_equal_cpu_views(split, mode):
    t = Transform(size=112, resize_ratio=1.0, eval_crops=3, layout="NTCHW", **RAW)
    gpu = _batches(split, SAMPLINGS[mode], t, False, "gpu")
    cpu = _batches(split, SAMPLINGS[mode], t, False, "cpu")
    assert len(gpu) == len(cpu) == 2
    for (gv, gl, gp, dev), (cv, cl, cp, _) in zip(gpu, cpu):
        assert dev.type == "cuda" and torch.equal(gl, cl) and torch.equal(gp, cp)
        assert gv.shape == cv.shape and gv.shape[1] == SAMPLINGS[mode].clips(False) * 3
        _close(gv, cv, mode)
        # Each frame is nearest the CPU frame of the same index, not a neighbour in time.
        g, c = gv[:, 0], cv[:, 0]  # B, T, 3, H, W (first view)
        for k in range(g.shape[1]):
            dist = (c - g[:, k:k + 1]).abs().mean(dim=(0, 2, 3, 4))
            assert int(dist.argmin()) == k or dist[k] <= dist.min() + 1e-3, (mode, k, dist.tolist())


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("mode", list(SAMPLINGS))
def test_gpu_training_clips_equal_cpu_training_clips_for_the_same_seed(split, mode):
    # Frame indices, crop boxes and flips are drawn on the CPU in both graphs from the same seed,
    # so the two decoders must give the same clips, augmented the same way.
    t = Transform(size=96, train_crop="multiscale", layout="NCTHW", **RAW)
    gpu = _batches(split, SAMPLINGS[mode], t, True, "gpu")
    cpu = _batches(split, SAMPLINGS[mode], t, True, "cpu")
    assert len(gpu) == len(cpu) == 2
    for (gv, gl, gp, dev), (cv, cl, cp, _) in zip(gpu, cpu):
        assert dev.type == "cuda" and torch.equal(gp, cp) and torch.equal(gl, cl)
        assert gv.shape == cv.shape
        _close(gv, cv, mode)


@pytest.mark.gpu
@needs_gpu
def test_cpu_decoding_for_a_gpu_trainer_gives_pinned_batches(split):
    loader = make_loader(split, Sampling("segments", 4), Transform(size=64), train=True, batch_size=3,
                         decode="cpu", pin_memory=True)
    batches = list(loader)  # 6 clips, 2 lanes of 3: whole batches, none re-cut
    assert sum(len(b.label) for b in batches) == 6
    for b in batches:
        assert b.video.is_pinned() and not b.video.is_cuda


@pytest.mark.skipif(HAS_GPU, reason="checks the refusal on a machine without CUDA")
def test_pinned_batches_without_cuda_are_refused(split):
    with pytest.raises(ValueError, match="pin_memory=True needs CUDA"):
        make_loader(split, Sampling("segments", 4), Transform(size=64), train=True, batch_size=3, decode="cpu",
                    pin_memory=True)
