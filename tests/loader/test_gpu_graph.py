"""The GPU loader's DALI graph, serialised on a machine without a GPU: which operators run where,
for every sampling mode, train and eval (`loader.dali_graph.serialized_graph`, `loader.graph`)."""

from __future__ import annotations

import nvidia.dali.backend as backend
import pytest

from synapt_fast.loader import Sampling, Transform
from synapt_fast.loader.dali_graph import probe_pipeline, serialized_graph
from synapt_fast.loader.graph import SHAPE_ONLY, fed_by, operators, pipeline_outputs
from synapt_fast.synth.sampleclips import SampleSource
from synapt_fast.sharding.pipeline import ShardOptions, shard_source
from synapt_fast.sharding.transcode import EncodeOptions

SAMPLINGS = {"segments": Sampling("segments", 4), "dense": Sampling("dense", 4, interval=2),
             "uniform": Sampling("uniform", 4)}
@pytest.fixture(scope="module")
def split(tmp_path_factory):
    out = tmp_path_factory.mktemp("graph") / "g" / "train"
    shard_source(SampleSource(1, 2, 12, 64, 48), out, ShardOptions("g", "train"), EncodeOptions(gop=4))
    return out


def _graph(split, mode, train, decode, train_crop="multiscale"):
    data = serialized_graph(split, SAMPLINGS[mode], Transform(size=32, train_crop=train_crop), train=train,
                            decode=decode)
    return operators(data), pipeline_outputs(data)


# Every training crop (each is its own graph), and evaluation (views; no training crop).
@pytest.mark.parametrize("train,train_crop", [(True, "multiscale"), (True, "random_resized"), (True, "center"),
                                              (False, "multiscale")], ids=["train-multiscale", "train-rrc",
                                                                           "train-center", "eval"])
@pytest.mark.parametrize("mode", list(SAMPLINGS))
def test_gpu_graph_decodes_on_nvdec_and_keeps_pixels_on_the_gpu(split, mode, train, train_crop):
    ops, outs = _graph(split, mode, train, "gpu", train_crop)
    by_schema = {}
    for o in ops:
        by_schema.setdefault(o.schema, []).append(o)
    (dec,) = by_schema["decoders__Video"]
    assert dec.device == "mixed" and dec.outputs[0][1] == "gpu"
    (reader,) = by_schema["readers__Webdataset"]
    assert reader.instance == "reader" and reader.device == "cpu"
    # The pixel path (everything the decoded frames flow through) runs on the GPU, and it is the
    # only GPU work: frame indices, the keyframe cut and crop parameters are computed on the CPU
    # (DALI takes argument inputs from the CPU only), and no operator reads GPU data on the CPU.
    pixel = fed_by(ops, dec)
    assert all(o.device == "gpu" for o in pixel[1:]), [(o.schema, o.device) for o in pixel]
    assert {"Resize", "CropMirrorNormalize"} & {o.schema for o in pixel}
    assert {o.schema for o in ops if o.device != "cpu"} == {o.schema for o in pixel}
    assert not [o for o in ops if o.device == "cpu" and o.schema not in SHAPE_ONLY
                and any(d == "gpu" for _, d in o.inputs)]
    # The video leaves on the GPU, from the pixel path; labels and positions on the CPU.
    assert [d for _, d in outs] == ["gpu", "cpu", "cpu"]
    assert outs[0][0] in {name for o in pixel for name, _ in o.outputs}
    # The keyframe cuts (IVF header + the bytes from a keyframe on: one per clip for dense sampling,
    # one per sampled frame for segments and uniform) run before the decoder, on the CPU.
    cuts = by_schema["Cat"]
    assert cuts and all(c.device == "cpu" for c in cuts)


@pytest.mark.parametrize("train_crop", ["multiscale", "jitter", "random_resized"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("mode", list(SAMPLINGS))
def test_cpu_graph_has_no_gpu_operator(split, mode, train, train_crop):
    # Built and run with no device: any GPU operator would fail here. (A CPU training graph
    # does not serialise: its crop resize is a Python operator.)
    pipe = probe_pipeline(split, SAMPLINGS[mode], Transform(size=32, train_crop=train_crop), train=train,
                          decode="cpu")
    pipe.build()
    video, label, pos = pipe.run()
    assert all(isinstance(o, backend.TensorListCPU) for o in (video, label, pos))
    shape = video.shape()[0]
    assert shape == ((3, 4, 32, 32) if train else (1, 4, 3, 32, 32))  # NCTHW; eval: views, T, C, H, W


@pytest.mark.parametrize("codec", ["h264"])  # HEVC shards stay in MP4, uncut (see transcode)
def test_gpu_graph_cuts_annexb_clips_on_the_cpu_before_nvdec(tmp_path, codec):
    split = tmp_path / codec / "train"
    shard_source(SampleSource(1, 2, 12, 160, 144), split, ShardOptions(codec, "train"),
                 EncodeOptions(codec=codec, gop=4, short_side=144))
    ops = operators(serialized_graph(split, SAMPLINGS["dense"], Transform(size=32), train=True, decode="gpu"))
    (dec,) = [o for o in ops if o.schema == "decoders__Video"]
    assert dec.device == "mixed"
    producer = {name: o for o in ops for name, _ in o.outputs}
    (video_in,) = dec.inputs
    cut = producer[video_in[0]]
    # The stream from the keyframe on: a slice of the reader's bytes, no header to prepend.
    assert cut.schema == "_TensorSubscript" and cut.device == "cpu" and video_in[1] == "cpu"
    assert producer[cut.inputs[0][0]].instance == "reader"
    assert not [o for o in ops if o.schema == "Cat"]


def test_gpu_decoding_defaults_to_lanes_of_several_decoder_threads():
    from synapt_fast.loader.dali_loader import GPU_LANES, GPU_THREADS_PER_LANE, default_lanes, threads_per_lane

    assert default_lanes("cpu", "reader", 2) == 2 and threads_per_lane("cpu", 2, 2) == 1  # unchanged
    assert default_lanes("gpu", "reader", 2) == GPU_LANES >= 2
    assert threads_per_lane("gpu", 2, GPU_LANES) == GPU_THREADS_PER_LANE
    assert GPU_LANES * GPU_THREADS_PER_LANE >= 7  # an H100 / H200 has 7 NVDEC engines
    assert threads_per_lane("gpu", 32, 2) == 16  # more workers given: all of them used
    assert default_lanes("gpu", "seek", 4) == 1
