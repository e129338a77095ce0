"""The trainer on a GPU, fed by DALI's GPU decoder: bf16 steps of every full-size model, a 2-process
NCCL run, and SIGTERM + --resume equal to an uninterrupted run. Skipped without CUDA (marker `gpu`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from synapt_fast.engine import checkpoint as ckpt
from synapt_fast.format.codecs import cuda_device_count

from .test_train import _wait_for_step, finish, recipe_file, torchrun, weights

HAS_GPU = torch.cuda.is_available() and cuda_device_count() > 0
pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU visible to DALI and torch")]

# The full-size models as the recipes train them: (sampling, frames, interval).
FULL_SIZE = {"tsn_r50": ("segments", 8, 1), "i3d_r50": ("dense", 8, 8), "r2plus1d_r50": ("dense", 8, 8),
             "timesformer_b16": ("uniform", 8, 1)}


@pytest.fixture(scope="module")
def sets_224(tmp_path_factory) -> Path:
    """2 classes x 4 clips of 64 frames at short side 256: enough pixels and frames for 224² crops of
    8x8 dense clips."""
    from synapt_fast.synth import build

    root = tmp_path_factory.mktemp("gpu_shards")
    jobs = build.plan(classes=2, clips_per_class=4, val_clips_per_class=2, downstream_classes=0,
                      downstream_clips_per_class=0, downstream_val_clips_per_class=0, biases=[], frames=64,
                      size=256, fps=30.0, seed=0, name="g")
    build.write(jobs, root, workers=os.cpu_count() or 1)
    return root / "g"


@pytest.fixture(scope="module")
def nvdec_sets(tmp_path_factory) -> Path:
    """test_train's `tiny_sets` at 128x128, NVDEC's smallest VP9 picture (3 classes x 7 clips)."""
    from synapt_fast.synth import build

    root = tmp_path_factory.mktemp("nvdec_shards")
    jobs = build.plan(classes=3, clips_per_class=7, val_clips_per_class=3, downstream_classes=0,
                      downstream_clips_per_class=0, downstream_val_clips_per_class=0, biases=[], frames=8,
                      size=128, fps=30.0, seed=0, name="tp")
    build.write(jobs, root, workers=os.cpu_count() or 1)
    return root


@pytest.mark.parametrize("model", list(FULL_SIZE))
def test_bf16_steps_of_each_full_size_model_fed_by_the_gpu_loader(model, sets_224, tmp_path):
    from synapt_fast.engine.build import build_trainer
    from synapt_fast.engine.distributed import setup_distributed
    from synapt_fast.engine.metrics import ProgressDisplay
    from synapt_fast.engine.recipe import from_dict

    sampling, frames, interval = FULL_SIZE[model]
    r = from_dict({
        "precision": "bf16",
        "data": {"train": str(sets_224 / "train"), "val": str(sets_224 / "val"), "batch_size": 2, "sampling": sampling,
                 "num_frames": frames, "interval": interval, "image_size": 224, "decode": "gpu", "workers": 4},
        "model": {"name": model, "mode": "pretrain", "channels_last": model != "timesformer_b16"},
        "optim": {"lr": 0.01, "epochs": 1},
        "output": {"dir": str(tmp_path / "runs"), "name": model, "log_every": 1, "checkpoint_minutes": 0.0},
    })
    trainer = build_trainer(r, setup_distributed(), resume=False)
    assert trainer.env.device.type == "cuda" and trainer.train_loader.device == "gpu"
    rec = trainer.train_epoch(0, 0, ProgressDisplay(False, 0))
    assert torch.isfinite(torch.tensor(rec["loss"])) and rec["step"] == 4
    assert rec["peak_mem_mib"] > 0 and 0.0 <= rec["data_wait"] <= 1.0
    res = trainer.evaluate()
    assert res.videos == 4


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs for a 2-process NCCL run")
def test_two_process_nccl_run_on_gpu_decoded_clips(nvdec_sets, tmp_path):
    recipe = recipe_file(tmp_path, nvdec_sets, "nccl", data__decode="gpu", precision="bf16")
    code, out = finish(torchrun(recipe), timeout=600)
    assert code == 0, out
    result = json.loads((tmp_path / "runs" / "nccl" / "result.json").read_text())
    assert result["device"] == "cuda" and result["world_size"] == 2 and result["rank_weight_spread"] == 0.0


def test_sigterm_and_resume_on_a_gpu_equal_an_uninterrupted_run(nvdec_sets, tmp_path):
    env = dict(os.environ, CUBLAS_WORKSPACE_CONFIG=":4096:8")  # deterministic cuBLAS, as deterministic=true needs
    common = dict(data__decode="gpu", deterministic="true", optim__epochs=3)

    def run(name: str, *args: str) -> subprocess.Popen:
        recipe = recipe_file(tmp_path, nvdec_sets, name, **common)
        return subprocess.Popen([sys.executable, "-m", "synapt_fast.train", "--recipe", str(recipe), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)

    code, out = finish(run("whole"), timeout=600)
    assert code == 0, out
    proc = run("stopped")
    _wait_for_step(tmp_path / "runs" / "stopped", 8, proc, timeout=600)  # inside the second epoch
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc, timeout=120)
    assert code == 143, out
    assert 0 < ckpt.load(tmp_path / "runs" / "stopped" / ckpt.LAST)["step"] < 21
    code, out = finish(run("stopped", "--resume"), timeout=600)
    assert code == 0, out
    whole, resumed = weights(tmp_path / "runs" / "whole"), weights(tmp_path / "runs" / "stopped")
    for k in whole:
        assert torch.equal(whole[k], resumed[k]), k
