"""`train`: a recipe in this process, or through torchrun for several processes and nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail

OVERRIDES_HELP = "section.key=value overrides (a bare key=value when the key is unique), checked like the file."


def train(
    recipe: Path = typer.Argument(..., help="Recipe TOML file (see recipes/)."),
    overrides: Optional[list[str]] = typer.Argument(None, metavar="[SECTION.KEY=VALUE]...", help=OVERRIDES_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run folder's last checkpoint "
                                "(starts afresh when there is none)."),
    nproc: int = typer.Option(1, min=1, help="Processes on this node (one per GPU); > 1 launches torchrun."),
    nnodes: int = typer.Option(1, min=1, help="Nodes of a multi-node run: start this same command on each."),
    rdzv_endpoint: str = typer.Option("", help="HOST:PORT where the nodes meet (c10d rendezvous); needed "
                                      "with --nnodes > 1."),
    rdzv_id: str = typer.Option("synapt-fast", help="Rendezvous id, the same on every node of one job "
                                "(Slurm: $SLURM_JOB_ID)."),
):
    """Train, fine-tune or linear-probe from a recipe; the run goes to <output.dir>/<output.name>/.

    Under torchrun (`torchrun --nproc-per-node 8 -m synapt_fast.train --recipe R`, or this command
    started by torchrun) each process is one rank; with --nproc N this command is the launcher.

    Exit codes: 0 done; 1 an unexpected error (traceback); 2 a usage or recipe error (the message
    names the key or file); 3 non-finite loss (the last good checkpoint is kept); 4 a checkpoint,
    run file or shard that cannot be read or written (named); 143 stopped by SIGTERM after saving
    a checkpoint: run the same command with --resume.
    """
    from synapt_fast.engine.launch import Nodes, launch, under_launcher
    from synapt_fast.engine.main import main
    from synapt_fast.engine.recipe import RecipeError, load_recipe

    overrides = overrides or []
    try:  # refuse a bad recipe here, before any worker starts
        load_recipe(recipe, overrides)
    except (RecipeError, OSError) as e:
        raise fail(str(e))
    args = ["--recipe", str(recipe), *(["--resume"] if resume else []), *overrides]
    multi = nproc > 1 or nnodes > 1 or rdzv_endpoint
    if not multi or under_launcher():
        if multi:
            raise fail("already running under torchrun: drop --nproc/--nnodes (torchrun sets the processes)")
        raise typer.Exit(main(args))
    try:
        nodes = Nodes(nnodes, rdzv_endpoint, rdzv_id)
        nodes.check()
    except ValueError as e:
        raise fail(str(e))
    raise typer.Exit(launch(nproc, args, nodes))

