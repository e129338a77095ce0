"""`subset`: nested class / samples-per-class subsets and bias-ranked class windows, as new shards."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail, plain


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

    from synapt_fast.format.verify import ShardError
    from synapt_fast.sharding.subsets import (SubsetError, bias_window_splits, classes_from as read_classes, read_split,
                                              select, write_subset)

    console = Console()
    if sum(x is not None for x in (classes, classes_from, bias_ranked)) > 1:
        raise fail("choose one of --classes, --classes-from and --bias-ranked")
    if rank_by not in ("train_cv", "train", "val"):
        raise fail(f"--rank-by must be 'train_cv', 'train' or 'val', not {rank_by!r}")
    try:
        manifest, samples = read_split(src)
        if bias_ranked is None:
            names = read_classes(classes_from) if classes_from else None
            jobs = [(out, dict(classes=classes, per_class=per_class, classes_from=str(classes_from or "") or None),
                     names)]
        else:
            jobs = [(path, info, info["classes"]) for path, info in bias_window_splits(
                bias_ranked, out, rank_by=rank_by, k=k, count=count, per_class=per_class, set_name=set_name,
                split=split)]
        for path, info, names in jobs:
            sel = select(manifest, samples, seed=seed, num_classes=info.get("classes"), per_class=per_class,
                         class_names=names)
            m = write_subset(src, path, manifest, sel, seed=seed, info=info, overwrite=overwrite,
                             set_name=None if bias_ranked else set_name, split=split, max_mb=shard_mb)
            extra = (f", mean probe accuracy {info['mean_probe_accuracy']:.4f}" if bias_ranked else "")
            plain(console, f"{path}: {len(m.class_names)} classes, {m.num_samples} samples in {len(m.shards)} "
                           f"shards{extra}")
            for line in sel.short[:10]:
                plain(console, f"  short: {line}")
            if len(sel.short) > 10:
                plain(console, f"  ... and {len(sel.short) - 10} more (see {path / 'subset.json'})")
    except (SubsetError, ShardError, OSError) as e:
        raise fail(str(e))
