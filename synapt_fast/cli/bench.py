"""`bench ...`: the throughput benchmarks of `benchmarks/`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Optional

import typer

from synapt_fast.cli.errors import fail
from synapt_fast.resources import benchmarks_dir


app = typer.Typer(help="Throughput benchmarks; each writes JSON + markdown + PNG to --out-dir (default ./bench-results; "
                 "the committed results are benchmarks/results).",
                 no_args_is_help=True)

BENCHMARKS = benchmarks_dir()  # shipped in the package (a link to the top-level benchmarks/ in a checkout)
# Where results go unless --out-dir says otherwise: under the current folder, never over the
# committed records (pass --out-dir benchmarks/results to replace those).
DEFAULT_OUT = Path("bench-results")


@contextmanager
def benchmark(name: str) -> Iterator[ModuleType]:
    """benchmarks/<name>.py, imported as `python benchmarks/<name>.py` sees it, for the block.

    The scripts there import each other by file name (`from benchio import ...`), as Python lets a
    script do from its own folder. So for the block that folder leads the import path, as it
    would for the script; afterwards neither the path nor the module table keeps anything of it.
    """
    path = BENCHMARKS / f"{name}.py"
    if not path.is_file():
        raise fail(f"{path} not found: this installation lacks the benchmark scripts (reinstall the package)")
    folder = str(BENCHMARKS)
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(folder)
        for key, module in list(sys.modules.items()):
            if Path(getattr(module, "__file__", None) or "/").parent == BENCHMARKS:
                del sys.modules[key]


@app.command("shard")
def bench_shard(
    clips: int = typer.Option(200, help="Reference clips (3 s, 320x240, H.264)."),
    repeats: int = typer.Option(3, help="Timed repeats per contender (median reported)."),
    quick: bool = typer.Option(False, help="6 clips, 1 repeat: a seconds-long smoke run."),
    out_dir: Optional[Path] = typer.Option(None, help="Where shard.{json,md} go (default: ./bench-results)."),
):
    """Sharding clips/s against the ffmpeg CLI doing the same transcode -> <out-dir>/shard.*"""
    with benchmark("bench_shard") as bench:
        bench.run(clips=clips, repeats=repeats, quick=quick, out_dir=out_dir or DEFAULT_OUT)


@app.command("loader")
def bench_loader(
    split_dir: Optional[Path] = typer.Argument(None, help="Your own shard split: measure it with --recipe's "
                                                          "sampling, crop and batch instead of the benchmark."),
    recipe: Optional[Path] = typer.Option(None, help="With SPLIT_DIR: the recipe TOML whose data settings to use."),
    override: Optional[list[str]] = typer.Option(None, "--set", help="With SPLIT_DIR: recipe section.key=value."),
    clips: int = typer.Option(24, help="Distinct clips per length (camera-like, 320x240 H.264 sources)."),
    copies: int = typer.Option(12, help="Times each clip is packed (epochs of clips x copies samples)."),
    repeats: int = typer.Option(3, help="Timed epochs per contender and mode (median reported)."),
    batch_size: int = typer.Option(8, help="Clips per batch."),
    workers: int = typer.Option(2, help="DALI threads / DataLoader worker processes."),
    quick: bool = typer.Option(False, help="8 clips, 3 s, one mode, one repeat: a smoke run."),
    out_dir: Optional[Path] = typer.Option(None, help="Where loader.{json,md} go (default: ./bench-results); "
                                                      "with SPLIT_DIR, where to write loader_split.json."),
):
    """DALI loader vs the loaders a user writes (PyAV, torchcodec over H.264 mp4) vs a decode-only ceiling, per
    length and sampling mode; or, with SPLIT_DIR --recipe R, your own split: clips/s, ceiling, what limits it."""
    if split_dir is not None:
        from synapt_fast.atomic import write_atomic
        from synapt_fast.loader.throughput import diagnose

        if recipe is None:
            raise fail("SPLIT_DIR needs --recipe: its sampling, crop and batch are what gets measured")
        try:
            record = diagnose(split_dir, recipe, override or [], repeats=repeats)
        except (OSError, ValueError) as e:
            raise fail(str(e))
        if out_dir is not None:
            import json

            out_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(out_dir / "loader_split.json", json.dumps(record, indent=1) + "\n", durable=False)
        return
    with benchmark("bench_loader") as bench:
        bench.run(clips=clips, repeats=repeats, batch_size=batch_size, workers=workers, quick=quick,
                  out_dir=out_dir or DEFAULT_OUT, copies=copies)


@app.command("gop")
def bench_gop(
    clips: int = typer.Option(160, help="Clips per split (one split per video length and GOP)."),
    repeats: int = typer.Option(3, help="Timed epochs per split and mode (median reported)."),
    quick: bool = typer.Option(False, help="3 s videos, GOP 8 and 32, 12 clips, 1 repeat: seconds (CI)."),
    out_dir: Optional[Path] = typer.Option(None, help="Where gop.{json,md,png} go (default: ./bench-results)."),
) -> None:
    """The DALI loader and shard size per GOP and video length, and the keyframe cut's gain -> <out-dir>/gop.*"""
    with benchmark("bench_gop") as bench:
        bench.run(clips=clips, repeats=repeats, quick=quick, out_dir=out_dir or DEFAULT_OUT)


@app.command("model")
def bench_model(
    quick: bool = typer.Option(False, help="Tiny models, fp32 + bf16 only: a few seconds."),
    model: list[str] = typer.Option(None, help="Registered model name (repeatable); default: 4 tiny + 4 full."),
    compile_model: list[str] = typer.Option(None, "--compile", help="Also try torch.compile on this model "
                                            "(repeatable); default: the tiny models."),
    repeats: int = typer.Option(5, help="Timed steps per variant (full-size models on CPU: 3)."),
    threads: int = typer.Option(None, help="torch intra-op threads (CPU default: 1)."),
    out_dir: str = typer.Option(None, help="Where model.json/model.md go (default: ./bench-results)."),
) -> None:
    """Forward+backward clips/s per model and precision -> <out-dir>/model.{json,md}."""
    with benchmark("bench_model") as bench:
        bench.run(quick=quick, models=model or None, compile_models=compile_model or None, repeats=repeats,
                  threads=threads, out_dir=Path(out_dir) if out_dir else DEFAULT_OUT)


@app.command("train")
def bench_train(
    quick: bool = typer.Option(False, help="2 tiny models, 1 repeat, a few steps: seconds."),
    model: list[str] = typer.Option(None, help="Tiny model name (repeatable); default: the 4 tiny models."),
    repeats: int = typer.Option(15, help="Repeats, each timing both contenders back to back (median reported)."),
    steps: int = typer.Option(30, help="Steps per timed repeat."),
    out_dir: Optional[Path] = typer.Option(None, help="Where train.{json,md} go (default: ./bench-results)."),
) -> None:
    """Trainer overhead against a bare loop on a replayed batch, and data-wait share -> <out-dir>/train.*"""
    with benchmark("bench_train") as bench:
        bench.run(quick=quick, models=model or None, repeats=repeats, steps=steps, out_dir=out_dir or DEFAULT_OUT)


@app.command("probe")
def bench_probe(
    quick: bool = typer.Option(False, help="2 cells x 2 epochs, 1 repeat: seconds."),
    epochs: int = typer.Option(5, help="Linear-probe epochs per cell."),
    repeats: int = typer.Option(2, help="Sweeps per mode, each from an empty feature cache (median reported)."),
    out_dir: Optional[Path] = typer.Option(None, help="Where probe.{json,md,png} go (default: ./bench-results)."),
) -> None:
    """A linear-probe sweep on cached features against the same sweep online -> <out-dir>/probe.*"""
    with benchmark("bench_probe") as bench:
        bench.run(quick=quick, epochs=epochs, repeats=repeats, out_dir=out_dir or DEFAULT_OUT)


@app.command("shapes")
def bench_shapes(
    quick: bool = typer.Option(False, help="Tiny models at the recipes' frame counts, 1 round: seconds (CI)."),
    model: list[str] = typer.Option(None, help="Full-size model name (repeatable); default: every model a recipe uses."),
    repeats: int = typer.Option(2, help="Timed rounds (each runs every shape once, order alternating)."),
    batch: int = typer.Option(2, help="Training batch (clips)."),
    threads: Optional[int] = typer.Option(None, help="torch intra-op threads (CPU default: 1)."),
    out_dir: Optional[Path] = typer.Option(None, help="Where shapes.{json,md,png} go (default: ./bench-results)."),
) -> None:
    """Every model x every dataset at the recipes' shapes: train, linear-probe and eval throughput."""
    with benchmark("bench_shapes") as bench:
        try:
            bench.run(quick=quick, models=model or None, repeats=repeats, batch=batch, threads=threads,
                      out_dir=out_dir or DEFAULT_OUT)
        except (ValueError, SystemExit) as exc:
            raise fail(str(exc)) from None


@app.command("all")
def bench_all(
    quick: bool = typer.Option(False, help="Every benchmark's quick mode: about a minute (CI)."),
    only: list[str] = typer.Option(None, help="Run only this benchmark (repeatable): shard, loader, gop, "
                                   "model, train, shapes."),
    out_dir: Optional[Path] = typer.Option(None, help="Where every result and summary.{json,md} go "
                                           "(default: ./bench-results)."),
    index_only: bool = typer.Option(False, help="Run nothing: rebuild summary.* from the records already there."),
) -> None:
    """The whole suite in sequence, then summary.{json,md}: headline figures and the machine."""
    with benchmark("bench_all") as bench:
        unknown = sorted(set(only or []) - set(bench.ORDER))
        if unknown:
            raise fail(f"unknown benchmark(s) {unknown}; choose from {list(bench.ORDER)}")
        bench.run(quick=quick, only=only or None, out_dir=out_dir or DEFAULT_OUT, index_only=index_only)


@app.command("gpu")
def bench_gpu(
    plan: bool = typer.Option(False, "--plan", help="Print what the suite would run, as JSON, and exit."),
    clips: int = typer.Option(96, help="Clips per generated shard split."),
    out_dir: Optional[Path] = typer.Option(None, help="Where gpu.{json,md,png} go (default: ./bench-results)."),
) -> None:
    """NVDEC per codec, the DALI GPU loader, bf16 training and data wait: a GPU machine, < 10 minutes."""
    import json

    with benchmark("bench_gpu") as bench:
        if plan:
            typer.echo(json.dumps(bench.plan(clips=clips), indent=1))
            return
        if reason := bench.gpu_unavailable():
            raise fail(f"bench gpu needs a CUDA GPU with DALI's GPU backend: {reason}")
        bench.run(out_dir=out_dir or DEFAULT_OUT, clips=clips)
