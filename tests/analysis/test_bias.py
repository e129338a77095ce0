"""`synapt-fast bias`: Eq. 1 against the paper's Table 2, the probe on a known answer, scene bias
of synthetic tasks measured through DALI features, the feature cache, missing weights."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from synapt_fast.analysis.bias import (BiasError, FeatureSpec, build_backbone, fit_probe, measure_bias,
                              representation_bias)
from synapt_fast.models import create_model
from synapt_fast.sharding.subsets import read_split, select, write_subset
from synapt_fast.synth import build

from tests.conftest import run_cli

# Table 2 of the paper: (dataset, classes, ImageNet LP accuracy M in %, representation bias B).
TABLE2 = [
    ("Kinetics-150", 150, 44.67, 6.07),
    ("Synthetic-150", 150, 22.32, 5.07),
    ("UCF101", 101, 65.32, 6.04),
    ("HMDB51", 51, 38.56, 4.30),
    ("Mini-SSV2", 87, 13.68, 3.57),
    ("Diving48", 48, 10.96, 2.40),
    ("IkeaFA", 12, 34.76, 2.06),
    # log2(0.0259 * 155) = 2.0052: 2.01 at two decimals, as printed.
    ("UAV-Human", 155, 2.59, 2.01),
]


@pytest.mark.parametrize("name,classes,m,b", TABLE2, ids=[row[0] for row in TABLE2])
def test_eq1_reproduces_table2(name, classes, m, b):
    assert f"{representation_bias(m / 100, classes):.2f}" == f"{b:.2f}"


def test_eq1_rejects_what_is_not_an_accuracy():
    with pytest.raises(ValueError):
        representation_bias(38.56, 51)  # a percentage, not a fraction
    with pytest.raises(ValueError):
        representation_bias(0.0, 51)


def test_probe_on_separable_features_is_exact_and_deterministic():
    rng = np.random.default_rng(0)
    classes = 5
    centres = rng.normal(0, 10, size=(classes, 16))
    y = np.repeat(np.arange(classes), 20)
    x = centres[y] + rng.normal(0, 0.5, size=(len(y), 16))
    probe = fit_probe(x[::2], y[::2], classes)
    m = float((probe.predict(x[1::2]) == y[1::2]).mean())
    assert m == 1.0 and representation_bias(m, classes) == pytest.approx(math.log2(classes))
    again = fit_probe(x[::2], y[::2], classes)
    assert np.array_equal(again.weight, probe.weight)
    # Labels unrelated to the features: the probe cannot do much better than chance.
    shuffled = rng.permutation(y)
    noise = fit_probe(x[::2], shuffled[::2], classes)
    assert (noise.predict(x[1::2]) == shuffled[1::2]).mean() < 0.5


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    """Two synthetic downstream tasks, scene bias 0.0 and 0.9 (same clips, different backgrounds)."""
    root = tmp_path_factory.mktemp("bias")
    jobs = build.plan(classes=0, clips_per_class=0, val_clips_per_class=0, downstream_classes=4,
                      downstream_clips_per_class=12, downstream_val_clips_per_class=6, biases=[0.0, 0.9],
                      frames=8, size=32, fps=30.0, seed=0)
    build.write(jobs, root, workers=2)
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A torchvision-format (tiny) ResNet state dict with a 1000-way ImageNet head."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny_resnet.pth"
    torch.save(create_model("tsn_tiny", num_classes=1000).state_dict(), path)
    return path


def _bias_cli(tasks, weights, task, cache, out, check=True):
    return run_cli("bias", str(tasks / task / "train"), str(tasks / task / "val"), "--weights", str(weights),
                   "--arch", "tsn_tiny", "--frames", "4", "--size", "32", "--cache-dir", str(cache),
                   "--out", str(out), check=check)


def test_scene_bias_raises_B_and_features_are_cached(tasks, weights, tmp_path):
    cache = tmp_path / "cache"
    spec = FeatureSpec("tsn_tiny", frames=4, size=32)
    low = measure_bias(tasks / "down_b000" / "train", tasks / "down_b000" / "val", weights, spec, cache_dir=cache)
    proc = _bias_cli(tasks, weights, "down_b090", cache, tmp_path / "high.json")
    assert "train extracted, val extracted" in proc.stdout and "B " in proc.stdout
    high = json.loads((tmp_path / "high.json").read_text())
    # Same clips and frozen features; only the scene-label correlation differs.
    assert high["B"] > low["B"] + 0.4, (low["M"], high["M"])
    assert high["B"] == pytest.approx(math.log2(high["M"] * 4)) and high["M_rnd"] == 0.25
    assert set(high["per_class_train_accuracy"]) == set(high["class_names"]) == set(high["per_class_val_accuracy"])
    assert set(high["per_class_train_cv_accuracy"]) == set(high["class_names"])
    assert high["train_cv_accuracy"] > low["train_cv_accuracy"]
    assert high["num_train"] == 48 and high["num_val"] == 24

    files = sorted(cache.glob("down_b090-*.npz"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    again = measure_bias(tasks / "down_b090" / "train", tasks / "down_b090" / "val", weights, spec, cache_dir=cache)
    assert again["features"]["train"]["cache_hit"] and again["features"]["val"]["cache_hit"]
    assert [f.stat().st_mtime_ns for f in files] == mtimes and sorted(cache.glob("down_b090-*.npz")) == files
    assert again["M"] == high["M"] and again["per_class_val_accuracy"] == high["per_class_val_accuracy"]


def test_cache_is_invalidated_when_the_shards_change(tasks, weights, tmp_path):
    src, val = tasks / "down_b090" / "train", tasks / "down_b090" / "val"
    train = tmp_path / "sub" / "train"
    manifest, samples = read_split(src)

    def make(per_class):
        sel = select(manifest, samples, seed=0, per_class=per_class)
        write_subset(src, train, manifest, sel, seed=0, info={}, overwrite=True)

    def run():
        return measure_bias(train, val, weights, FeatureSpec("tsn_tiny", frames=4, size=32),
                            cache_dir=tmp_path / "cache", batch_size=8)

    make(6)
    first = run()
    assert not first["features"]["train"]["cache_hit"] and first["num_train"] == 24
    assert run()["features"]["train"]["cache_hit"]
    make(8)  # same path, different shards
    changed = run()
    assert not changed["features"]["train"]["cache_hit"] and changed["num_train"] == 32
    assert changed["features"]["train"]["key"] != first["features"]["train"]["key"]
    assert changed["features"]["val"]["cache_hit"]  # val did not change
    caches = list((tmp_path / "cache").glob("sub-train-*.npz"))
    assert [str(c) for c in caches] == [changed["features"]["train"]["cache"]]  # the stale one is gone


def test_missing_weights_is_a_clear_error_and_no_download(tasks, tmp_path):
    proc = _bias_cli(tasks, tmp_path / "resnet50-0676ba61.pth", "down_b000", tmp_path / "c", tmp_path / "o.json",
                     check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "resnet50-0676ba61.pth" in proc.stderr and "IMAGENET1K_V1" in proc.stderr
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "c").exists()


def test_real_path_is_a_torchvision_resnet50(tmp_path):
    """tsn_r50 takes a torchvision-format ResNet-50 file and gives 2048-d frame-averaged features;
    a file of another architecture is refused, naming it."""
    torch.manual_seed(0)
    path = tmp_path / "resnet50.pth"
    torch.save(create_model("tsn_r50", num_classes=1000).state_dict(), path)
    model = build_backbone(FeatureSpec("tsn_r50", frames=2, size=32), path)
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 2, 3, 32, 32)).shape == (1, 2048)
    tiny = tmp_path / "tiny.pth"
    torch.save(create_model("tsn_tiny", num_classes=1000).state_dict(), tiny)
    with pytest.raises(BiasError, match="tiny.pth"):
        build_backbone(FeatureSpec("tsn_r50"), tiny)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(BiasError, match="junk.pth"):
        build_backbone(FeatureSpec("tsn_r50"), tmp_path / "junk.pth")


def _bias_split(tmp_path, width, height):
    from synapt_fast.synth.sampleclips import SampleSource
    from synapt_fast.sharding.pipeline import ShardOptions, shard_source
    from synapt_fast.sharding.transcode import EncodeOptions

    out = tmp_path / "b" / "train"
    shard_source(SampleSource(2, 2, 8, width, height), out, ShardOptions("b", "train"), EncodeOptions(short_side=0))
    return out


def test_features_of_a_cpu_loader_are_computed_on_the_cpu(tmp_path, weights):
    from synapt_fast.analysis.bias import extract

    spec = FeatureSpec("tsn_tiny", frames=4, size=32)
    model = build_backbone(spec, weights)
    feats, labels = extract(_bias_split(tmp_path, 64, 48), model, spec, batch_size=2, workers=1, decode="cpu")
    assert next(model.parameters()).device.type == "cpu"
    assert feats.shape == (4, model.num_features) and sorted(labels.tolist()) == [0, 0, 1, 1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_features_from_gpu_decoding_run_on_the_gpu_and_match_the_cpus(tmp_path, weights):
    from synapt_fast.analysis.bias import extract

    spec = FeatureSpec("tsn_tiny", frames=4, size=64)
    split = _bias_split(tmp_path, 192, 128)  # above NVDEC's smallest VP9 picture (128x128)
    gpu_model = build_backbone(spec, weights)
    on_gpu, labels_gpu = extract(split, gpu_model, spec, batch_size=2, workers=2, decode="gpu")
    assert next(gpu_model.parameters()).device.type == "cuda"
    on_cpu, labels_cpu = extract(split, build_backbone(spec, weights), spec, batch_size=2, workers=2, decode="cpu")
    assert np.array_equal(labels_gpu, labels_cpu)
    # Decoders differ by a few levels of rounding; features of the same frames stay close.
    rel = np.abs(on_gpu - on_cpu).mean() / (np.abs(on_cpu).mean() + 1e-6)
    assert rel < 0.05, rel
