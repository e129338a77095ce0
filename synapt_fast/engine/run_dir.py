"""The run folder `<output.dir>/<output.name>`: what a run writes, and the checks before it does.

Only rank 0 writes here (ranks hold identical state, so one copy does); the other ranks get a
`RunDir` whose writes do nothing, so callers need no rank checks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from synapt_fast.atomic import write_atomic

from . import checkpoint as ckpt
from .log_sinks import CsvLog, TensorBoardLog
from .metrics import MetricsLog
from .recipe import Recipe, RecipeError, write_recipe


class RunDir:
    def __init__(self, path: Path, *, main: bool):
        self.path, self.main = Path(path), main
        self.log = MetricsLog(self.path / "metrics.jsonl" if main else None)

    @property
    def last(self) -> Path:
        return self.path / ckpt.LAST

    def checkpoint_to_resume(self, resume: bool) -> dict | None:
        """The last checkpoint's state when resuming; refuses to start over an existing run."""
        if self.last.exists() and not resume:
            raise RecipeError(f"output.name: {self.path} already holds a checkpoint; pass --resume to "
                              f"continue it, or choose another output.name")
        if self.main:
            self.path.mkdir(parents=True, exist_ok=True)
        if not (resume and self.last.exists()):
            return None
        state = ckpt.load(self.last)
        self._reconcile_best(state)
        return state

    def _reconcile_best(self, state: dict) -> None:
        """The best checkpoint must hold the epoch the last one names as best.

        `save` writes the last checkpoint, then the best: a process killed between the two leaves
        a best file from an older epoch. Then the last checkpoint is the best epoch's own state
        (saved at that epoch's end), so it is copied; any other disagreement is an error, since
        a wrong best file would silently seed every downstream fine-tuning.
        """
        if state["best_epoch"] < 0 or not self.main:
            return
        best = self.path / ckpt.BEST
        held = ckpt.load(best, mmap=True)["best_epoch"] if best.exists() else None
        if held == state["best_epoch"]:
            return
        if state["epoch"] == state["best_epoch"] + 1 and state["batch"] == 0:
            ckpt.save_atomic(state, best)
            return
        raise RecipeError(f"output.name: {best} holds the best of epoch {None if held is None else held + 1}, but "
                          f"{self.last} names epoch {state['best_epoch'] + 1} as best; the run folder was "
                          f"changed by hand. Restore the matching files or start a new output.name")

    def start(self, recipe: Recipe, *, resumed_step: int | None) -> None:
        """Drop metrics past the resumed step (or all of them for a new run), open the CSV and
        TensorBoard logs beside them; save the recipe."""
        if not self.main:
            return
        jsonl = self.path / "metrics.jsonl"
        if resumed_step is not None:
            self.log.truncate_after(resumed_step)
        else:
            jsonl.unlink(missing_ok=True)
        if recipe.output.csv:
            csv_log = CsvLog(self.path / "metrics.csv")
            csv_log.rebuild(jsonl)
            self.log.sinks.append(csv_log)
        if recipe.output.tensorboard:
            if resumed_step is None:
                shutil.rmtree(self.path / "tensorboard", ignore_errors=True)
            self.log.sinks.append(TensorBoardLog(self.path / "tensorboard", resumed_step=resumed_step))
        write_recipe(recipe, self.path / "recipe.toml")

    def save(self, state: dict, *, best: bool) -> None:
        if not self.main:
            return
        ckpt.save_atomic(state, self.last)
        if best:
            ckpt.save_atomic(state, self.path / ckpt.BEST)

    def write_json(self, name: str, record: dict, *, indent: int | None = None) -> None:
        if self.main:
            write_atomic(self.path / name, json.dumps(record, indent=indent) + "\n", durable=False)
