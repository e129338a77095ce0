"""The paper's Figures 2-4, drawn from the points `report` gathers (the only module that needs matplotlib).

Each figure draws only what its legend names:
- Figure 2: one marker per (model, downstream dataset): x the dataset's representation bias, y the
  linear-probe top-1 of the real pre-training over the synthetic one, labelled with the dataset.
  Points are not joined: they are different datasets, not one quantity varying along B. Marker
  shape tells the model; the legend lists the models (and, when it varies, the real source).
- Figures 3 and 4: one panel per downstream dataset; in a panel, one line per (pre-training family,
  mode, model) over the class counts (samples per class) of that dataset only. Colour is the family,
  line style the mode (FT solid, LP dashed), marker shape the model; each legend entry is drawn
  with that colour, style and marker, so the legend matches the lines.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

FIGURE_TITLES = {
    "fig2.png": ("Figure 2: representation bias vs transferability (LP top-1 ratio, real / synthetic)",
                 "needs bias records and LP runs from both a real and a synthetic pre-training on those datasets"),
    "fig3.png": ("Figure 3: top-1 vs number of pre-training classes",
                 "needs FT/LP runs whose pre-training source names a class count (e.g. synthetic30)"),
    "fig4.png": ("Figure 4: top-1 vs samples per class in pre-training",
                 "needs FT/LP runs whose pre-training source names samples per class (e.g. kinetics150_s250)"),
}
FAMILY_COLOURS = {"Kinetics": "C0", "Synthetic": "C1", "MiT": "C2", "Scenic": "C3"}
MARKERS = "osD^vP*X"
STYLES = {"FT": "-", "LP": "--"}


def has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def drawable(points: list[dict]) -> bool:
    """A figure needs two x values (Figure 2: two datasets with a bias); one point says nothing."""
    return len({p.get("x", p.get("B")) for p in points}) >= 2


def _markers(models) -> dict[str, str]:
    return {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(sorted(set(models)))}


def _bias_figure(plt, points: list[dict]):
    fig, ax = plt.subplots(figsize=(5, 4))
    marker = _markers(p["model"] for p in points)
    reals = {p["real"] for p in points}
    for model in sorted(marker):
        for real in sorted(reals):
            ps = [p for p in points if p["model"] == model and p["real"] == real]
            if not ps:
                continue
            label = model + (f" ({real} / Synthetic)" if len(reals) > 1 else "")
            ax.plot([p["B"] for p in ps], [p["ratio"] for p in ps], linestyle="none", marker=marker[model],
                    color=FAMILY_COLOURS.get(real, "C4"), label=label)
            for p in ps:
                ax.annotate(p["title"], (p["B"], p["ratio"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axhline(1.0, color="grey", linewidth=0.5)
    ax.set_xlabel("representation bias B of the downstream set")
    ax.set_ylabel("LP top-1: " + (next(iter(reals)) if len(reals) == 1 else "real") + " / synthetic pre-training")
    ax.legend(fontsize=7)
    return fig


def _sweep_figure(plt, name: str, points: list[dict]):
    order = sorted({(p["rank"], p["dataset"], p["title"]) for p in points})
    # a panel needs a curve: datasets with runs at one class count (or sample count) only are left out
    panels = [(d, t) for _, d, t in order if len({p["x"] for p in points if p["dataset"] == d}) >= 2] \
        or [(d, t) for _, d, t in order]
    marker = _markers(p["model"] for p in points)
    several_models = len(marker) > 1
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3), squeeze=False)
    for ax, (d, title) in zip(axes[0], panels):
        series = sorted({(p["family"], p["mode"], p["model"]) for p in points if p["dataset"] == d})
        for family, mode, model in series:
            ps = sorted((p for p in points if (p["dataset"], p["family"], p["mode"], p["model"]) == (d, family, mode, model)),
                        key=lambda p: p["x"])
            ax.plot([p["x"] for p in ps], [100 * p["top1"] for p in ps], linestyle=STYLES.get(mode, ":"),
                    marker=marker[model], color=FAMILY_COLOURS.get(family, "C4"),
                    label=f"{family} {mode}" + (f" ({model})" if several_models else ""))
        ax.set_title(title)
        ax.set_xlabel("pre-training classes" if name == "fig3.png" else "samples per class")
        ax.set_ylabel("top-1 %")
        ax.legend(fontsize=6)
    return fig


def plot(name: str, points: list[dict], path: Path) -> None:
    """Draw figure `name` (fig2.png, fig3.png, fig4.png) from its points into `path`, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = _bias_figure(plt, points) if name == "fig2.png" else _sweep_figure(plt, name, points)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".partial.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
