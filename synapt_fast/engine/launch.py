"""Starting a training run: in this process, or through torchrun for several processes or nodes.

`synapt-fast train RECIPE --nproc N` runs `torch.distributed.run` in this process (it becomes the
elastic agent and starts N workers of `python -m synapt_fast.train`); `--nnodes M
--rdzv-endpoint HOST:PORT` starts one such agent per node, meeting at HOST:PORT (c10d
rendezvous, as `slurm/train.sbatch` does with one task per node).

torchrun exits 1 whatever its workers returned; `job_exit_code` turns the workers' codes back
into the trainer's documented ones (engine/main.py): 143 when every failed worker was stopped by
SIGTERM (checkpoint saved: requeue with `--resume`), else the first real failure's code.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from .trainer import STOP_EXIT_CODE

TRAIN_MODULE = "synapt_fast.train"


def under_launcher() -> bool:
    """Whether this process is already a torchrun (or Slurm-with-torchrun) worker."""
    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ


@dataclass(frozen=True)
class Nodes:
    """Where the processes run: one node (standalone rendezvous) or `nnodes` meeting at `endpoint`."""

    nnodes: int = 1
    endpoint: str = ""  # HOST:PORT of the rendezvous; required when nnodes > 1
    run_id: str = "synapt-fast"  # the same on every node of one job (Slurm: the job id)

    def check(self) -> None:
        if self.nnodes < 1:
            raise ValueError(f"--nnodes must be >= 1, got {self.nnodes}")
        if self.nnodes > 1 and not self.endpoint:
            raise ValueError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the first node's address)")
        if self.endpoint and ":" not in self.endpoint:
            raise ValueError(f"--rdzv-endpoint {self.endpoint!r}: expected HOST:PORT")


def torchrun_args(nproc: int, train_args: list[str], nodes: Nodes = Nodes()) -> list[str]:
    """torch.distributed.run's arguments for `nproc` workers per node running the trainer."""
    if nodes.nnodes == 1 and not nodes.endpoint:
        where = ["--standalone"]
    else:
        where = ["--nnodes", str(nodes.nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", nodes.endpoint,
                 "--rdzv-id", nodes.run_id]
    return [*where, "--nproc-per-node", str(nproc), "-m", TRAIN_MODULE, *train_args]


def job_exit_code(codes: list[int]) -> int:
    """One exit status from the failed workers' codes, in the order they failed (negative: the
    signal that killed the worker). Workers stopped by SIGTERM after saving exit 143; when one rank
    fails, torchrun stops the others with SIGTERM, so their 143 (or -15) is not the cause."""
    codes = [128 - c if c < 0 else c for c in codes if c != 0]
    if not codes or all(c == STOP_EXIT_CODE for c in codes):
        return STOP_EXIT_CODE if codes else 0
    return next(c for c in codes if c != STOP_EXIT_CODE)


def launch(nproc: int, train_args: list[str], nodes: Nodes = Nodes()) -> int:
    """Run the trainer under torch.distributed.run in this process; the trainer's exit code."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    nodes.check()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default, without its warning
    try:
        run(parse_args(torchrun_args(nproc, train_args, nodes)))
    except ChildFailedError as e:
        failures = sorted(e.failures.items(), key=lambda kv: kv[1].timestamp)
        code = job_exit_code([f.exitcode for _, f in failures])
        first_rank, first = failures[0]
        print(f"training stopped: rank {first_rank} exited {first.exitcode} first; exit {code}", file=sys.stderr)
        return code
    except SignalException as e:
        # The agent itself got the signal and passed it to the workers, which saved and stopped.
        return 128 + int(e.sigval)
    return 0
