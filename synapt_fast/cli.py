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


def _fail(message: str) -> typer.Exit:
    from rich.console import Console
    from rich.markup import escape

    # escape: messages name recipe sections like "[optim]", which rich would take for markup
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(2)


@app.command("datasets")
def datasets():
    """List the dataset adapters `synapt-fast shard --dataset` reads, with the files each needs."""
    from synapt_fast.datasets import DATASETS

    for name, line in DATASETS.items():
        typer.echo(f"{name:13s} {line}")


@app.command("shard")
def shard(
    source: Path = typer.Argument(..., help="Folder of class folders, the root that --list paths are relative to, "
                                            "or a --dataset's video root."),
    set_name: str = typer.Option(..., "--set", help="Shard set name (letters, digits, underscores)."),
    split: Optional[str] = typer.Option(None, help="Output split name: train, val, test, ... (default: --subset "
                                                   "with --dataset, else train)."),
    list_file: Optional[Path] = typer.Option(None, "--list", help="List file of 'path label' or 'path;label' lines "
                                                                  "(with --dataset synthetic150: a list in sim150_val.txt's format)."),
    classes: Optional[Path] = typer.Option(None, help="Class-names file, one per line (label i = line i)."),
    dataset: Optional[str] = typer.Option(None, help="Read a public dataset in its official layout: "
                                                     "ucf101, hmdb51, ssv2, mini_ssv2, diving48, ikea_fa, uav_human, "
                                                     "kinetics150, synthetic150, mit150 (`synapt-fast datasets`)."),
    lists: Optional[Path] = typer.Option(None, help="--dataset: folder of the official annotation files "
                                                    "(kinetics150: default the packaged copies)."),
    subset: Optional[str] = typer.Option(None, help="--dataset: official subset train | val | test (default: train; "
                                                    "synthetic150: val)."),
    fold: int = typer.Option(1, help="--dataset ucf101/hmdb51: official split 1, 2 or 3."),
    class_seed: int = typer.Option(0, help="--dataset mit150: seed of the 150-class choice (use the same for "
                                           "every split)."),
    out: Path = typer.Option(Path("shards"), help="Output root: <out>/<set>/<split>/."),
    codec: str = typer.Option("vp9", help="vp9 (DALI CPU+GPU) | h264 | hevc (GPU only) | mjpeg."),
    fps: float = typer.Option(30.0, help="Constant output frame rate."),
    short_side: int = typer.Option(128, help="Resize so the short side is this (even); 0 keeps the size."),
    max_seconds: Optional[float] = typer.Option(None, help="Cap each clip's duration."),
    gop: Optional[int] = typer.Option(None, help="Frames between keyframes (default 32, or chosen for --sampling)."),
    sampling: Optional[str] = typer.Option(None, help="The sampling mode these shards are for (segments | uniform | "
                                                      "dense): picks the GOP for it (8, 8, 32) unless --gop is given."),
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

    from synapt_fast.sharding import ShardOptions, shard_source
    from synapt_fast.sources import FolderSource, ListSource, read_class_names
    from synapt_fast.transcode import EncodeOptions, gop_for

    if dataset is None and (lists or subset):
        raise _fail("--lists and --subset go with --dataset")
    if dataset is not None and classes:
        raise _fail("--classes does not go with --dataset: the dataset's class list is fixed")
    if dataset is not None:
        subset = subset or ("val" if dataset == "synthetic150" and list_file is None else "train")
    split = split or subset or "train"
    try:
        if dataset is not None:
            from synapt_fast.datasets import open_dataset

            src = open_dataset(dataset, source, lists=lists, subset=subset, fold=fold, list_file=list_file,
                               class_seed=class_seed)
            if dataset == "mit150":
                Console(stderr=True).print(f"mit150: {len(src.class_names)} of {len(src.all_classes)} classes, "
                                           f"--class-seed {class_seed} (the manifest lists them)")
        else:
            names = read_class_names(classes) if classes else None
            src = ListSource(list_file, source, names) if list_file else FolderSource(source, names)
        enc = EncodeOptions(codec=codec, fps=fps, short_side=short_side, max_seconds=max_seconds,
                            gop=gop_for(sampling) if gop is None else gop, quality=quality, speed=speed, copy=copy,
                            sampling=sampling)
        opts = ShardOptions(set_name=set_name, split=split, max_count=shard_count, max_mb=shard_mb, seed=seed,
                            workers=workers, num_parts=num_parts, part=part)
    except (OSError, ValueError) as e:
        raise _fail(str(e))
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
            raise _fail(str(e))
    _print_summary(console, summary)
    if json_out:
        text = json.dumps(summary.to_dict(), indent=1)
        if json_out == "-":
            print(text)
        else:
            Path(json_out).write_text(text + "\n")
    if summary.samples == 0:
        raise _fail("nothing could be packed")
    if strict and summary.skipped:
        raise _fail(f"{summary.skipped} input(s) skipped (--strict)")


def _print_summary(console, summary) -> None:
    from rich.table import Table

    table = Table(title=f"{summary.set}/{summary.split} -> {summary.out_dir}", show_header=False)
    for key, value in [("samples", summary.samples), ("skipped", summary.skipped), ("shards", summary.shards),
                       ("resumed shards", summary.resumed_shards), ("MB", f"{summary.bytes / 1e6:.2f}"),
                       ("frames", summary.frames), ("seconds", summary.seconds),
                       ("clips/s", summary.clips_per_s)]:
        table.add_row(key, str(value))
    console.print(table)
    for item in summary.skipped_items[:20]:
        console.print(f"  skipped {item['id']}: {item['reason']}", highlight=False)
    if summary.skipped > 20:
        console.print(f"  ... and {summary.skipped - 20} more (see {summary.manifest})")


@app.command("merge")
def merge(split_dir: Path = typer.Argument(..., help="Split folder holding manifest.part-*-of-*.json files.")):
    """Merge the part manifests of a split sharded with --num-parts into manifest.json."""
    from synapt_fast.manifest import ManifestError
    from synapt_fast.sharding import merge_parts

    try:
        m = merge_parts(split_dir)
    except (OSError, ValueError, ManifestError) as e:
        raise _fail(str(e))
    typer.echo(f"{split_dir}: {m.num_samples} samples in {len(m.shards)} shards, {len(m.skipped)} skipped")


@app.command("verify")
def verify(
    path: Path = typer.Argument(..., help="A split folder, or a set folder holding split folders."),
    decode: bool = typer.Option(False, "--decode", help="Also decode every clip with DALI and check frame counts."),
):
    """Check shards against manifest and index: sizes, sha256, tar structure, members, frame counts."""
    from rich.console import Console

    from synapt_fast.verify import ShardError, split_dirs, verify_split

    console = Console()
    try:
        dirs = split_dirs(path)
    except ShardError as e:
        raise _fail(str(e))
    bad = 0
    for d in dirs:
        manifest, problems = verify_split(d, decode=decode)
        if problems:
            bad += 1
            console.print(f"[red]FAIL[/red] {d}", highlight=False)
            for p in problems:
                console.print(f"  {p}", highlight=False)
        else:
            what = " and decoded" if decode else ""
            console.print(f"[green]ok[/green]   {d}: {manifest.num_samples} samples in {len(manifest.shards)} "
                          f"shards checked{what}", highlight=False)
    if bad:
        raise typer.Exit(1)


@app.command("inspect")
def inspect(
    path: Path = typer.Argument(..., help="A split folder, or a set folder holding split folders."),
    contact_sheet: Optional[Path] = typer.Option(None, help="Write a PNG of a few clips here."),
    clips: int = typer.Option(6, help="Clips on the contact sheet."),
):
    """Print a shard split's manifest summary; optionally a contact-sheet PNG of a few clips."""
    from rich.console import Console
    from rich.table import Table

    from synapt_fast.manifest import Manifest, ManifestError
    from synapt_fast.verify import ShardError, split_dirs

    console = Console()
    try:
        dirs = split_dirs(path)
        manifests = [(d, Manifest.load(d)) for d in dirs]
    except (ShardError, ManifestError) as e:
        raise _fail(str(e))
    for d, m in manifests:
        table = Table(title=f"{m.set}/{m.split}  ({d})", show_header=False)
        enc = m.encoding
        counts = sorted(m.class_counts.values())
        rows = [("samples", m.num_samples), ("classes", len(m.class_names)),
                ("per class (min/median/max)", f"{counts[0]}/{counts[len(counts) // 2]}/{counts[-1]}" if counts else "-"),
                ("frames", f"{m.num_frames} ({m.num_frames / max(1, m.num_samples):.1f} per clip)"),
                ("shards", f"{len(m.shards)}, {sum(s.bytes for s in m.shards) / 1e6:.2f} MB"),
                ("encoding", f"{enc['codec']} {enc['pix_fmt']} {enc['fps']:g} fps, short side {enc['short_side']}, "
                             f"GOP {enc['gop']}"),
                ("skipped", len(m.skipped)), ("format", f"{m.format} v{m.format_version}")]
        for k, v in rows:
            table.add_row(k, str(v))
        console.print(table)
        for s in m.skipped[:10]:
            console.print(f"  skipped {s['id']}: {s['reason']}", highlight=False)
    if contact_sheet:
        import json

        import webdataset as wds

        from synapt_fast.contact_sheet import contact_sheet as tile, write_png
        from synapt_fast.transcode import decode_all

        d, m = manifests[0]
        frames, labels = [], []
        for sample in wds.WebDataset([str(d / s.tar) for s in m.shards], shardshuffle=False):
            frames.append(decode_all(sample[m.video_ext]))
            labels.append(json.loads(sample["meta.json"])["class_name"])
            if len(frames) >= clips:
                break
        write_png(contact_sheet, tile(frames, labels))
        console.print(f"contact sheet of {len(frames)} clips -> {contact_sheet}", highlight=False)


@app.command("demo")
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
                      frames=frames, size=size, fps=fps, seed=seed, name=name, variation=variation,
                      pretrain_bias=pretrain_bias, ramp_classes=ramp_classes)
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


@app.command("subset")
def subset(
    src: Path = typer.Argument(..., help="Source split folder (holding manifest.json)."),
    out: Path = typer.Argument(..., help="Output split folder <root>/<set>/<split> (bias-ranked: "
                                         "windows go to <root>/<set>_wNN/<split>)."),
    classes: Optional[int] = typer.Option(None, help="Keep the first N classes of the seeded class order (default: all)."),
    per_class: Optional[int] = typer.Option(None, help="Keep the first K samples per class of the seeded, "
                                                       "asset-balanced order (default: all)."),
    classes_from: Optional[Path] = typer.Option(None, help="Keep exactly the classes of this subset.json / manifest.json "
                                                           "(e.g. the train subset's, for its val split)."),
    bias_ranked: Optional[Path] = typer.Option(None, help="A `synapt-fast bias` JSON: write --count windows of --k "
                                                          "classes ranked by probe accuracy."),
    k: int = typer.Option(25, help="Bias-ranked: classes per window."),
    count: int = typer.Option(8, help="Bias-ranked: number of windows (starts evenly spaced over the ranking)."),
    rank_by: str = typer.Option("train_cv", help="Bias-ranked: rank by the probe's per-class 'train_cv' (out-of-fold "
                                                 "on train), 'train' or 'val' accuracy."),
    seed: int = typer.Option(0, help="Seed of the class and sample orders (same seed: nested subsets)."),
    set_name: Optional[str] = typer.Option(None, "--set", help="Output set name (default: OUT's parent folder name)."),
    split: Optional[str] = typer.Option(None, help="Output split name (default: OUT's folder name)."),
    shard_mb: float = typer.Option(256.0, help="Target shard size in MB (0: no limit)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output split."),
):
    """Nested class / samples-per-class subsets, or bias-ranked class windows, copied into new shards."""
    from rich.console import Console

    from synapt_fast.subsets import (SubsetError, bias_windows, classes_from as read_classes, read_bias_ranking,
                                     read_split, select, write_subset)
    from synapt_fast.verify import ShardError

    console = Console()
    if sum(x is not None for x in (classes, classes_from, bias_ranked)) > 1:
        raise _fail("choose one of --classes, --classes-from and --bias-ranked")
    if rank_by not in ("train_cv", "train", "val"):
        raise _fail(f"--rank-by must be 'train_cv', 'train' or 'val', not {rank_by!r}")
    try:
        manifest, samples = read_split(src)
        if bias_ranked is None:
            names = read_classes(classes_from) if classes_from else None
            jobs = [(out, dict(classes=classes, per_class=per_class, classes_from=str(classes_from or "") or None),
                     names)]
        else:
            windows = bias_windows(read_bias_ranking(bias_ranked, rank_by), k, count)
            stem = set_name or out.parent.name
            jobs = [(out.parent.parent / f"{stem}_w{w['window']:02d}" / (split or out.name),
                     dict(per_class=per_class, bias_ranked=str(bias_ranked), rank_by=rank_by, k=k, count=count, **w),
                     w["classes"]) for w in windows]
        for path, info, names in jobs:
            sel = select(manifest, samples, seed=seed, num_classes=info.get("classes"), per_class=per_class,
                         class_names=names)
            m = write_subset(src, path, manifest, sel, seed=seed, info=info, overwrite=overwrite,
                             set_name=None if bias_ranked else set_name, split=split, max_mb=shard_mb)
            extra = (f", mean probe accuracy {info['mean_probe_accuracy']:.4f}" if bias_ranked else "")
            console.print(f"{path}: {len(m.class_names)} classes, {m.num_samples} samples in {len(m.shards)} "
                          f"shards{extra}", highlight=False)
            for line in sel.short[:10]:
                console.print(f"  short: {line}", highlight=False)
            if len(sel.short) > 10:
                console.print(f"  ... and {len(sel.short) - 10} more (see {path / 'subset.json'})", highlight=False)
    except (SubsetError, ShardError, OSError) as e:
        raise _fail(str(e))


@app.command("bias")
def bias(
    train: Path = typer.Argument(..., help="Train split folder (the probe is fitted here)."),
    val: Path = typer.Argument(..., help="Val split folder (M is the probe's top-1 here)."),
    weights: Path = typer.Option(..., help="torchvision-format ImageNet ResNet-50 state dict (resnet50-0676ba61.pth)."),
    arch: str = typer.Option("tsn_r50", help="Frame backbone: tsn_r50 (the paper's), or tsn_tiny for tests."),
    frames: int = typer.Option(8, help="Frames per clip (TSN segments, centre of each)."),
    size: int = typer.Option(224, help="Centre-crop side (short side resized to size/0.875)."),
    batch_size: int = typer.Option(16, help="Clips per feature-extraction batch."),
    workers: int = typer.Option(2, help="DALI threads."),
    cache_dir: Path = typer.Option(Path(".cache/features"), help="Feature cache (.npz keyed by shards, weights, sampling)."),
    weight_decay: float = typer.Option(1e-3, help="Probe L2 penalty."),
    seed: int = typer.Option(0, help="Probe seed."),
    folds: int = typer.Option(5, help="Folds of the out-of-fold per-class train accuracy (the bias-ranking key)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the JSON here (default: print only)."),
):
    """Representation bias (paper Eq. 1): a linear probe on frozen ImageNet frame features."""
    import json

    from rich.console import Console
    from rich.table import Table

    from synapt_fast.bias import BiasError, FeatureSpec, measure_bias

    console = Console()
    try:
        result = measure_bias(train, val, weights, FeatureSpec(arch=arch, frames=frames, size=size),
                              cache_dir=cache_dir, batch_size=batch_size, workers=workers,
                              weight_decay=weight_decay, seed=seed, folds=folds)
    except (BiasError, OSError) as e:
        raise _fail(str(e))
    table = Table(title=f"representation bias: {result['dataset']}", show_header=False)
    for key in ("classes", "num_train", "num_val", "train_accuracy", "train_cv_accuracy", "M", "M_rnd", "B"):
        v = result[key]
        table.add_row(key, f"{v:.4f}" if isinstance(v, float) else str(v))
    table.add_row("features", ", ".join(f"{s} {'cached' if result['features'][s]['cache_hit'] else 'extracted'}"
                                        for s in ("train", "val")))
    console.print(table)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, out)
        console.print(f"-> {out}", highlight=False)


@app.command("sweep")
def sweep(
    recipe: Path = typer.Argument(..., help="Recipe TOML to expand."),
    overrides: Optional[list[str]] = typer.Argument(None, help="Fixed section.key=value overrides for every cell."),
    preset: Optional[str] = typer.Option(None, help="The paper's grid: pretrain (12 cells) | downstream (18 cells)."),
    grid: list[str] = typer.Option([], help="An axis section.key=v1,v2 (repeatable; global_batch=... is the batch "
                                            "over all processes)."),
    nproc: int = typer.Option(1, help="Processes per cell (torchrun when > 1); global batches are divided by it."),
    emit: Optional[Path] = typer.Option(None, help="Write a Slurm job-array script and commands.txt here; run nothing."),
):
    """Run a recipe over a hyper-parameter grid, skip finished cells, pick the best by validation top-1."""
    from rich.console import Console

    from synapt_fast.recipe import RecipeError
    from synapt_fast.sweep import emit as emit_jobs, expand, grid_axes, run_sweep

    console = Console()
    try:
        cells = expand(recipe, grid_axes(preset, grid), nproc=nproc, overrides=overrides or [])
    except (RecipeError, OSError) as e:
        raise _fail(str(e))
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
        raise _fail(f"{len(outcome.failed)} cell(s) failed: " + ", ".join(
            f"{o.tag} ({o.message})" for o in outcome.failed))


@app.command("report")
def report(
    runs_dir: Path = typer.Argument(..., help="Folder searched (recursively) for result.json, sweep.json and bias JSON."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default: RUNS_DIR/report)."),
    throughput: Optional[Path] = typer.Option(None, help="A `synapt-fast bench shapes` record (shapes.json): adds "
                                              "throughput for every model x dataset, run or not."),
):
    """The paper's Tables 1-5 (top-1 with training / evaluation clips/s) and Figures 2-4 from finished runs."""
    from rich.console import Console

    from synapt_fast.report import build, write

    if not runs_dir.is_dir():
        raise _fail(f"{runs_dir}: not a folder")
    out = out or runs_dir / "report"
    if throughput is not None and not throughput.is_file():
        raise _fail(f"{throughput}: no such file (write it with `synapt-fast bench shapes`)")
    rep = build(runs_dir, exclude=out, shapes=throughput)
    if not rep.runs and not rep.bias and throughput is None:
        raise _fail(f"{runs_dir}: no result.json of a transfer run (finetune, linear_probe, scratch) or bias record")
    text = write(rep, out)
    typer.echo(text)  # plain: markdown tables must not be wrapped at the terminal width
    figures = sorted(p.name for p in out.glob("fig*.png"))
    Console().print(f"-> {out / 'report.md'}, {len(rep.tables)} table(s) as CSV, figures: {', '.join(figures) or 'none'}",
                    highlight=False)


def _benchmark(name: str):
    """Import benchmarks/<name>.py, which lives beside the package in the repository, not inside it."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    if not path.is_file():
        raise _fail(f"{path} not found: benchmarks run from a source checkout")
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # their shared helpers (benchio), as when run as scripts
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@bench_app.command("shard")
def bench_shard(
    clips: int = typer.Option(200, help="Reference clips (3 s, 320x240, H.264)."),
    repeats: int = typer.Option(3, help="Timed repeats per contender (median reported)."),
    quick: bool = typer.Option(False, help="6 clips, 1 repeat: a seconds-long smoke run."),
    out_dir: Optional[Path] = typer.Option(None, help="Where shard.{json,md} go (default: benchmarks/results)."),
):
    """Sharding clips/s against the ffmpeg CLI doing the same transcode -> benchmarks/results/shard.*"""
    bench = _benchmark("bench_shard")
    bench.run(clips=clips, repeats=repeats, quick=quick, out_dir=out_dir or bench.RESULTS)


@bench_app.command("loader")
def bench_loader(
    split_dir: Optional[Path] = typer.Argument(None, help="Your own shard split: measure it with --recipe's "
                                                          "sampling, crop and batch instead of the benchmark."),
    recipe: Optional[Path] = typer.Option(None, help="With SPLIT_DIR: the recipe TOML whose data settings to use."),
    override: Optional[list[str]] = typer.Option(None, "--set", help="With SPLIT_DIR: recipe section.key=value."),
    clips: int = typer.Option(24, help="Distinct clips per length (camera-like, 320x240 H.264 sources)."),
    copies: int = typer.Option(4, help="Times each clip is packed (epochs of clips x copies samples)."),
    repeats: int = typer.Option(3, help="Timed epochs per contender and mode (median reported)."),
    batch_size: int = typer.Option(8, help="Clips per batch."),
    workers: int = typer.Option(2, help="DALI threads / DataLoader worker processes."),
    quick: bool = typer.Option(False, help="8 clips, 3 s, one mode, one repeat: a smoke run."),
    out_dir: Optional[Path] = typer.Option(None, help="Where loader.{json,md} go (default: benchmarks/results); "
                                                      "with SPLIT_DIR, where to write loader_split.json."),
):
    """DALI loader vs the loaders a user writes (PyAV, torchcodec over H.264 mp4) vs a decode-only ceiling, per
    length and sampling mode; or, with SPLIT_DIR --recipe R, your own split: clips/s, ceiling, what limits it."""
    if split_dir is not None:
        from synapt_fast.loader.throughput import diagnose

        if recipe is None:
            raise _fail("SPLIT_DIR needs --recipe: its sampling, crop and batch are what gets measured")
        try:
            record = diagnose(split_dir, recipe, override or [], repeats=repeats)
        except (OSError, ValueError) as e:
            raise _fail(str(e))
        if out_dir is not None:
            import json

            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "loader_split.json").write_text(json.dumps(record, indent=1) + "\n")
        return
    bench = _benchmark("bench_loader")
    bench.run(clips=clips, repeats=repeats, batch_size=batch_size, workers=workers, quick=quick,
              out_dir=out_dir or bench.RESULTS, copies=copies)


@bench_app.command("gop")
def bench_gop(
    clips: int = typer.Option(160, help="Clips per split (one split per video length and GOP)."),
    repeats: int = typer.Option(3, help="Timed epochs per split and mode (median reported)."),
    quick: bool = typer.Option(False, help="3 s videos, GOP 8 and 32, 12 clips, 1 repeat: seconds (CI)."),
    out_dir: Optional[Path] = typer.Option(None, help="Where gop.{json,md,png} go (default: benchmarks/results)."),
) -> None:
    """The DALI loader and shard size per GOP and video length, and the keyframe cut's gain -> results/gop.*"""
    bench = _benchmark("bench_gop")
    bench.run(clips=clips, repeats=repeats, quick=quick, out_dir=out_dir or bench.RESULTS)


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
    bench = _benchmark("bench_model")
    bench.run(quick=quick, models=model or None, compile_models=compile_model or None, repeats=repeats,
              threads=threads, out_dir=Path(out_dir) if out_dir else bench.RESULTS)



@bench_app.command("train")
def bench_train(
    quick: bool = typer.Option(False, help="2 tiny models, 1 repeat, a few steps: seconds."),
    model: list[str] = typer.Option(None, help="Tiny model name (repeatable); default: the 4 tiny models."),
    repeats: int = typer.Option(15, help="Repeats, each timing both contenders back to back (median reported)."),
    steps: int = typer.Option(30, help="Steps per timed repeat."),
    out_dir: Optional[Path] = typer.Option(None, help="Where train.{json,md} go (default: benchmarks/results)."),
) -> None:
    """Trainer overhead against a bare loop on a replayed batch, and data-wait share -> benchmarks/results/train.*"""
    bench = _benchmark("bench_train")
    bench.run(quick=quick, models=model or None, repeats=repeats, steps=steps, out_dir=out_dir or bench.RESULTS)


@bench_app.command("shapes")
def bench_shapes(
    quick: bool = typer.Option(False, help="Tiny models at the recipes' frame counts, 1 round: seconds (CI)."),
    model: list[str] = typer.Option(None, help="Full-size model name (repeatable); default: every model a recipe uses."),
    repeats: int = typer.Option(2, help="Timed rounds (each runs every shape once, order alternating)."),
    batch: int = typer.Option(2, help="Training batch (clips)."),
    threads: Optional[int] = typer.Option(None, help="torch intra-op threads (CPU default: 1)."),
    out_dir: Optional[Path] = typer.Option(None, help="Where shapes.{json,md,png} go (default: benchmarks/results)."),
) -> None:
    """Every model x every dataset at the recipes' shapes: train, linear-probe and eval throughput."""
    bench = _benchmark("bench_shapes")
    try:
        bench.run(quick=quick, models=model or None, repeats=repeats, batch=batch, threads=threads,
                  out_dir=out_dir or bench.RESULTS)
    except (ValueError, SystemExit) as exc:
        raise _fail(str(exc)) from None


@bench_app.command("all")
def bench_all(
    quick: bool = typer.Option(False, help="Every benchmark's quick mode: about a minute (CI)."),
    only: list[str] = typer.Option(None, help="Run only this benchmark (repeatable): shard, loader, gop, "
                                   "model, train, shapes."),
    out_dir: Optional[Path] = typer.Option(None, help="Where every result and summary.{json,md} go "
                                           "(default: benchmarks/results)."),
    index_only: bool = typer.Option(False, help="Run nothing: rebuild summary.* from the records already there."),
) -> None:
    """The whole suite in sequence, then summary.{json,md}: headline figures and the machine."""
    bench = _benchmark("bench_all")
    unknown = sorted(set(only or []) - set(bench.ORDER))
    if unknown:
        raise _fail(f"unknown benchmark(s) {unknown}; choose from {list(bench.ORDER)}")
    bench.run(quick=quick, only=only or None, out_dir=out_dir or bench.RESULTS, index_only=index_only)


@bench_app.command("gpu")
def bench_gpu(
    plan: bool = typer.Option(False, "--plan", help="Print what the suite would run, as JSON, and exit."),
    clips: int = typer.Option(96, help="Clips per generated shard split."),
    out_dir: Optional[Path] = typer.Option(None, help="Where gpu.{json,md,png} go (default: benchmarks/results)."),
) -> None:
    """NVDEC per codec, the DALI GPU loader, bf16 training and data wait: a GPU machine, < 10 minutes."""
    import json

    bench = _benchmark("bench_gpu")
    if plan:
        typer.echo(json.dumps(bench.plan(clips=clips), indent=1))
        return
    if reason := bench.gpu_unavailable():
        raise _fail(f"bench gpu needs a CUDA GPU with DALI's GPU backend: {reason}")
    bench.run(out_dir=out_dir or bench.RESULTS, clips=clips)


if __name__ == "__main__":
    app()
