"""The report's figures (the paper's Figures 2-4) drawn from the points `report.build` collects."""

from __future__ import annotations

from pathlib import Path

from synapt_fast.atomic import save_atomic_with

from .report import (FAMILY_ORDER, MODE_TITLES, REAL_FAMILIES, Report, _title, dataset_order,
                     main_sources)


def figure_points(report: Report) -> None:
    runs, sources = report.runs, main_sources(report.runs)
    fig2 = []
    for d, rec in report.bias.items():
        lp = {(r.model, r.source.family): r for r in runs
              if r.dataset == d and r.mode == "linear_probe" and sources.get(r.source.family) == r.source}
        for model in sorted({m for m, _ in lp}):
            real = next((lp[(model, f)] for f in REAL_FAMILIES if (model, f) in lp), None)
            syn = lp.get((model, "Synthetic"))
            if real and syn and syn.top1 > 0 and isinstance(rec["B"], (int, float)):
                fig2.append({"dataset": d, "model": model, "B": rec["B"], "ratio": real.top1 / syn.top1,
                             "real": real.source.family})
    report.figures["fig2.png"] = sorted(fig2, key=lambda p: (p["model"], p["B"], p["dataset"]))
    ft_lp = [r for r in runs if r.mode in ("finetune", "linear_probe") and r.model_family != "timesformer"
             and r.frames != 16 and r.source.family in FAMILY_ORDER]
    report.figures["fig3.png"] = sorted(
        ({"dataset": r.dataset, "model": r.model, "family": r.source.family, "mode": MODE_TITLES[r.mode],
          "x": r.source.classes, "top1": r.top1} for r in ft_lp if r.source.classes and r.source.samples is None),
        key=lambda p: (p["dataset"], p["model"], p["family"], p["mode"], p["x"]))
    report.figures["fig4.png"] = sorted(
        ({"dataset": r.dataset, "model": r.model, "family": r.source.family, "mode": MODE_TITLES[r.mode],
          "x": r.source.samples, "top1": r.top1} for r in ft_lp if r.source.samples),
        key=lambda p: (p["dataset"], p["model"], p["family"], p["mode"], p["x"]))


def has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def plot_figure(name: str, points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if name == "fig2.png":
        fig, ax = plt.subplots(figsize=(5, 4))
        for model in sorted({p["model"] for p in points}):
            ps = [p for p in points if p["model"] == model]
            ax.plot([p["B"] for p in ps], [p["ratio"] for p in ps], "o-", label=model)
            for p in ps:
                ax.annotate(_title(p["dataset"]), (p["B"], p["ratio"]), fontsize=7)
        ax.set_xlabel("representation bias B of the downstream set")
        ax.set_ylabel("LP top-1: real / synthetic pre-training")
        ax.legend(fontsize=7)
    else:
        # a panel needs a curve: datasets with runs at one class count (or sample count) only are left out
        datasets = [d for d in dataset_order({p["dataset"] for p in points})
                    if len({p["x"] for p in points if p["dataset"] == d}) >= 2] \
            or dataset_order({p["dataset"] for p in points})
        fig, axes = plt.subplots(1, len(datasets), figsize=(3.2 * len(datasets), 3), squeeze=False)
        for ax, d in zip(axes[0], datasets):
            series = sorted({(p["model"], p["family"], p["mode"]) for p in points if p["dataset"] == d})
            for model, family, mode in series:
                ps = [p for p in points if (p["dataset"], p["model"], p["family"], p["mode"]) == (d, model, family, mode)]
                ax.plot([p["x"] for p in ps], [100 * p["top1"] for p in ps], "o" + ("-" if mode == "FT" else "--"),
                        color="C0" if family == "Kinetics" else "C1" if family == "Synthetic" else "C2",
                        label=f"{family} {mode}" + (f" ({model})" if len({s[0] for s in series}) > 1 else ""))
            ax.set_title(_title(d))
            ax.set_xlabel("pre-training classes" if name == "fig3.png" else "samples per class")
            ax.set_ylabel("top-1 %")
            ax.legend(fontsize=6)
    fig.tight_layout()
    save_atomic_with(path, lambda tmp: fig.savefig(tmp, dpi=100), durable=False)
    plt.close(fig)


FIGURE_TITLES = {
    "fig2.png": ("Figure 2: representation bias vs transferability (LP top-1 ratio, real / synthetic)",
                 "needs bias records and LP runs from both a real and a synthetic pre-training on those datasets"),
    "fig3.png": ("Figure 3: top-1 vs number of pre-training classes",
                 "needs FT/LP runs whose pre-training source names a class count (e.g. synthetic30)"),
    "fig4.png": ("Figure 4: top-1 vs samples per class in pre-training",
                 "needs FT/LP runs whose pre-training source names samples per class (e.g. kinetics150_s250)"),
}
