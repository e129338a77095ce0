"""`predict`: class names and scores for raw video files or a shard split."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail
from synapt_fast.cli.eval import Crops


class Output(str, Enum):
    jsonl = "jsonl"
    table = "table"


def predict(
    checkpoint: Path = typer.Argument(..., help="A run's model_best.pth.tar or checkpoint.pth.tar."),
    videos: Optional[list[Path]] = typer.Argument(None, help="Video files (any container PyAV reads)."),
    split: Optional[Path] = typer.Option(None, help="A shard split instead of (or beside) files."),
    topk: int = typer.Option(5, min=1, help="Classes per video."),
    clips: Optional[int] = typer.Option(None, min=1, help="Temporal clips per video (default: the checkpoint "
                                        "recipe's eval.num_clips)."),
    crops: Optional[Crops] = typer.Option(None, help="Spatial crops per clip (default: the recipe's eval.crops)."),
    fps: float = typer.Option(30.0, help="Frame rate the files are resampled to (the shards' rate)."),
    short_side: int = typer.Option(128, help="Short side the files are scaled to first (the shards' size)."),
    fmt: Output = typer.Option(Output.jsonl, "--format", help="JSON lines (one per video) or a table."),
    override: list[str] = typer.Option([], "--set", metavar="SECTION.KEY=VALUE", help="Override the checkpoint's "
                                       "recipe, as for train (repeatable; e.g. data.backend=reference)."),
):
    """Top-k classes and probabilities per video, through the same sampling and views as evaluation.

    Unreadable files are reported on stderr and skipped (exit 1 when any was); the others are scored.
    """
    from synapt_fast.engine.checkpoint import CheckpointError
    from synapt_fast.engine.distributed import setup_distributed
    from synapt_fast.engine.evaluate_checkpoint import load_trained, view_overrides
    from synapt_fast.engine.predict import predict_files, predict_split
    from synapt_fast.engine.recipe import RecipeError
    from synapt_fast.format.verify import ShardError

    if not videos and split is None:
        raise fail("give video files, --split DIR, or both")
    skipped = []
    try:
        trained = load_trained(checkpoint, overrides=[*override, *view_overrides(clips, crops and int(crops.value))])
        preds = list(predict_files(trained, videos or [], topk=topk, fps=fps, short_side=short_side,
                                   on_error=lambda p, msg: skipped.append(msg)))
        if split is not None:
            preds += predict_split(trained, split, setup_distributed(), topk=topk)
    except (RecipeError, CheckpointError, ShardError, OSError) as e:
        raise fail(str(e))
    if fmt is Output.jsonl:
        for p in preds:
            typer.echo(json.dumps(p.record()))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("video", *(["label"] if split is not None else []), "top classes")
        for p in preds:
            top = ", ".join(f"{name} {prob:.3f}" for name, prob in p.top)
            table.add_row(p.source, *([p.label or ""] if split is not None else []), top)
        Console().print(table)
    for msg in skipped:
        typer.echo(f"skipped: {msg}", err=True)
    if skipped:
        raise typer.Exit(1)
