"""Where `metrics.jsonl` records also go: `metrics.csv` beside it and TensorBoard event files.

`metrics.jsonl` stays the record of truth (a resume truncates it to the checkpoint's step); the
CSV is rebuilt from it after a truncation and appended to afterwards, and TensorBoard is told to
purge events past the resumed step, so all three read like one uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from synapt_fast.atomic import write_atomic

CSV_COLUMNS = ("kind", "time", "epoch", "batch", "step", "loss", "lr", "clips_per_s", "frames_per_s", "data_wait",
               "peak_mem_mib", "seconds", "top1", "top5", "clip_top1", "clip_top5", "videos", "views")
# TensorBoard tags per record kind: "<kind>/<field>".
SCALARS = {"train": ("loss", "lr", "clips_per_s", "data_wait", "peak_mem_mib"),
           "epoch": ("loss", "clips_per_s", "data_wait", "seconds", "peak_mem_mib"),
           "eval": ("top1", "top5", "clip_top1", "clip_top5", "clips_per_s")}


def _row(record: dict) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if record.get(c) is None else record.get(c) for c in CSV_COLUMNS])
    return buf.getvalue()


class CsvLog:
    def __init__(self, path: Path):
        self.path = path

    def rebuild(self, jsonl: Path) -> None:
        """The CSV of every record in `jsonl` (after a resume truncated it, or for a new run)."""
        lines = jsonl.read_text().splitlines() if jsonl.exists() else []
        rows = [_row(json.loads(line)) for line in lines if line.strip()]
        write_atomic(self.path, ",".join(CSV_COLUMNS) + "\n" + "".join(rows), durable=False)

    def write(self, record: dict) -> None:
        with open(self.path, "a", newline="") as f:
            f.write(_row(record))


class TensorBoardLog:
    """Scalars per record, at the record's global step, in `<run>/tensorboard/`."""

    def __init__(self, folder: Path, *, resumed_step: int | None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # tensorboard is a dependency; a trimmed environment may lack it
            raise RuntimeError(f"output.tensorboard = true needs the tensorboard package ({e}); install it or "
                               f"set output.tensorboard = false") from None
        # purge_step drops events a resumed run is about to write again.
        self.writer = SummaryWriter(str(folder), purge_step=None if resumed_step is None else resumed_step + 1)

    def write(self, record: dict) -> None:
        step = record.get("step", 0)
        for name in SCALARS.get(record["kind"], ()):
            if isinstance(record.get(name), (int, float)):
                self.writer.add_scalar(f"{record['kind']}/{name}", record[name], step)
        if record["kind"] != "train":
            self.writer.flush()  # epoch ends and evaluations are visible at once

    def close(self) -> None:
        self.writer.close()
