"""`synapt-fast train`: the launcher gives torchrun's result, the trainer's exit codes survive
torchrun (143 after SIGTERM), usage errors exit 2, and two torchrun agents meeting on localhost
(`--nnodes 2`, c10d rendezvous) train the same weights as one node with two processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from synapt_fast.engine.launch import Nodes, job_exit_code, torchrun_args
from tests.engine.test_train import _wait_for_step, finish, recipe_file, reference_run, tiny_sets, weights  # noqa: F401

pytestmark = pytest.mark.slow


def cli(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="200")
    return subprocess.Popen([sys.executable, "-m", "synapt_fast.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd, start_new_session=True)


def same_run(ref: Path, got: Path) -> None:
    a, b = weights(ref), weights(got)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ra, rb = (json.loads((d / "result.json").read_text()) for d in (ref, got))
    for key in ("top1", "top5", "clip_top1", "steps", "world_size", "best_top1"):
        assert ra[key] == rb[key], key


def test_nproc_2_gives_torchruns_result(tiny_sets, reference_run, tmp_path):
    code, out = finish(cli("train", str(recipe_file(tmp_path, tiny_sets, "ref")), "--nproc", "2"))
    assert code == 0, out
    same_run(reference_run, tmp_path / "runs" / "ref")


def test_under_torchrun_each_process_is_one_rank(tiny_sets, reference_run, tmp_path):
    recipe = str(recipe_file(tmp_path, tiny_sets, "ref"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             "-m", "synapt_fast.cli", "train", recipe], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    code, out = finish(proc)
    assert code == 0, out
    same_run(reference_run, tmp_path / "runs" / "ref")
    # A worker of a launcher (torchrun sets LOCAL_RANK) does not launch again.
    proc = subprocess.run([sys.executable, "-m", "synapt_fast.cli", "train", recipe, "--nproc", "2"],
                          capture_output=True, text=True, env=dict(env, LOCAL_RANK="0"))
    assert proc.returncode == 2 and "already running under torchrun" in proc.stderr


def test_two_nodes_on_localhost_give_the_one_node_result(tiny_sets, reference_run, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recipe = str(recipe_file(tmp_path, tiny_sets, "ref"))
    node = ["train", recipe, "--nproc", "1", "--nnodes", "2", "--rdzv-endpoint", f"127.0.0.1:{port}",
            "--rdzv-id", "two-nodes"]
    agents = [cli(*node), cli(*node)]
    results = [finish(a, timeout=180) for a in agents]
    assert all(code == 0 for code, _ in results), results
    same_run(reference_run, tmp_path / "runs" / "ref")


def test_sigterm_to_the_launcher_exits_143_and_resume_finishes(tiny_sets, reference_run, tmp_path):
    recipe = str(recipe_file(tmp_path, tiny_sets, "ref"))
    run_dir = tmp_path / "runs" / "ref"
    proc = cli("train", recipe, "--nproc", "2")
    _wait_for_step(run_dir, 6, proc)
    os.kill(proc.pid, signal.SIGTERM)  # as Slurm signals a job step before its time limit
    code, out = finish(proc)
    assert code == 143, out  # torchrun alone would exit 1
    code, out = finish(cli("train", recipe, "--nproc", "2", "--resume"))
    assert code == 0, out
    same_run(reference_run, run_dir)


def test_usage_and_recipe_errors_exit_2_before_any_worker_starts(tiny_sets, tmp_path):
    recipe = str(recipe_file(tmp_path, tiny_sets, "bad"))
    code, out = finish(cli("train", recipe, "--nproc", "2", "optim.lrr=0.1"))
    assert code == 2 and "optim.lrr: unknown key" in out, out
    code, out = finish(cli("train", recipe, "--nproc", "0"))
    assert code == 2 and "--nproc" in out, out
    code, out = finish(cli("train", recipe, "--nnodes", "2"))
    assert code == 2 and "--rdzv-endpoint" in out, out
    assert not (tmp_path / "runs" / "bad").exists()


def test_a_runtime_failure_keeps_its_own_exit_code_through_torchrun(tiny_sets, tmp_path):
    # An empty model.init passes the launcher's check of the recipe (a path) and is refused by
    # every worker when it loads the weights (exit 2 there); torchrun alone would exit 1.
    empty = tmp_path / "empty.pth.tar"
    empty.write_bytes(b"")
    recipe = recipe_file(tmp_path, tiny_sets, "ft", model__mode="finetune", model__init=str(empty))
    code, out = finish(cli("train", str(recipe), "--nproc", "2"))
    assert code == 2 and f"{empty}: empty file (0 bytes), not a checkpoint" in out, out


def test_exit_code_mapping():
    assert job_exit_code([143, 143]) == 143 and job_exit_code([-15, 143]) == 143
    assert job_exit_code([4, -15]) == 4 and job_exit_code([143, 3]) == 3  # the cause, not the stopped peers
    assert job_exit_code([-11]) == 139 and job_exit_code([1, 4]) == 1


def test_torchrun_arguments():
    assert torchrun_args(2, ["--recipe", "r.toml"])[:3] == ["--standalone", "--nproc-per-node", "2"]
    multi = torchrun_args(4, ["--recipe", "r.toml"], Nodes(3, "head:29500", "job7"))
    assert multi[:8] == ["--nnodes", "3", "--rdzv-backend", "c10d", "--rdzv-endpoint", "head:29500",
                         "--rdzv-id", "job7"]
    assert multi[-4:] == ["-m", "synapt_fast.train", "--recipe", "r.toml"]
    with pytest.raises(ValueError, match="--rdzv-endpoint"):
        Nodes(2).check()
