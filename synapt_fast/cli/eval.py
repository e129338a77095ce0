"""`eval`: a trained checkpoint at test-time views on any split."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail


class Crops(str, Enum):
    one = "1"
    three = "3"
    ten = "10"


def evaluate(
    recipe: Path = typer.Argument(..., help="The run's recipe (its recipe.toml, or the file it was trained from)."),
    overrides: Optional[list[str]] = typer.Argument(None, metavar="[SECTION.KEY=VALUE]...",
                                                    help="Recipe overrides, as for train (e.g. data.workers=4)."),
    checkpoint: Path = typer.Option(..., help="model_best.pth.tar or checkpoint.pth.tar of a run."),
    split: Optional[Path] = typer.Option(None, help="Shard split to evaluate (default: the recipe's data.val)."),
    clips: Optional[int] = typer.Option(None, min=1, help="Temporal clips per video (dense sampling; default: "
                                        "the recipe's eval.num_clips)."),
    crops: Optional[Crops] = typer.Option(None, help="Spatial crops per clip (default: the recipe's eval.crops)."),
    out: Optional[Path] = typer.Option(None, help="Folder for eval.json, confusion.json, confusion.png "
                                       "(default: <run>/eval/<set>_<split>_<clips>x<crops>/)."),
):
    """Clip- and video-level top-1/top-5, per-class accuracy, confusion matrix and throughput -> eval.json."""
    from synapt_fast.engine.checkpoint import CheckpointError
    from synapt_fast.engine.distributed import set_cpu_threads, setup_distributed
    from synapt_fast.engine.evaluate_checkpoint import default_out_dir, load_trained, run_eval, view_overrides
    from synapt_fast.engine.recipe import RecipeError, load_recipe
    from synapt_fast.format.verify import ShardError

    try:
        r = load_recipe(recipe, [*(overrides or []), *view_overrides(clips, crops and int(crops.value))])
        trained = load_trained(checkpoint, r)
        env = setup_distributed()
        if env.device.type == "cpu":
            set_cpu_threads(r.data.workers)
        split = split or Path(r.data.val)
        record = run_eval(trained, split, env, out or default_out_dir(checkpoint, split, r))
    except (RecipeError, CheckpointError, ShardError, OSError) as e:
        raise fail(str(e))
    if env.main:
        typer.echo(json.dumps({k: v for k, v in record.items() if k != "per_class_top1"}, indent=1))
        typer.echo(f"-> {out or default_out_dir(checkpoint, split, r)}/eval.json", err=True)
