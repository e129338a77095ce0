"""The `synapt-fast` command line: one Typer app, heavy imports inside each command."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="SynAPT made fast: shard videos, load them with DALI, train and transfer, measure throughput.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
bench_app = typer.Typer(help="Throughput benchmarks; each writes JSON + markdown under benchmarks/results/.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")


if __name__ == "__main__":
    app()
