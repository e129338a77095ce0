"""`report`: the paper's tables and figures from finished runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail


def report(
    runs_dir: Path = typer.Argument(..., help="Folder searched (recursively) for result.json, sweep.json and bias JSON."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default: RUNS_DIR/report)."),
    throughput: Optional[Path] = typer.Option(None, help="A `synapt-fast bench shapes` record (shapes.json): adds "
                                              "throughput for every model x dataset, run or not."),
):
    """The paper's Tables 1-5 (top-1 with training / evaluation clips/s) and Figures 2-4 from finished runs."""
    from rich.console import Console

    from synapt_fast.analysis.report import build, write

    if not runs_dir.is_dir():
        raise fail(f"{runs_dir}: not a folder")
    out = out or runs_dir / "report"
    if throughput is not None and not throughput.is_file():
        raise fail(f"{throughput}: no such file (write it with `synapt-fast bench shapes`)")
    rep = build(runs_dir, exclude=out, shapes=throughput)
    if not rep.runs and not rep.bias and throughput is None:
        raise fail(f"{runs_dir}: no result.json of a transfer run (finetune, linear_probe, scratch) or bias record")
    text = write(rep, out)
    typer.echo(text)  # plain: markdown tables must not be wrapped at the terminal width
    figures = sorted(p.name for p in out.glob("fig*.png"))
    Console().print(f"-> {out / 'report.md'}, {len(rep.tables)} table(s) as CSV, figures: {', '.join(figures) or 'none'}",
                    highlight=False)
