"""`demo`: the README's main job, end to end."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("shards/demo"), help="Where the demo's shard sets go."),
    workers: int = typer.Option(2, help="Worker processes for rendering and encoding."),
    seed: int = typer.Option(0, help="Seed of the synthetic data."),
    runs: Path = typer.Option(Path("runs/demo"), help="Where the demo's training runs go."),
    nproc: int = typer.Option(2, help="Training processes per run (torchrun --nproc_per_node)."),
):
    """The main job end to end on the embedded synthetic dataset (offline, a few minutes on 2 cores)."""
    from synapt_fast.demo import run

    raise typer.Exit(run(out=out, workers=workers, seed=seed, runs=runs, nproc=nproc))
