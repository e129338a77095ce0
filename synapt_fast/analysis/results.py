"""Reading a run's `result.json` with its types checked, for `report` and `sweep`.

A result file is data that outlives the code that wrote it and can be edited by hand; a value of
the wrong type must give one line naming the file and the key, not a traceback three frames into
a table builder. Only the keys the readers use are checked; others pass through untouched.

    result = read_result(run_dir / "result.json")   # a dict, or ResultError("<path>: top1: ...")
"""

from __future__ import annotations

import json
import math
from pathlib import Path

NUMBERS = ("top1", "top5", "best_top1", "clip_top1", "clip_top5", "train_clips_per_s", "eval_clips_per_s",
           "train_frames_per_s", "rank_weight_spread")
COUNTS = ("best_epoch", "eval_videos", "eval_views", "epochs", "steps", "world_size", "global_batch",
          "num_classes", "seeds")
TEXTS = ("run", "model", "mode", "dataset", "val_set", "pretrained_on", "precision", "device")
TABLES = ("hyper_parameters", "machine")


class ResultError(ValueError):
    """A result file that is not JSON, not an object, or has a value of the wrong type; names both."""


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_result(result, where: str) -> dict:
    """`result` itself when every known key has its type (absent or null is fine), else ResultError."""
    if not isinstance(result, dict):
        raise ResultError(f"{where}: expected a JSON object, got {type(result).__name__}")
    for key, ok, what in ((NUMBERS, _is_number, "a finite number"),
                          (COUNTS, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
                          (TEXTS, lambda v: isinstance(v, str), "a string"),
                          (TABLES, lambda v: isinstance(v, dict), "an object")):
        for k in key:
            v = result.get(k)
            if v is not None and not ok(v):
                raise ResultError(f"{where}: {k}: expected {what}, got {type(v).__name__} {v!r}")
    return result


def read_result(path: Path) -> dict:
    """The checked content of one `result.json`."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ResultError(f"{path}: not readable JSON ({e})") from None
    return check_result(result, str(path))
