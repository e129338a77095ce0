"""`sweep`: a recipe over a hyper-parameter grid, here, or as a Slurm job array and collected later."""

from __future__ import annotations

import shlex
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail


class Preset(str, Enum):
    pretrain = "pretrain"
    downstream = "downstream"


def collect_command(recipe: Path, overrides: list[str], preset: Preset | None, grid: list[str], nproc: int,
                    nodes: int, seeds: str | None = None) -> str:
    """The `synapt-fast sweep ... --collect` that gathers an emitted sweep's results."""
    args = ["synapt-fast", "sweep", str(recipe), *overrides, *(["--preset", preset.value] if preset else [])]
    for axis in grid:
        args += ["--grid", axis]
    if seeds:
        args += ["--seeds", seeds]
    args += ["--nproc", str(nproc), *(["--nodes", str(nodes)] if nodes > 1 else []), "--collect"]
    return shlex.join(args)


def sweep(
    recipe: Path = typer.Argument(..., help="Recipe TOML to expand."),
    overrides: Optional[list[str]] = typer.Argument(None, metavar="[SECTION.KEY=VALUE]...",
                                                    help="Fixed overrides for every cell, as for train."),
    preset: Optional[Preset] = typer.Option(None, help="The paper's grid: pretrain (12 cells) or downstream (18)."),
    grid: list[str] = typer.Option([], help="An axis section.key=v1,v2 (repeatable; global_batch=... is the batch "
                                            "over all processes)."),
    nproc: int = typer.Option(1, min=1, help="Processes per node and cell (torchrun when > 1)."),
    nodes: int = typer.Option(1, min=1, help="Nodes per cell (with --emit): global batches are divided by "
                              "nproc x nodes."),
    emit: Optional[Path] = typer.Option(None, help="Write a Slurm job-array script and commands.txt here; run nothing."),
    seeds: Optional[str] = typer.Option(None, help="Run every grid point with each of these seeds (e.g. 0,1,2) "
                                                   "and choose by the mean; report shows mean ± std."),
    collect: bool = typer.Option(False, "--collect", help="Run nothing: gather the cells' results (after an "
                                 "emitted array) into sweep.json / sweep.md; missing cells are named."),
):
    """Run a recipe over a hyper-parameter grid, skip finished cells, pick the best by validation top-1."""
    from rich.console import Console

    from synapt_fast.engine.recipe import RecipeError
    from synapt_fast.engine.sweep import emit as emit_jobs, expand, grid_axes, run_sweep

    console = Console()
    overrides = overrides or []
    if nodes > 1 and emit is None and not collect:
        raise fail("--nodes > 1 needs --emit (a cell on several nodes runs under Slurm)")
    world = nproc * nodes
    try:
        seed_list = [int(x) for x in seeds.split(",") if x.strip()] if seeds else []
        cells = expand(recipe, grid_axes(preset and preset.value, grid), nproc=world, overrides=overrides,
                       seeds=seed_list)
    except ValueError as e:  # RecipeError, or --seeds that are not integers
        raise fail(str(e) if isinstance(e, RecipeError) else f"--seeds {seeds!r}: expected integers like 0,1,2")
    except OSError as e:
        raise fail(str(e))
    if emit is not None:
        gather = collect_command(recipe, overrides, preset, grid, nproc, nodes, seeds)
        script, listing = emit_jobs(cells, emit, nproc=nproc, nodes=nodes, collect=gather)
        console.print(f"{len(cells)} cells -> {script} (sbatch it: array 0-{len(cells) - 1}, {nodes} node(s) x "
                      f"{nproc} GPU(s) per cell) and {listing}\nwhen every task has finished, collect the "
                      f"results with:\n  {gather}", highlight=False, markup=False)
        return
    if not collect:
        console.print(f"sweep of {len(cells)} cells, {nproc} process(es) each -> {cells[0].run_dir.parent}",
                      highlight=False)

    def on_start(cell, resumed):
        console.print(f"[{cell.index + 1}/{len(cells)}] {cell.tag}: {'resuming' if resumed else 'training'}",
                      highlight=False)

    def on_done(o):
        if o.status in ("failed", "stale", "missing"):
            console.print(f"[{o.index + 1}/{len(cells)}] {o.tag}: [red]{o.status}[/red] {o.message}", highlight=False)
        else:
            console.print(f"[{o.index + 1}/{len(cells)}] {o.tag}: {o.status}, best top-1 {o.best_top1:.4f}",
                          highlight=False)

    outcome = run_sweep(cells, nproc=world, on_start=on_start, on_done=on_done, run=not collect)
    console.print(outcome.markdown, markup=False, highlight=False)
    if outcome.chosen is not None:
        console.print(f"chosen: {outcome.chosen.run}", highlight=False)
    console.print(f"-> {outcome.dir / 'sweep.json'}, {outcome.dir / 'sweep.md'}", highlight=False)
    if outcome.failed:
        raise fail(f"{len(outcome.failed)} cell(s) failed: " + ", ".join(
            f"{o.tag} ({o.message})" for o in outcome.failed))
