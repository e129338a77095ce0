"""The trainer end to end on real shards, the real DALI loader and real torchrun (gloo on CPU).

Tiny everything: 3 synthetic classes x 7 clips (21: two ranks get 11 and 10 clips, so with
batch 3 they take 4 and 3 steps: a last batch of one clip is skipped, BatchNorm cannot train on
it), 8-frame 32x32 clips, `tsn_tiny` at 4 frames of 32x32.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from synapt_fast.engine import checkpoint as ckpt
from synapt_fast.engine.recipe import dumps, from_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def tiny_sets(tmp_path_factory) -> Path:
    """`tp` (pre-training: 3 classes, 7 train + 3 val clips each) and `down_b000` (2 classes)."""
    from synapt_fast.synth import build

    root = tmp_path_factory.mktemp("train_shards")
    jobs = build.plan(classes=3, clips_per_class=7, val_clips_per_class=3, downstream_classes=2,
                      downstream_clips_per_class=4, downstream_val_clips_per_class=2, biases=[0.0],
                      frames=8, size=32, fps=30.0, seed=0, name="tp")
    build.write(jobs, root, workers=1)
    return root


def recipe_file(tmp_path: Path, sets: Path, name: str, *, dataset: str = "tp", **overrides) -> Path:
    table = {
        "seed": 1,
        "data": {"train": str(sets / dataset / "train"), "val": str(sets / dataset / "val"), "batch_size": 3,
                 "num_frames": 4, "image_size": 32, "workers": 1, "shuffle_buffer": 8},
        "model": {"name": "tsn_tiny", "mode": "pretrain"},
        "optim": {"lr": 0.05, "epochs": 3, "warmup_epochs": 0.5, "clip_grad_norm": 10.0},
        "output": {"dir": str(tmp_path / "runs"), "name": name, "log_every": 1, "checkpoint_minutes": 0.0},
    }
    r = from_dict(table, [f"{k.replace('__', '.')}={v}" for k, v in overrides.items()])
    path = tmp_path / f"{name}.toml"
    path.write_text(dumps(r))
    return path


def torchrun(recipe: Path, *args: str, nproc: int = 2, **popen) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "synapt_fast.train", "--recipe", str(recipe), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True, **popen)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def run_inprocess(recipe: Path, *args: str) -> int:
    """`python -m synapt_fast.train` in this process (saves an interpreter start per run)."""
    from synapt_fast.engine.main import main

    handler = signal.getsignal(signal.SIGTERM)
    try:
        return main(["--recipe", str(recipe), *args])
    finally:
        signal.signal(signal.SIGTERM, handler)


def weights(run_dir: Path, name: str = ckpt.LAST) -> dict[str, torch.Tensor]:
    return ckpt.load(run_dir / name)["state_dict"]


def records(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


@pytest.fixture(scope="session")
def reference_run(tiny_sets, tmp_path_factory) -> Path:
    """An uninterrupted 2-process run: 3 epochs of 4 steps (one rank takes 3 in each)."""
    tmp = tmp_path_factory.mktemp("reference")
    code, out = finish(torchrun(recipe_file(tmp, tiny_sets, "ref")))
    assert code == 0, out
    return tmp / "runs" / "ref"


# Rank 0 takes 3, 4 and 3 steps; the global step after an epoch counts the longest rank (4).
RANK0_STEPS = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11]


def test_two_process_run(reference_run):
    result = json.loads((reference_run / "result.json").read_text())
    assert result["world_size"] == 2 and result["steps"] == 12 and result["dataset"] == "tp"
    # Both ranks hold identical weights after every step, uneven epochs included.
    assert result["rank_weight_spread"] == 0.0
    train = records(reference_run, "train")
    assert [r["step"] for r in train] == RANK0_STEPS
    assert all(math.isfinite(r["loss"]) and r["clips_per_s"] > 0 and 0 <= r["data_wait"] <= 1 for r in train)
    evals = records(reference_run, "eval")
    assert len(evals) == 3 and all(e["videos"] == 9 for e in evals)  # every val clip once across ranks
    confusion = json.loads((reference_run / "confusion.json").read_text())
    assert sum(map(sum, confusion["matrix"])) == 9 and len(confusion["class_names"]) == 3
    for key in ("top1", "top5", "clip_top1", "train_clips_per_s", "eval_clips_per_s"):
        assert result[key] >= 0
    assert result["top5"] == 1.0  # 3 classes: top-5 is everything
    assert (reference_run / ckpt.BEST).exists() and (reference_run / "recipe.toml").exists()
    assert not list(reference_run.glob("*.tmp"))


def test_schedule_counts_the_longest_rank():
    from synapt_fast.engine.schedule import steps_per_rank

    assert steps_per_rank(21, 2, 2, 0) == [5, 6] and steps_per_rank(21, 2, 2, 1) == [6, 5]
    assert steps_per_rank(20, 2, 2, 0) == [5, 5]
    assert steps_per_rank(21, 2, 3, 0, skip_single=True) == [3, 4]  # 10 clips: 3+3+3 (+1 skipped)


def _wait_for_step(run_dir: Path, step: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    t0 = time.time()
    path = run_dir / "metrics.jsonl"
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"run ended before step {step}:\n{proc.communicate()[0]}")
        if path.exists():
            steps = [json.loads(l).get("step", 0) for l in path.read_text().splitlines() if l.strip()]
            if steps and max(steps) >= step:
                return
        time.sleep(0.02)
    raise AssertionError(f"no step {step} within {timeout} s")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_killed_run_resumes_to_the_same_weights(how, tiny_sets, reference_run, tmp_path):
    recipe = recipe_file(tmp_path, tiny_sets, "ref", output__checkpoint_minutes=0.0 if how == "sigterm" else 1e-9)
    run_dir = tmp_path / "runs" / "ref"
    proc = torchrun(recipe)
    _wait_for_step(run_dir, 6, proc)  # inside the second epoch
    if how == "sigterm":
        os.kill(proc.pid, signal.SIGTERM)  # torchrun forwards it to both workers, as a scheduler would
    else:
        for pid in [proc.pid, *_descendants(proc.pid)]:  # torchrun starts workers in their own sessions
            os.kill(pid, signal.SIGKILL)
    code, out = finish(proc)
    assert code != 0
    state = ckpt.load(run_dir / ckpt.LAST)
    assert 0 < state["step"] < 12, "the stop must land mid-run"
    code, out = finish(torchrun(recipe, "--resume"))
    assert code == 0, out
    ref, got = weights(reference_run), weights(run_dir)
    assert ref.keys() == got.keys()
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    ref_res = json.loads((reference_run / "result.json").read_text())
    res = json.loads((run_dir / "result.json").read_text())
    assert (res["top1"], res["steps"]) == (ref_res["top1"], ref_res["steps"])
    # The resumed run's logs read like the uninterrupted one: every step once.
    assert [r["step"] for r in records(run_dir, "train")] == RANK0_STEPS
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows if r["kind"] == "train"] == RANK0_STEPS
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == RANK0_STEPS


def test_existing_run_needs_resume(tiny_sets, reference_run, tmp_path, capsys):
    recipe = recipe_file(tmp_path, tiny_sets, "ref", output__dir=str(reference_run.parent))
    assert run_inprocess(recipe) == 2
    assert "output.name" in capsys.readouterr().err
    recipe = recipe_file(tmp_path, tiny_sets, "ref", output__dir=str(reference_run.parent), optim__lr=0.01)
    assert run_inprocess(recipe, "--resume") == 2
    assert "optim.lr" in capsys.readouterr().err


def test_linear_probe_changes_only_the_head(tiny_sets, reference_run, tmp_path):
    init = reference_run / ckpt.BEST
    recipe = recipe_file(tmp_path, tiny_sets, "lp", dataset="down_b000", model__mode="linear_probe",
                         model__init=str(init), optim__epochs=2, optim__lr=0.5)
    assert run_inprocess(recipe) == 0
    before, after = weights(init.parent, init.name), weights(tmp_path / "runs" / "lp")
    head = {"fc.weight", "fc.bias"}
    assert after["fc.weight"].shape[0] == 2  # the downstream task's 2 classes
    assert not torch.equal(after["fc.weight"][:, :4], torch.zeros_like(after["fc.weight"][:, :4]))
    for k in after:
        if k not in head:
            assert torch.equal(before[k], after[k]), f"{k} changed under linear probing"
    result = json.loads((tmp_path / "runs" / "lp" / "result.json").read_text())
    assert result["mode"] == "linear_probe" and result["pretrained_on"] == "tp" and result["dataset"] == "down_b000"


def test_finetune_and_scratch(tiny_sets, reference_run, tmp_path):
    ft = recipe_file(tmp_path, tiny_sets, "ft", dataset="down_b000", model__mode="finetune",
                     model__init=str(reference_run / ckpt.BEST), optim__epochs=1)
    sc = recipe_file(tmp_path, tiny_sets, "sc", dataset="down_b000", model__mode="scratch", optim__epochs=1)
    assert run_inprocess(ft) == 0 and run_inprocess(sc) == 0
    before, after = weights(reference_run, ckpt.BEST), weights(tmp_path / "runs" / "ft")
    assert not torch.equal(before["conv1.weight"], after["conv1.weight"])  # the backbone trains
    res = json.loads((tmp_path / "runs" / "sc" / "result.json").read_text())
    assert res["pretrained_on"] == "none" and res["mode"] == "scratch"


def test_an_empty_or_other_variant_init_checkpoint_is_one_line_naming_it(tiny_sets, reference_run, tmp_path, capsys):
    empty = tmp_path / "empty.pth.tar"
    empty.write_bytes(b"")
    recipe = recipe_file(tmp_path, tiny_sets, "ft_empty", dataset="down_b000", model__mode="finetune",
                         model__init=str(empty), optim__epochs=1)
    assert run_inprocess(recipe) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: {empty}: empty file (0 bytes), not a checkpoint; was its save cut short?"]
    # The reference run's best checkpoint says arch tsn_tiny: a temporal-pooling TSN refuses it.
    recipe = recipe_file(tmp_path, tiny_sets, "ft_variant", dataset="down_b000", model__mode="finetune",
                         model__name="tsn_tiny_tpool_max", model__init=str(reference_run / ckpt.BEST), optim__epochs=1)
    assert run_inprocess(recipe) == 2
    err = capsys.readouterr().err
    assert "trained as resnet (arch 'tsn_tiny'), but the model is resnet-ts-max" in err and "Traceback" not in err
    recipe = recipe_file(tmp_path, tiny_sets, "no_val", data__val=str(tmp_path / "nosuch" / "val"))
    assert run_inprocess(recipe) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: data.val: {tmp_path / 'nosuch' / 'val'}: no manifest "
                                        "(is this a shard split folder?)"]


def test_step_schedule_drops_the_lr_at_its_epochs(tiny_sets, tmp_path):
    recipe = recipe_file(tmp_path, tiny_sets, "steps", optim__warmup_epochs=0.0, optim__schedule="step",
                         optim__step_epochs="2", optim__step_factor=0.1)
    assert run_inprocess(recipe) == 0
    lrs = {}
    for r in records(tmp_path / "runs" / "steps", "train"):  # each epoch's first record
        lrs.setdefault(r["epoch"], r["lr"])
    assert lrs[0] == pytest.approx(0.05) and lrs[1] == pytest.approx(0.05) and lrs[2] == pytest.approx(0.005)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_precisions(precision, tiny_sets, tmp_path):
    recipe = recipe_file(tmp_path, tiny_sets, f"p_{precision}", precision=precision, optim__epochs=1,
                         model__name="i3d_tiny", data__sampling="dense", eval__num_clips=2, eval__crops=3)
    assert run_inprocess(recipe) == 0
    run_dir = tmp_path / "runs" / f"p_{precision}"
    train = records(run_dir, "train")
    assert len(train) == 7 and all(math.isfinite(r["loss"]) for r in train)
    ev = records(run_dir, "eval")[0]
    assert ev["views"] == 6 and ev["videos"] == 9
    state = ckpt.load(run_dir / ckpt.LAST)
    assert bool(state["scaler"]) == (precision == "fp16")
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_sets, tmp_path, capsys):
    recipe = recipe_file(tmp_path, tiny_sets, "nan", optim__epochs=1, optim__lr=1e30, optim__clip_grad_norm=0.0,
                         optim__warmup_epochs=0.0, output__checkpoint_minutes=1e-9)
    assert run_inprocess(recipe) == 3
    err = capsys.readouterr().err
    assert "non-finite loss" in err
    last = tmp_path / "runs" / "nan" / ckpt.LAST
    if last.exists():
        state = ckpt.load(last)
        assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


def test_bench_train_quick(tmp_path):
    from tests.conftest import run_cli

    run_cli("bench", "train", "--quick", "--out-dir", str(tmp_path))
    record = json.loads((tmp_path / "train.json").read_text())
    assert [r["model"] for r in record["results"]] == ["tsn_tiny", "i3d_tiny"]
    for r in record["results"]:
        assert r["bare_ms_per_step"] > 0 and r["trainer_ms_per_step"] > 0 and 0 <= r["data_wait"] <= 1
    assert "| tsn_tiny |" in (tmp_path / "train.md").read_text()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("signalled_rank", [1, 0])
def test_sigterm_to_any_one_rank_stops_every_rank_with_143(signalled_rank, tiny_sets, reference_run, tmp_path):
    """A scheduler may signal one task first: every rank must stop after the same step, rank 0 having
    saved, and exit 143; no rank may run on into a collective the others have left."""
    recipe = recipe_file(tmp_path, tiny_sets, "ref")
    run_dir = tmp_path / "runs" / "ref"
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2")
        procs.append(subprocess.Popen([sys.executable, "-m", "synapt_fast.train", "--recipe", str(recipe)],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env))
    try:
        _wait_for_step(run_dir, 5, procs[0])  # inside the second epoch
        procs[signalled_rank].send_signal(signal.SIGTERM)
        codes = [finish(p, timeout=60) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [c for c, _ in codes] == [143, 143], codes
    state = ckpt.load(run_dir / ckpt.LAST)
    assert 0 < state["step"] < 12
    code, out = finish(torchrun(recipe, "--resume"))
    assert code == 0, out
    ref, got = weights(reference_run), weights(run_dir)
    for k in ref:
        assert torch.equal(ref[k], got[k]), k


def test_device_and_version_choices_for_gpu_launchers():
    import inspect

    from synapt_fast.engine.build import no_buffer_sync_kwargs
    from synapt_fast.format.codecs import DecodeDeviceError, cuda_index, decode_for_trainer

    assert cuda_index(0, 1) == 0 and cuda_index(3, 1) == 0  # one GPU per process (CUDA_VISIBLE_DEVICES)
    assert cuda_index(2, 8) == 2  # torchrun: every process sees the node's GPUs
    with pytest.raises(DecodeDeviceError, match="LOCAL_RANK 4 but only 2 CUDA device"):
        cuda_index(4, 2)
    assert decode_for_trainer("cpu", "auto") == "cpu"  # a CPU trainer decodes on the CPU, GPU or not
    assert decode_for_trainer("cuda:1", "auto") == "auto"  # the loader may still pick the CPU for a tiny VP9
    assert decode_for_trainer("cuda:0", "cpu") == "cpu"
    here = inspect.signature(torch.nn.parallel.DistributedDataParallel).parameters
    before_2_13 = ("module", "device_ids", "output_device", "dim", "broadcast_buffers", "init_sync",
                  "process_group", "bucket_cap_mb", "find_unused_parameters", "check_reduction",
                  "gradient_as_bucket_view", "static_graph", "delay_all_reduce_named_params",
                  "param_to_hook_all_reduce", "mixed_precision", "device_mesh", "skip_all_reduce_unused_params")
    assert no_buffer_sync_kwargs(before_2_13) == {"broadcast_buffers": False}
    key = "forward_sync_buffers" if "forward_sync_buffers" in here else "broadcast_buffers"
    assert no_buffer_sync_kwargs(here) == {key: False}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="the CUDA generator state needs a GPU")
def test_rng_state_keeps_only_this_processes_gpu():
    state = ckpt.rng_state()
    assert "cuda" not in state  # never every visible GPU's state: a resume may see fewer
    assert torch.equal(state["cuda_device"], torch.cuda.get_rng_state())
    torch.cuda.manual_seed(123)
    ckpt.set_rng_state(state)
    assert torch.equal(torch.cuda.get_rng_state(), state["cuda_device"])
    # a checkpoint of the older kind (every visible GPU's state) still restores this GPU's
    ckpt.set_rng_state({**{k: v for k, v in state.items() if k != "cuda_device"}, "cuda": [state["cuda_device"]]})
    assert torch.equal(torch.cuda.get_rng_state(), state["cuda_device"])
