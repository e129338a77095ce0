"""The run folder `<output.dir>/<output.name>`: what a run writes, and the checks before it does.

Only rank 0 writes here (ranks hold identical state, so one copy does); the other ranks get a
`RunDir` whose writes do nothing, so callers need no rank checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from synapt_fast.atomic import write_atomic

from . import checkpoint as ckpt
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
        return ckpt.load(self.last) if resume and self.last.exists() else None

    def start(self, recipe: Recipe, *, resumed_step: int | None) -> None:
        """Drop metrics past the resumed step (or all of them for a new run); save the recipe."""
        if not self.main:
            return
        if resumed_step is not None:
            self.log.truncate_after(resumed_step)
        else:
            (self.path / "metrics.jsonl").unlink(missing_ok=True)
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
