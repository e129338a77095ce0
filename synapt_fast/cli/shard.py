"""`shard`, `merge` and `datasets`: videos into verified shards."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail, plain
from synapt_fast.sharding.datasets import DATASETS, open_dataset


def datasets():
    """List the dataset adapters `synapt-fast shard --dataset` reads, with the files each needs."""
    for name, entry in DATASETS.items():
        typer.echo(f"{name:13s} {entry.files}")


def shard(
    source: Path = typer.Argument(..., help="Folder of class folders, the root that --list paths are relative to, "
                                            "or a --dataset's video root."),
    set_name: str = typer.Option(..., "--set", help="Shard set name (letters, digits, underscores)."),
    split: Optional[str] = typer.Option(None, help="Output split name (default: train for --subset train, val for "
                                                   "the held-out subset, whatever the dataset calls it, e.g. test)."),
    list_file: Optional[Path] = typer.Option(None, "--list", help="List file of 'path label' or 'path;label' lines "
                                                                  "(with --dataset synthetic150: a list in sim150_val.txt's format)."),
    classes: Optional[Path] = typer.Option(None, help="Class-names file, one per line (label i = line i)."),
    dataset: Optional[str] = typer.Option(None, help=f"Read a public dataset in its official layout: "
                                                     f"{', '.join(DATASETS)} (`synapt-fast datasets`)."),
    lists: Optional[Path] = typer.Option(None, help="--dataset: folder of the official annotation files "
                                                    "(kinetics150 and ikea_fa: default the packaged copies)."),
    subset: Optional[str] = typer.Option(None, help="--dataset: official subset train | val | test (default: train; "
                                                    "synthetic150: val)."),
    fold: int = typer.Option(1, help="--dataset ucf101/hmdb51: official split 1, 2 or 3."),
    class_seed: int = typer.Option(0, help="--dataset mit150: seed of the 150-class choice (use the same for "
                                           "every split)."),
    out: Path = typer.Option(Path("shards"), help="Output root: <out>/<set>/<split>/."),
    codec: str = typer.Option("mjpeg", help="mjpeg (every frame a keyframe) | vp9 (smaller; DALI CPU+GPU) | h264 | "
                                                 "hevc (GPU only)."),
    fps: float = typer.Option(30.0, help="Constant output frame rate."),
    frame_rate: float = typer.Option(30.0, help="Frame rate of frame-folder clips (<class>/<video>/00001.jpg), "
                                                "which declare none."),
    short_side: int = typer.Option(128, help="Resize so the short side is this (even); 0 keeps the size."),
    max_seconds: Optional[float] = typer.Option(None, help="Cap each clip's duration."),
    gop: Optional[int] = typer.Option(None, help="Frames between keyframes for vp9 / h264 / hevc (default 32, or chosen "
                                                 "for --sampling); every MJPEG frame is one."),
    sampling: Optional[str] = typer.Option(None, help="The sampling mode these shards are for (segments | uniform | "
                                                      "dense), recorded; with vp9 / h264 / hevc it picks the GOP (8, 8, 32) "
                                                      "unless --gop is given."),
    quality: Optional[int] = typer.Option(None, help="CRF (vp9/h264/hevc) or qscale (mjpeg); default per codec."),
    speed: str = typer.Option("fast", help="Encoder effort: fast | good."),
    copy: bool = typer.Option(False, "--copy", help="Pack already-conforming clips without re-encoding."),
    shard_mb: float = typer.Option(256.0, help="Target shard size in MB (0: no limit)."),
    shard_count: int = typer.Option(0, help="Samples per shard (0: no limit)."),
    seed: int = typer.Option(0, help="Seed of the sample order (every shard mixes classes)."),
    workers: int = typer.Option(1, help="Transcoding processes; output is identical for any number."),
    num_parts: int = typer.Option(1, help="Split the job into this many parts (a cluster job array)."),
    part: int = typer.Option(0, help="Which part this run writes (0-based); merge parts with `synapt-fast merge`."),
    strict: bool = typer.Option(False, help="Exit non-zero if any input was skipped."),
    overwrite: bool = typer.Option(False, help="Start afresh instead of resuming a previous run."),
    json_out: Optional[str] = typer.Option(None, "--json", help="Write a JSON summary to this file ('-': stdout)."),
):
    """Decode-check, transcode and pack videos into verified WebDataset shards with DALI indexes."""
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from synapt_fast.sharding.pipeline import ShardOptions, shard_source
    from synapt_fast.sharding.sources import FolderSource, ListSource, read_class_names
    from synapt_fast.sharding.encoder import EncodeOptions, gop_for

    if dataset is None and (lists or subset):
        raise fail("--lists and --subset go with --dataset")
    if dataset is not None and classes:
        raise fail("--classes does not go with --dataset: the dataset's class list is fixed")
    if dataset is not None:
        subset = subset or ("val" if dataset == "synthetic150" and list_file is None else "train")
    # Downstream recipes read shards/<set>/train and shards/<set>/val, whatever a dataset calls its held-out subset.
    split = split or ("train" if subset in (None, "train") else "val")
    try:
        if dataset is not None:
            src = open_dataset(dataset, source, lists=lists, subset=subset, fold=fold, list_file=list_file,
                               class_seed=class_seed)
            if dataset == "mit150":
                plain(Console(stderr=True), f"mit150: {len(src.class_names)} of {len(src.all_classes)} classes, "
                                           f"--class-seed {class_seed} (the manifest lists them)")
        else:
            names = read_class_names(classes) if classes else None
            src = ListSource(list_file, source, names) if list_file else FolderSource(source, names)
        enc = EncodeOptions(codec=codec, fps=fps, short_side=short_side, max_seconds=max_seconds,
                            gop=gop_for(sampling) if gop is None else gop, quality=quality, speed=speed, copy=copy,
                            sampling=sampling, frame_rate=frame_rate)
        opts = ShardOptions(set_name=set_name, split=split, max_count=shard_count, max_mb=shard_mb, seed=seed,
                            workers=workers, num_parts=num_parts, part=part)
    except (OSError, ValueError) as e:
        raise fail(str(e))
    console = Console(stderr=json_out == "-")
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} clips/s"), TextColumn("skipped {task.fields[skipped]}"),
               TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"{set_name}/{split}", total=None, skipped=0, rate="-")

        def on_progress(done, total, skipped):
            t = progress.tasks[task]
            rate = f"{t.speed:5.1f}" if t.speed else "-"
            progress.update(task, completed=done, total=total, skipped=skipped, rate=rate)

        try:
            summary = shard_source(src, out / set_name / split, opts, enc, overwrite=overwrite,
                                   on_progress=on_progress)
        except (RuntimeError, OSError, ValueError) as e:
            raise fail(str(e))
    _print_summary(console, summary)
    if json_out:
        text = json.dumps(summary.to_dict(), indent=1)
        if json_out == "-":
            print(text)
        else:
            Path(json_out).write_text(text + "\n")
    if summary.samples == 0:
        raise fail("nothing could be packed")
    if strict and summary.skipped:
        raise fail(f"{summary.skipped} input(s) skipped (--strict)")


def _print_summary(console, summary) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"{summary.set}/{summary.split} -> {summary.out_dir}"), show_header=False)
    for key, value in [("samples", summary.samples), ("skipped", summary.skipped), ("shards", summary.shards),
                       ("resumed shards", summary.resumed_shards), ("MB", f"{summary.bytes / 1e6:.2f}"),
                       ("frames", summary.frames), ("seconds", summary.seconds),
                       ("clips/s", summary.clips_per_s)]:
        table.add_row(key, str(value))
    console.print(table)
    for item in summary.skipped_items[:20]:
        plain(console, f"  skipped {item['id']}: {item['reason']}")
    if summary.skipped > 20:
        plain(console, f"  ... and {summary.skipped - 20} more (see {summary.manifest})")


def merge(split_dir: Path = typer.Argument(..., help="Split folder holding manifest.part-*-of-*.json files.")):
    """Merge the part manifests of a split sharded with --num-parts into manifest.json."""
    from synapt_fast.format.manifest import ManifestError
    from synapt_fast.sharding.pipeline import merge_parts

    try:
        m = merge_parts(split_dir)
    except (OSError, ValueError, ManifestError) as e:
        raise fail(str(e))
    typer.echo(f"{split_dir}: {m.num_samples} samples in {len(m.shards)} shards, {len(m.skipped)} skipped")
