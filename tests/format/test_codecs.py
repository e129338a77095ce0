"""Codec routing (`devices`): what NVDEC takes per GPU generation, size and pixel format, and the
refusals at shard time and before a pipeline starts, each naming the setting to use."""

from __future__ import annotations

import json

import pytest

from synapt_fast.format.codecs import (
    DecodeDeviceError, clip_refusal, cuda_device_count, decode_device, nvdec_refusal, shard_refusal)
from synapt_fast.loader import Sampling, Transform, make_loader
from synapt_fast.synth.sampleclips import SampleSource
from synapt_fast.sharding.pipeline import ShardOptions, shard_source
from synapt_fast.sharding.transcode import EncodeOptions

from tests.conftest import run_cli

HOPPER, A100, ADA, BLACKWELL, TURING = (9, 0), (8, 0), (8, 9), (12, 0), (7, 5)
HAS_GPU = cuda_device_count() > 0


@pytest.mark.parametrize("cap", [HOPPER, A100, TURING])
def test_av1_is_not_sent_to_nvdec_on_hopper_a100_or_turing(cap):
    reason = nvdec_refusal("av1", width=320, height=240, capability=cap)
    assert reason and "no AV1 NVDEC" in reason and "--codec vp9" in reason and f"{cap[0]}.{cap[1]}" in reason


@pytest.mark.parametrize("cap", [ADA, BLACKWELL, (8, 6)])
def test_av1_goes_to_nvdec_where_it_has_an_av1_engine(cap):
    assert nvdec_refusal("av1", width=320, height=240, capability=cap) is None


@pytest.mark.parametrize("codec,w,h,ok", [
    ("h264", 48, 16, True), ("h264", 46, 16, False), ("h264", 48, 14, False),
    ("hevc", 144, 144, True), ("hevc", 170, 128, False), ("vp9", 128, 128, True), ("vp9", 160, 120, False)])
def test_pictures_below_nvdecs_smallest_are_refused_with_the_short_side_to_use(codec, w, h, ok):
    reason = nvdec_refusal(codec, width=w, height=h, capability=HOPPER)
    if ok:
        assert reason is None
    else:
        assert f"{w}x{h}" in reason and "--short-side" in reason


@pytest.mark.parametrize("codec,pix,ok", [
    ("h264", "yuv420p", True), ("h264", "yuv444p", False), ("h264", "yuv420p10le", False),
    ("hevc", "yuv420p10le", True), ("hevc", "yuv444p", True), ("vp9", "yuv444p", False)])
def test_pixel_formats_nvdec_cannot_decode_are_refused(codec, pix, ok):
    reason = nvdec_refusal(codec, width=320, height=240, pix_fmt=pix)
    assert (reason is None) == ok
    if not ok:
        assert pix in reason and "re-encoded" in reason


def test_codecs_the_gpu_decoder_lacks_are_refused():
    assert "--codec vp9" in nvdec_refusal("theora")


def test_shard_refusal_only_for_gpu_only_codecs_below_the_minimum():
    assert "--short-side 144" in shard_refusal("hevc", 128)
    assert shard_refusal("hevc", 144) is None and shard_refusal("h264", 64) is None
    assert "--short-side 48" in shard_refusal("h264", 32)
    assert shard_refusal("vp9", 64) is None  # the CPU decoder reads it
    assert shard_refusal("hevc", 0) is None  # sizes kept: checked per clip
    assert clip_refusal("vp9", 32, 32) is None and clip_refusal("hevc", 160, 120).startswith("not decodable on the GPU")


def test_shard_run_below_the_minimum_is_refused_before_encoding(tmp_path, clip_folder):
    out = tmp_path / "s" / "train"
    with pytest.raises(ValueError, match="--short-side 144"):
        shard_source(SampleSource(1, 1, 4, 64, 48), out, ShardOptions("s", "train"),
                     EncodeOptions(codec="hevc", short_side=128))
    assert not out.exists()
    proc = run_cli("shard", "--codec", "hevc", "--short-side", "128", "--set", "s", "--split", "train",
                   str(clip_folder), "--out", str(tmp_path / "shards"), check=False)
    assert proc.returncode == 2 and "--short-side 144" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "shards").exists()


def test_gpu_only_clips_nvdec_cannot_take_are_skipped_with_the_reason(tmp_path):
    # Sizes kept from the source (short side 0): 64x48 H.264 is above 48x16, 64x48 HEVC is not.
    ok = tmp_path / "h264" / "train"
    shard_source(SampleSource(1, 2, 4, 64, 48), ok, ShardOptions("h264", "train"),
                 EncodeOptions(codec="h264", short_side=0))
    assert json.loads((ok / "manifest.json").read_text())["num_samples"] == 2
    small = tmp_path / "hevc" / "train"
    summary = shard_source(SampleSource(1, 2, 4, 64, 48), small, ShardOptions("hevc", "train"),
                           EncodeOptions(codec="hevc", short_side=0))
    m = json.loads((small / "manifest.json").read_text())
    assert summary.samples == 0 and len(m["skipped"]) == 2
    assert all("64x48" in s["reason"] and "--short-side 144" in s["reason"] for s in m["skipped"])
    assert {s["id"] for s in m["skipped"]} == {"class_00/0000", "class_00/0001"}


def test_vp9_below_nvdecs_minimum_is_refused_on_the_gpu_and_decoded_on_the_cpu(tmp_path):
    split = tmp_path / "v" / "train"
    shard_source(SampleSource(1, 2, 6, 96, 64), split, ShardOptions("v", "train"), EncodeOptions(short_side=64))
    loader = make_loader(split, Sampling("segments", 2), Transform(size=32), train=False, batch_size=2)
    assert loader.device == "cpu"  # auto: with or without a GPU, NVDEC cannot take 96x64 VP9
    if HAS_GPU:
        with pytest.raises(DecodeDeviceError, match="--short-side 128 or more or use --decode cpu"):
            make_loader(split, Sampling("segments", 2), Transform(size=32), train=False, batch_size=2,
                        decode="gpu")
    else:
        with pytest.raises(DecodeDeviceError, match="needs a CUDA GPU"):
            make_loader(split, Sampling("segments", 2), Transform(size=32), train=False, batch_size=2,
                        decode="gpu")


def test_decode_device_reads_the_manifests_encoding():
    enc = {"codec": "hevc", "short_side": 128, "pix_fmt": "yuv420p"}
    if HAS_GPU:
        with pytest.raises(DecodeDeviceError, match="--short-side 144"):
            decode_device("hevc", "auto", encoding=enc)
    else:
        with pytest.raises(DecodeDeviceError, match="decode on a GPU"):
            decode_device("hevc", "auto", encoding=enc)
    assert decode_device("vp9", "cpu", encoding={"short_side": 64}) == "cpu"


def test_decode_auto_follows_the_trainers_device():
    from synapt_fast.format.codecs import decode_for_trainer

    assert decode_for_trainer("cpu") == "cpu"  # even where DALI sees a GPU
    assert decode_for_trainer("cuda:1") == "auto" and decode_for_trainer("cuda") == "auto"
    assert decode_for_trainer("cpu", "gpu") == "gpu" and decode_for_trainer("cuda", "cpu") == "cpu"


def test_the_cuda_device_comes_from_the_visible_gpus(monkeypatch):
    from synapt_fast.format.codecs import local_cuda_device

    monkeypatch.setenv("LOCAL_RANK", "3")
    if cuda_device_count() == 0:
        assert local_cuda_device() == 3  # no GPU: the rank's index, unused by CPU pipelines
    elif cuda_device_count() == 1:
        assert local_cuda_device() == 0  # one visible GPU (CUDA_VISIBLE_DEVICES=k): it is device 0
    elif cuda_device_count() <= 3:
        with pytest.raises(DecodeDeviceError, match="LOCAL_RANK 3 but only"):
            local_cuda_device()
