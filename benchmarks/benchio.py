"""What every benchmark writes: result files replaced atomically, and a bar chart beside them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from synapt_fast import atomic


def write_atomic(path: Path, text: str) -> None:
    """Benchmark records are cheap to rebuild: replaced whole, without fsync."""
    atomic.write_atomic(Path(path), text, durable=False)


def save_record(out_dir: Path, stem: str, record: dict, plot: Callable[[dict, Path], str],
                markdown: Callable[[dict], str]) -> str:
    """`stem`.png from `plot`, then `stem`.json and `stem`.md, each replaced atomically; returns the
    markdown. The record keeps the plot's file name, which the markdown links."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record["plot"] = plot(record, out_dir / f"{stem}.png")
    write_atomic(out_dir / f"{stem}.json", json.dumps(record, indent=1) + "\n")
    text = markdown(record)
    write_atomic(out_dir / f"{stem}.md", text)
    return text


def bar_chart(path: Path, title: str, ylabel: str, groups: dict[str, dict[str, float]], *,
              lines: dict[str, float] | None = None, log: bool = False) -> str:
    """A grouped bar chart PNG: one group per key of `groups`, one bar per series inside it.

    `lines` draws one horizontal marker per group (e.g. the decode-only ceiling), keyed like
    `groups`. Returns the file name, for the markdown link. matplotlib's Agg backend: no display.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = list(dict.fromkeys(s for g in groups.values() for s in g))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(min(13.0, max(6.0, 0.3 * len(groups) * len(series) + 2)), 4.5))
    for j, s in enumerate(series):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [g.get(s, 0.0) for g in groups.values()], width, label=s)
    for i, name in enumerate(groups):
        if lines and name in lines:
            ax.hlines(lines[name], i - 0.45, i + 0.45, colors="black", linestyles="dashed",
                      label="decode-only ceiling" if i == 0 else None)
    ax.set_xticks(range(len(groups)), list(groups), rotation=20 if len(groups) > 4 else 0, ha="right"
                  if len(groups) > 4 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic.save_atomic_with(Path(path), lambda tmp: fig.savefig(tmp, dpi=90), durable=False)
    plt.close(fig)
    return Path(path).name
