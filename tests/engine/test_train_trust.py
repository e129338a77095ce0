"""Results that cannot be silently wrong after a crash or on bad input: the trainer's refusals and
repairs, each on real shards and real checkpoints (see test_train.py for the fixtures)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from synapt_fast.engine import checkpoint as ckpt
from synapt_fast.format.index import read_index
from synapt_fast.format.manifest import MANIFEST

from .test_train import recipe_file, records, run_inprocess, tiny_sets  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tiny_sets, tmp_path_factory) -> Path:
    """A complete one-process run of 3 epochs."""
    tmp = tmp_path_factory.mktemp("finished")
    assert run_inprocess(recipe_file(tmp, tiny_sets, "done")) == 0
    return tmp


def _copy_run(finished_run: Path, tmp_path: Path) -> Path:
    shutil.copytree(finished_run / "runs", tmp_path / "runs")
    return tmp_path / "runs" / "done"


def test_a_crash_between_last_and_best_checkpoint_is_repaired_on_resume(tiny_sets, finished_run, tmp_path):
    """The state a kill between the two writes leaves: the last checkpoint (end of epoch 3) names
    epoch 3 as best, the best file still holds an older epoch. The resumed run must not report
    epoch 3 while the best file holds another."""
    run = _copy_run(finished_run, tmp_path)
    last = ckpt.load(run / ckpt.LAST)
    last["best_epoch"], last["best_top1"] = 2, 1.0
    ckpt.save_atomic(last, run / ckpt.LAST)
    best = ckpt.load(run / ckpt.BEST)
    best["best_epoch"] = 0  # an older epoch's file
    best["state_dict"] = {k: v + 1 if v.is_floating_point() else v for k, v in best["state_dict"].items()}
    ckpt.save_atomic(best, run / ckpt.BEST)
    (run / "result.json").unlink()
    assert run_inprocess(recipe_file(tmp_path, tiny_sets, "done"), "--resume") == 0
    result = json.loads((run / "result.json").read_text())
    repaired = ckpt.load(run / ckpt.BEST)
    assert result["best_epoch"] == repaired["best_epoch"] + 1 == 3
    for k, v in last["state_dict"].items():
        assert torch.equal(repaired["state_dict"][k], v), k


def test_a_best_file_that_disagrees_otherwise_stops_the_resume(tiny_sets, finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path)
    last = ckpt.load(run / ckpt.LAST)
    last["best_epoch"] = 0
    ckpt.save_atomic(last, run / ckpt.LAST)
    best = ckpt.load(run / ckpt.BEST)
    best["best_epoch"] = 1
    ckpt.save_atomic(best, run / ckpt.BEST)
    assert run_inprocess(recipe_file(tmp_path, tiny_sets, "done"), "--resume") == 2
    err = capsys.readouterr().err
    assert "model_best.pth.tar holds the best of epoch 2" in err and "names epoch 1 as best" in err


def test_a_cut_last_metrics_line_does_not_block_resume(tiny_sets, finished_run, tmp_path):
    run = _copy_run(finished_run, tmp_path)
    metrics = run / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"kind": "train", "step": 9')  # killed mid-write
    assert run_inprocess(recipe_file(tmp_path, tiny_sets, "done"), "--resume") == 0
    assert records(run, "eval")  # the file parses again


def test_a_full_disk_names_the_checkpoint_and_keeps_the_old_one(tmp_path):
    """RLIMIT_FSIZE stands in for a full disk: the write fails part-way, like ENOSPC."""
    path = tmp_path / "checkpoint.pth.tar"
    ckpt.save_atomic({"w": torch.zeros(4)}, path)
    code = f"""
import resource, signal, torch
from synapt_fast.engine import checkpoint as ckpt
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))
try:
    ckpt.save_atomic({{"w": torch.zeros(1 << 20)}}, {str(path)!r})
except ckpt.CheckpointError as e:
    print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f"could not write {path}" in out and "disk full" in out
    assert torch.equal(ckpt.load(path)["w"], torch.zeros(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth.tar"]


def _copy_split(tiny_sets: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "tp"
    shutil.copytree(tiny_sets / "tp", dst)
    return dst


def test_an_edited_total_is_refused_like_verify_refuses_it(tiny_sets, tmp_path, capsys):
    sets = _copy_split(tiny_sets, tmp_path)
    manifest = sets / "train" / MANIFEST
    m = json.loads(manifest.read_text())
    m["num_samples"] = 99
    manifest.write_text(json.dumps(m))
    assert run_inprocess(recipe_file(tmp_path, tmp_path, "edited")) == 2
    err = capsys.readouterr().err
    assert "data.train" in err and "num_samples is 99, its shards hold 21" in err
    assert not (tmp_path / "runs" / "edited").exists()


def test_a_clip_that_does_not_decode_names_the_split_and_the_command(tiny_sets, tmp_path, capsys):
    sets = _copy_split(tiny_sets, tmp_path)
    split = sets / "train"
    tar = sorted(split.glob("*.tar"))[0]
    index = read_index(tar.with_suffix(".idx"))
    with open(tar, "r+b") as f:  # same sizes, so only decoding can tell
        for sample in index:
            for ext, offset, size, _ in sample:
                if ext == "ivf":
                    f.seek(offset + 32 + 12)  # past the IVF file and first frame headers
                    f.write(bytes(range(256)) * (size // 256 - 1))
    code = run_inprocess(recipe_file(tmp_path, tmp_path, "corrupt", optim__epochs=1))
    err = capsys.readouterr().err
    assert code == 4, err
    assert f"data.train: the loader failed on {split} (rank 0 reads {tar.name}" in err
    assert f"synapt-fast verify --decode {split}" in err
    # verify --decode then names the clip itself.
    from tests.conftest import run_cli

    proc = run_cli("verify", str(split), "--decode", check=False)
    assert proc.returncode != 0 and tar.name in proc.stdout + proc.stderr


def test_splits_too_small_to_train_or_evaluate_are_refused_up_front(tiny_sets, tmp_path):
    from synapt_fast.engine.build import build_trainer
    from synapt_fast.engine.distributed import Dist
    from synapt_fast.engine.recipe import RecipeError, load_recipe

    recipe = load_recipe(recipe_file(tmp_path, tiny_sets, "tiny"), ["data.batch_size=64"])
    many = Dist(0, 64, 0, torch.device("cpu"))  # more processes than the 9 validation clips
    with pytest.raises(RecipeError, match="data.val: .* has 9 clip\\(s\\), fewer than the 64 processes"):
        build_trainer(recipe, many, resume=False)
    one_clip_each = load_recipe(recipe_file(tmp_path, tiny_sets, "tiny"), ["data.val=" + recipe.data.train])
    with pytest.raises(RecipeError, match="data.train: .* has 21 clip\\(s\\): with 21 process"):
        build_trainer(one_clip_each, Dist(0, 21, 0, torch.device("cpu")), resume=False)


def test_unknown_model_and_unreadable_init_name_the_key(tiny_sets, tmp_path, capsys):
    assert run_inprocess(recipe_file(tmp_path, tiny_sets, "m"), "model.name=tsn_r51") == 2
    assert "model.name: unknown model 'tsn_r51'" in capsys.readouterr().err
    empty = tmp_path / "empty.pth.tar"
    empty.write_bytes(b"")
    assert run_inprocess(recipe_file(tmp_path, tiny_sets, "e", model__init=str(empty))) == 2
    assert f"{empty}: empty file" in capsys.readouterr().err


def test_logs_people_already_read(finished_run):
    """metrics.csv and TensorBoard events hold what metrics.jsonl holds (a resumed run's: see
    test_train.test_killed_run_resumes_to_the_same_weights)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = finished_run / "runs" / "done"
    jsonl = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    import csv

    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["kind"] for r in rows] == [r["kind"] for r in jsonl]
    assert [float(r["loss"]) for r in rows if r["kind"] == "train"] == [r["loss"] for r in jsonl
                                                                          if r["kind"] == "train"]
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/lr", "train/clips_per_s", "train/data_wait", "eval/top1", "eval/top5",
            "epoch/peak_mem_mib"} <= set(events.Tags()["scalars"])
    losses = [(e.step, e.value) for e in events.Scalars("train/loss")]
    assert losses == [(r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in jsonl if r["kind"] == "train"]
    assert [e.value for e in events.Scalars("eval/top1")] == pytest.approx([r["top1"] for r in jsonl
                                                                            if r["kind"] == "eval"])


def test_progress_lines_without_a_terminal(tiny_sets, tmp_path, capfd):
    assert run_inprocess(recipe_file(tmp_path, tiny_sets, "lines", optim__epochs=1, output__log_every=2)) == 0
    out = capfd.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("epoch 1/1 step ")]
    assert [line.split()[3] for line in lines] == ["2/7:", "4/7:", "6/7:"]  # 21 clips, batch 3, 1 process
    assert all("clips/s" in line and "ETA" in line for line in lines)


def test_confusion_is_the_best_epochs(finished_run):
    """confusion.json belongs to the epoch model_best.pth.tar holds (in this run not the last one),
    with per-class accuracy from its diagonal."""
    run = finished_run / "runs" / "done"
    result = json.loads((run / "result.json").read_text())
    evals = records(run, "eval")
    assert result["best_epoch"] < len(evals)  # the fixture's best epoch is not its last
    confusion = json.loads((run / "confusion.json").read_text())
    assert confusion["epoch"] + 1 == result["best_epoch"] == ckpt.load(run / ckpt.BEST)["best_epoch"] + 1
    matrix = confusion["matrix"]
    assert sum(row[i] for i, row in enumerate(matrix)) / sum(map(sum, matrix)) == pytest.approx(result["best_top1"])
    for i, name in enumerate(confusion["class_names"]):
        assert confusion["per_class_top1"][name] == pytest.approx(matrix[i][i] / sum(matrix[i]))
