"""The `synapt-fast` command line: one Typer app, heavy imports inside each command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    help="SynAPT made fast: shard videos, load them with DALI, train and transfer, measure throughput.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
bench_app = typer.Typer(help="Throughput benchmarks; each writes JSON + markdown under benchmarks/results/.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@app.command("synth")
def synth(
    out: Path = typer.Argument(Path("shards"), help="Output root: <out>/<set>/<split>/."),
    classes: int = typer.Option(10, help="Pre-training classes (1-238); 0 skips the pre-training set."),
    clips_per_class: int = typer.Option(20, help="Pre-training train clips per class."),
    val_clips_per_class: int = typer.Option(5, help="Pre-training val clips per class (0: no val split)."),
    name: Optional[str] = typer.Option(None, help="Pre-training set name (default: synth<classes>)."),
    downstream_classes: int = typer.Option(6, help="Classes per downstream task (1-120, disjoint from pre-training); 0 skips."),
    downstream_clips_per_class: int = typer.Option(20, help="Downstream train clips per class."),
    downstream_val_clips_per_class: int = typer.Option(5, help="Downstream val clips per class."),
    bias: str = typer.Option("0.0,0.9", help="Comma-separated scene-bias strengths in [0,1], one downstream task each."),
    frames: int = typer.Option(32, help="Frames per clip."),
    size: int = typer.Option(112, help="Frame width and height in pixels."),
    fps: float = typer.Option(30.0, help="Frame rate written to the clips."),
    seed: int = typer.Option(0, help="Generator seed: same seed, same clips."),
    workers: int = typer.Option(max(1, (os.cpu_count() or 1)), help="Worker processes rendering and encoding."),
    fmt: str = typer.Option("shards", "--format", help="shards (tars + index + manifest) or files (a folder per class)."),
    codec: str = typer.Option("vp9", help="vp9 | h264 | hevc | mjpeg (DALI's CPU decoder reads vp9 and mjpeg)."),
    overwrite: bool = typer.Option(False, help="Start shard splits afresh instead of resuming."),
):
    """Generate procedural synthetic action videos: a pre-training set and downstream tasks."""
    from rich.console import Console
    from rich.progress import Progress

    from synapt_fast.synth import build

    biases = [float(b) for b in bias.split(",") if b.strip()]
    jobs = build.plan(classes=classes, clips_per_class=clips_per_class,
                      val_clips_per_class=val_clips_per_class, downstream_classes=downstream_classes,
                      downstream_clips_per_class=downstream_clips_per_class,
                      downstream_val_clips_per_class=downstream_val_clips_per_class, biases=biases,
                      frames=frames, size=size, fps=fps, seed=seed, name=name)
    with Progress() as progress:
        bars = {(j.set_name, j.split): progress.add_task(f"{j.set_name}/{j.split}", total=len(j.source))
                for j in jobs}
        summaries = build.write(jobs, out, fmt=fmt, workers=workers, codec=codec, overwrite=overwrite,
                                on_progress=lambda j, done, total: progress.update(
                                    bars[(j.set_name, j.split)], completed=done))
    console = Console()
    for s in summaries:
        console.print(f"{s['set']}/{s['split']}: {s.get('samples', s.get('clips'))} clips -> "
                      f"{out / s['set'] / s['split']}")


@bench_app.command("model")
def bench_model(
    quick: bool = typer.Option(False, help="Tiny models, fp32 + bf16 only: a few seconds."),
    model: list[str] = typer.Option(None, help="Registered model name (repeatable); default: 4 tiny + 4 full."),
    compile_model: list[str] = typer.Option(None, "--compile", help="Also try torch.compile on this model "
                                            "(repeatable); default: the tiny models."),
    repeats: int = typer.Option(5, help="Timed steps per variant (full-size models on CPU: 3)."),
    threads: int = typer.Option(None, help="torch intra-op threads (CPU default: 1)."),
    out_dir: str = typer.Option(None, help="Where model.json/model.md go (default: benchmarks/results)."),
) -> None:
    """Forward+backward clips/s per model and precision -> benchmarks/results/model.{json,md}."""
    import importlib.util
    import sys
    from pathlib import Path

    # benchmarks/ lives beside the package in the repository, not inside it.
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_model.py"
    spec = importlib.util.spec_from_file_location("bench_model", path)
    bench = sys.modules["bench_model"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.run(quick=quick, models=model or None, compile_models=compile_model or None, repeats=repeats,
              threads=threads, out_dir=Path(out_dir) if out_dir else bench.RESULTS)


if __name__ == "__main__":
    app()
