"""`synth`: procedural synthetic action videos."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail


class Format(str, Enum):
    shards = "shards"  # tars + index + manifest
    files = "files"  # a folder per class


class Codec(str, Enum):
    vp9 = "vp9"
    h264 = "h264"
    hevc = "hevc"
    mjpeg = "mjpeg"


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
    pretrain_bias: float = typer.Option(0.0, help="Scene bias of the pre-training set (0: scenes independent of the label; "
                                        ">0: a 'real-like' set with object and scene bias)."),
    ramp_classes: int = typer.Option(0, help="Also write task down_ramp: this many classes whose scene bias rises "
                                     "from 0 to 1 (for bias-ranked subsets)."),
    frames: int = typer.Option(32, help="Frames per clip."),
    size: int = typer.Option(112, help="Frame width and height in pixels."),
    fps: float = typer.Option(30.0, help="Frame rate written to the clips."),
    seed: int = typer.Option(0, help="Generator seed: same seed, same clips."),
    variation: float = typer.Option(1.0, help="Nuisance randomisation in [0,1] (camera, body, clutter, lighting); lower is easier."),
    workers: int = typer.Option(max(1, (os.cpu_count() or 1)), help="Worker processes rendering and encoding."),
    fmt: Format = typer.Option(Format.shards, "--format", help="shards (tars + index + manifest) or files (a folder per class)."),
    codec: Codec = typer.Option(Codec.vp9, help="DALI's CPU decoder reads vp9 and mjpeg; h264 and hevc need its GPU decoder."),
    overwrite: bool = typer.Option(False, help="Start shard splits afresh instead of resuming."),
):
    """Generate procedural synthetic action videos: a pre-training set and downstream tasks."""
    from rich.console import Console
    from rich.progress import Progress

    from synapt_fast.synth import build

    try:  # the comma list of sweep's --grid axes
        biases = [float(b) for b in bias.split(",") if b.strip()]
    except ValueError:
        raise fail(f"--bias {bias!r}: expected comma-separated numbers in [0, 1], e.g. 0.0,0.9") from None
    try:
        jobs = build.plan(classes=classes, clips_per_class=clips_per_class,
                          val_clips_per_class=val_clips_per_class, downstream_classes=downstream_classes,
                          downstream_clips_per_class=downstream_clips_per_class,
                          downstream_val_clips_per_class=downstream_val_clips_per_class, biases=biases,
                          frames=frames, size=size, fps=fps, seed=seed, name=name, variation=variation,
                          pretrain_bias=pretrain_bias, ramp_classes=ramp_classes)
    except ValueError as e:
        raise fail(str(e)) from None
    with Progress() as progress:
        bars = {(j.set_name, j.split): progress.add_task(f"{j.set_name}/{j.split}", total=len(j.source))
                for j in jobs}
        summaries = build.write(jobs, out, fmt=fmt.value, workers=workers, codec=codec.value, overwrite=overwrite,
                                on_progress=lambda j, done, total: progress.update(
                                    bars[(j.set_name, j.split)], completed=done))
    console = Console()
    for s in summaries:
        console.print(f"{s['set']}/{s['split']}: {s.get('samples', s.get('clips'))} clips -> "
                      f"{out / s['set'] / s['split']}")
