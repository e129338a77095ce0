"""Run logging: `metrics.jsonl` records and the rank-0 progress display.

`metrics.jsonl` holds one JSON object per line with a `kind`: `train` (every `log_every` steps:
loss, lr, clips/s, frames/s, data-wait share, peak memory), `epoch` (the epoch's averages) and
`eval` (top-1/top-5 at clip and video level, evaluation clips/s). On resume, records past the
checkpoint's step are dropped first, so a resumed run's file reads like an uninterrupted one.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import torch

from synapt_fast.atomic import write_atomic


def peak_memory_mib(device: torch.device) -> float:
    """Peak GPU memory allocated by torch, or this process's peak resident set on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


class MetricsLog:
    """Appends JSON records to `metrics.jsonl` (rank 0 only; other ranks pass `path=None`)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.sinks: list = []  # also fed every record: log_sinks.CsvLog, log_sinks.TensorBoardLog

    def truncate_after(self, step: int) -> None:
        """Drop records written after `step` (they belong to the part of the run being redone)."""
        if self.path is None or not self.path.exists():
            return
        lines = [line for line in self.path.read_text().splitlines() if line.strip()]
        keep = []
        for n, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if n == len(lines):
                    break  # the last line, cut by a kill mid-write: its step is redone anyway
                from .checkpoint import CheckpointError

                raise CheckpointError(f"{self.path}:{n}: not a JSON record; fix or remove the line to resume") from None
            if record.get("step", 0) <= step:
                keep.append(line)
        write_atomic(self.path, "".join(line + "\n" for line in keep), durable=False)

    def write(self, kind: str, **record) -> None:
        if self.path is None:
            return
        record = {"kind": kind, "time": round(time.time(), 3), **record}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for sink in self.sinks:
            sink.write(record)

    def close(self) -> None:
        for sink in self.sinks:
            if hasattr(sink, "close"):
                sink.close()


def _fmt_eta(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}"


class ProgressDisplay:
    """A rich progress bar per epoch on rank 0: step, loss, lr, clips/s, data-wait share, ETA.

    Without a terminal (a cluster job's log) there is no bar: a plain progress line every
    `log_every` steps, and each epoch ends with one summary line.
    """

    def __init__(self, enabled: bool, total_steps: int):
        self.enabled = enabled
        self.total_steps = total_steps
        self.progress = None
        self.task = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.console = Console()
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[rate]} clips/s  "
                           "wait {task.fields[wait]}  ETA {task.fields[eta]}"),
                console=self.console, transient=True, disable=not self.console.is_terminal)

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        if self.progress:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(f"epoch {epoch + 1}/{epochs}", total=steps, completed=done,
                                               loss="-", lr="-", rate="-", wait="-", eta="-")

    def update(self, completed: int, *, loss: float, lr: float, clips_per_s: float, wait: float,
               eta_s: float) -> None:
        if self.enabled and not self.console.is_terminal and self.task is not None:
            # A cluster log has no terminal: a plain line every log_every steps instead of a bar.
            t = self.progress.tasks[self.progress.task_ids.index(self.task)]
            self.console.print(f"{t.description} step {completed}/{t.total}: loss {loss:.4f}, lr {lr:.2e}, "
                               f"{clips_per_s:.1f} clips/s, data wait {wait:.0%}, ETA {_fmt_eta(eta_s)}",
                               highlight=False, soft_wrap=True)
        if self.progress and self.task is not None:
            self.progress.update(self.task, completed=completed, loss=f"{loss:.4f}", lr=f"{lr:.2e}",
                                 rate=f"{clips_per_s:.1f}", wait=f"{wait:.0%}", eta=_fmt_eta(eta_s))

    def print(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False)
