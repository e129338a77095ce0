"""`plot`: loss and accuracy curves of runs as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail


def plot(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders (each holds metrics.jsonl); several share one plot."),
    out: Optional[Path] = typer.Option(None, help="PNG to write (default: <first run>/curves.png)."),
):
    """Training loss per step and validation top-1/top-5 per epoch, one colour per run."""
    from synapt_fast.analysis.curves import plot_runs

    try:
        path = plot_runs(run_dirs, out or run_dirs[0] / "curves.png")
    except FileNotFoundError as e:
        raise fail(str(e))
    typer.echo(f"-> {path}")
