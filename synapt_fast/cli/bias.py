"""`bias`: the representation bias of a dataset (paper Eq. 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail


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
    from rich.console import Console
    from rich.table import Table

    from synapt_fast.analysis.bias import BiasError, FeatureSpec, measure_bias
    from synapt_fast.atomic import write_atomic

    console = Console()
    try:
        result = measure_bias(train, val, weights, FeatureSpec(arch=arch, frames=frames, size=size),
                              cache_dir=cache_dir, batch_size=batch_size, workers=workers,
                              weight_decay=weight_decay, seed=seed, folds=folds)
    except (BiasError, OSError) as e:
        raise fail(str(e))
    table = Table(title=f"representation bias: {result['dataset']}", show_header=False)
    for key in ("classes", "num_train", "num_val", "train_accuracy", "train_cv_accuracy", "M", "M_rnd", "B"):
        v = result[key]
        table.add_row(key, f"{v:.4f}" if isinstance(v, float) else str(v))
    table.add_row("features", ", ".join(f"{s} {'cached' if result['features'][s]['cache_hit'] else 'extracted'}"
                                        for s in ("train", "val")))
    console.print(table)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, json.dumps(result, indent=1, ensure_ascii=False) + "\n", durable=False)
        console.print(f"-> {out}", highlight=False)
