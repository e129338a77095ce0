"""`sweep`: a recipe over a hyper-parameter grid."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail


def sweep(
    recipe: Path = typer.Argument(..., help="Recipe TOML to expand."),
    overrides: Optional[list[str]] = typer.Argument(None, help="Fixed section.key=value overrides for every cell."),
    preset: Optional[str] = typer.Option(None, help="The paper's grid: pretrain (12 cells) | downstream (18 cells)."),
    grid: list[str] = typer.Option([], help="An axis section.key=v1,v2 (repeatable; global_batch=... is the batch "
                                            "over all processes)."),
    nproc: int = typer.Option(1, help="Processes per cell (torchrun when > 1); global batches are divided by it."),
    emit: Optional[Path] = typer.Option(None, help="Write a Slurm job-array script and commands.txt here; run nothing."),
    seeds: Optional[str] = typer.Option(None, help="Run every grid point with each of these seeds (e.g. 0,1,2) "
                                                   "and choose by the mean; report shows mean ± std."),
):
    """Run a recipe over a hyper-parameter grid, skip finished cells, pick the best by validation top-1."""
    from rich.console import Console

    from synapt_fast.engine.recipe import RecipeError
    from synapt_fast.engine.sweep import emit as emit_jobs, expand, grid_axes, run_sweep

    console = Console()
    try:
        seed_list = [int(x) for x in seeds.split(",") if x.strip()] if seeds else []
        cells = expand(recipe, grid_axes(preset, grid), nproc=nproc, overrides=overrides or [], seeds=seed_list)
    except ValueError as e:  # RecipeError, or --seeds that are not integers
        raise fail(str(e) if isinstance(e, RecipeError) else f"--seeds {seeds!r}: expected integers like 0,1,2")
    except OSError as e:
        raise fail(str(e))
    if emit is not None:
        script, listing = emit_jobs(cells, emit, nproc=nproc)
        console.print(f"{len(cells)} cells -> {script} (sbatch it: array 0-{len(cells) - 1}) and {listing}",
                      highlight=False)
        return
    console.print(f"sweep of {len(cells)} cells, {nproc} process(es) each -> {cells[0].run_dir.parent}",
                  highlight=False)

    def on_start(cell, resumed):
        console.print(f"[{cell.index + 1}/{len(cells)}] {cell.tag}: {'resuming' if resumed else 'training'}",
                      highlight=False)

    def on_done(o):
        if o.status in ("failed", "stale"):
            console.print(f"[{o.index + 1}/{len(cells)}] {o.tag}: [red]{o.status}[/red] {o.message}", highlight=False)
        else:
            console.print(f"[{o.index + 1}/{len(cells)}] {o.tag}: {o.status}, best top-1 {o.best_top1:.4f}",
                          highlight=False)

    outcome = run_sweep(cells, nproc=nproc, on_start=on_start, on_done=on_done)
    console.print(outcome.markdown, markup=False, highlight=False)
    if outcome.chosen is not None:
        console.print(f"chosen: {outcome.chosen.run}", highlight=False)
    console.print(f"-> {outcome.dir / 'sweep.json'}, {outcome.dir / 'sweep.md'}", highlight=False)
    if outcome.failed:
        raise fail(f"{len(outcome.failed)} cell(s) failed: " + ", ".join(
            f"{o.tag} ({o.message})" for o in outcome.failed))
