"""The `synapt-fast` command line: one Typer app, one module per concern, heavy imports inside
each command (so `--help` stays fast). Below is every command, in the order `--help` lists them
(it lists the `bench` group last); each is a thin call into the library."""

from __future__ import annotations

import typer

from synapt_fast.cli import bench, bias, demo, inspect, report, shard, subsets, sweep, synth
from synapt_fast.cli import eval as eval_cmd, plot, predict, train

app = typer.Typer(
    help="SynAPT made fast: shard videos, load them with DALI, train and transfer, measure throughput.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(bench.app, name="bench")
app.command("datasets")(shard.datasets)
app.command("shard")(shard.shard)
app.command("merge")(shard.merge)
app.command("verify")(inspect.verify)
app.command("inspect")(inspect.inspect)
app.command("train")(train.train)
app.command("eval")(eval_cmd.evaluate)
app.command("predict")(predict.predict)
app.command("plot")(plot.plot)
app.command("demo")(demo.demo)
app.command("synth")(synth.synth)
app.command("subset")(subsets.subset)
app.command("bias")(bias.bias)
app.command("sweep")(sweep.sweep)
app.command("report")(report.report)
