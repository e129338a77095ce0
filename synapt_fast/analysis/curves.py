"""Pictures of one run: loss / accuracy curves from metrics.jsonl (`synapt-fast plot`) and the
confusion matrix of an evaluation (`synapt-fast eval`)."""

from __future__ import annotations

import json
from pathlib import Path

from synapt_fast.atomic import save_atomic_with


def read_metrics(run_dir: Path) -> dict[str, list[dict]]:
    """metrics.jsonl by record kind ("train", "epoch", "eval"); a line cut by a kill is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no metrics.jsonl (not a run folder, or the run has not logged yet)")
    kinds: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        kinds.setdefault(rec.get("kind", ""), []).append(rec)
    return kinds


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a cluster node
    import matplotlib.pyplot as plt

    return plt


def plot_runs(run_dirs: list[Path], out: Path) -> Path:
    """One PNG: training loss per step (left) and validation top-1/top-5 per epoch (right), one
    colour per run; runs are labelled by their folder name."""
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, run in enumerate(run_dirs):
        kinds, colour, name = read_metrics(run), f"C{i % 10}", Path(run).name
        train = kinds.get("train", [])
        loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train], color=colour, lw=1, label=name)
        evals = kinds.get("eval", [])
        epochs = [r["epoch"] + 1 for r in evals]
        acc_ax.plot(epochs, [100 * r["top1"] for r in evals], "o-", color=colour, label=f"{name} top-1")
        acc_ax.plot(epochs, [100 * r["top5"] for r in evals], "s--", color=colour, alpha=0.6,
                    label=f"{name} top-5")
    loss_ax.set(xlabel="step", ylabel="training loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy %", title="validation (video level)")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_atomic_with(out, lambda tmp: fig.savefig(tmp, dpi=100, format="png"), durable=False)
    plt.close(fig)
    return out


def confusion_png(matrix: list[list[int]], class_names: list[str], out: Path, *, title: str = "") -> Path:
    """The confusion matrix (rows: true class, columns: predicted), counts in the cells when small."""
    import numpy as np

    plt = _pyplot()
    m = np.asarray(matrix)
    n = len(class_names)
    side = min(2 + 0.35 * n, 30)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    rows = m.sum(1, keepdims=True)
    image = ax.imshow(m / np.maximum(rows, 1), cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    if n <= 40:
        ax.set_xticks(range(n), class_names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), class_names, fontsize=7)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if m[i, j]:
                    ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    save_atomic_with(Path(out), lambda tmp: fig.savefig(tmp, dpi=100, format="png"), durable=False)
    plt.close(fig)
    return Path(out)
