"""The cluster scripts, run for real on localhost: `slurm/train.sbatch` and an emitted multi-node
sweep array execute under stand-ins for `srun` (one task per "node", in parallel) and `scontrol`
(hostnames, requeue), so their torchrun agents meet through a c10d rendezvous on 127.0.0.1 and
train the weights a one-node, two-process run trains. Only Slurm itself is replaced."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_train_cli import same_run
from tests.conftest import run_cli
from tests.engine.test_train import recipe_file, reference_run, tiny_sets  # noqa: F401

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

SRUN = """#!/bin/bash
# srun: the job step's tasks, one per node, in parallel; exits with the highest task code.
while [ "${1:0:1}" = "-" ]; do shift; done
pids=()
for ((i = 0; i < SLURM_NNODES; i++)); do SLURM_NODEID=$i SLURM_PROCID=$i "$@" & pids+=($!); done
rc=0
for p in "${pids[@]}"; do wait "$p"; c=$?; [ "$c" -gt "$rc" ] && rc=$c; done
exit $rc
"""
SCONTROL = """#!/bin/bash
case "$1 $2" in
  "show hostnames") echo 127.0.0.1; echo 127.0.0.2 ;;
  requeue*) echo "requeue $2" >> "$SHIM_LOG" ;;
  *) exit 1 ;;
esac
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def slurm(tmp_path) -> dict:
    """The environment of a 2-node job with 1 GPU per node, Slurm's commands replaced."""
    shims = tmp_path / "shims"
    shims.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (shims / name).write_text(text)
        (shims / name).chmod(0o755)
    return dict(os.environ, PATH=f"{shims}:{Path(sys.executable).parent}:{os.environ['PATH']}",
                SLURM_NNODES="2", SLURM_GPUS_ON_NODE="1", SLURM_JOB_ID="4242", SLURM_JOB_NODELIST="node[1-2]",
                SYNAPT_RDZV_PORT=str(free_port()), SHIM_LOG=str(tmp_path / "scontrol.log"), OMP_NUM_THREADS="1")


def test_train_sbatch_on_two_nodes_gives_the_one_node_result(slurm, tiny_sets, reference_run, tmp_path):
    recipe = recipe_file(tmp_path, tiny_sets, "ref")
    proc = subprocess.run(["bash", str(ROOT / "slurm" / "train.sbatch"), str(recipe)], env=slurm, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 node(s) x 1 process(es), rendezvous 127.0.0.1:" in proc.stderr
    same_run(reference_run, tmp_path / "runs" / "ref")
    assert not (tmp_path / "scontrol.log").exists()  # finished: nothing requeued


def test_train_sbatch_requeues_a_run_stopped_with_143(slurm, tmp_path):
    stopped = tmp_path / "stopped"
    stopped.write_text("#!/bin/bash\necho \"$@\" >> \"$SHIM_LOG.args\"\nexit 143\n")  # a trainer that was SIGTERMed
    stopped.chmod(0o755)
    proc = subprocess.run(["bash", str(ROOT / "slurm" / "train.sbatch"), "r.toml", "optim.lr=0.1"],
                          env=dict(slurm, SYNAPT_FAST=str(stopped)), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 143
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    args = shlex.split((tmp_path / "scontrol.log.args").read_text().splitlines()[0])
    assert args[:4] == ["train", "r.toml", "--resume", "--nproc"] and args[-1] == "optim.lr=0.1"
    assert args[args.index("--nnodes") + 1] == "2" and args[args.index("--rdzv-id") + 1] == "4242"


def test_sweep_emit_over_nodes_runs_under_slurm_and_collects(slurm, tiny_sets, tmp_path):
    recipe = recipe_file(tmp_path, tiny_sets, "sw", optim__epochs=1)
    jobs = tmp_path / "jobs"
    grid = ["--grid", "optim.lr=0.05,0.02", "--nproc", "1", "--nodes", "2"]
    proc = run_cli("sweep", str(recipe), *grid, "--emit", str(jobs), cwd=tmp_path)
    collect = proc.stdout.strip().splitlines()[-1].strip()
    assert collect == shlex.join(["synapt-fast", "sweep", str(recipe), *grid, "--collect"])
    assert f"# When every task has finished: {collect}" in (jobs / "sweep.sbatch").read_text()
    early = run_cli(*shlex.split(collect)[1:], cwd=tmp_path, check=False)
    assert early.returncode == 2 and "missing" in early.stdout  # nothing ran yet
    for task in ("0", "1"):
        env = dict(slurm, SLURM_ARRAY_TASK_ID=task, SLURM_ARRAY_JOB_ID="4242", SYNAPT_RDZV_PORT=str(free_port()))
        done = subprocess.run(["bash", str(jobs / "sweep.sbatch")], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    run_cli(*shlex.split(collect)[1:], cwd=tmp_path)
    record = json.loads((tmp_path / "runs" / "sw" / "sweep.json").read_text())
    assert [c["status"] for c in record["cells"]] == ["skipped", "skipped"] and record["chosen"]
    results = [json.loads((Path(c["run"]) / "result.json").read_text()) for c in record["cells"]]
    assert [r["world_size"] for r in results] == [2, 2]  # 2 nodes x 1 process
