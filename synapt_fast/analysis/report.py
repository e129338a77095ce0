"""The paper's tables and figures from a folder of finished runs.

    report = build(Path("runs"))            # every result.json below, one run chosen per table cell
    write(report, Path("runs/report"))      # report.md, table1.csv ... table5.csv, fig2-4 PNGs

Which runs fill a cell (see `cells`): a sweep's chosen hyper-parameters with all their seeds, else
the configuration with the best mean; the accuracy is each run's `best_top1`. Every cell says what
it is: mean ± sample std over seeds (or "1 seed"), `n` validation videos, and the notes say which
split chose the epoch and the cell and which split the number is measured on (the same one: there
is no held-out test split, as in the paper, so the numbers are optimistic). The CSVs carry the
same facts per cell (`top1_std`, `seeds`, `val_clips`, `measured_on`, `cell_chosen_by`).

Pre-training sources are read from result.json's `pretrained_on`, named
`<family><classes>[_s<samples per class>]`: `kinetics150`, `synthetic30`, `kinetics150_s250`,
`mit150` (families kinetics, synthetic/synth, mit, and scenic: the generator's scene-biased
pre-training set, which stands in for a real one offline; anything else is shown as named). Per
family, the source with the most classes, and among those the full set (no `_s`), fills Tables
1, 3, 4 and 5; Figure 3 plots every full-set source against its class count, Figure 4 every
`_s` source against its samples per class.

Table 2 comes from `synapt-fast bias` JSON files found anywhere below the folder: any JSON object
with `dataset`, `M` and `B` (`M` as a fraction like top-1, shown in %; values above 1 are taken
as % already). Figure 2 plots, per dataset with a bias record, the linear-probe top-1 of the real
pre-training (Kinetics, else MiT, else Scenic) over that of the synthetic one, against the
dataset's bias.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .cells import MODE_TITLES, MODEL_TITLES, Run, Source, load_json, find_runs
from .figures import FIGURE_TITLES, drawable, has_matplotlib, plot

PAPER_DATASETS = ("ucf101", "hmdb51", "mini_ssv2", "diving48", "ikea_fa", "uav_human")
DATASET_TITLES = {"ucf101": "UCF101", "hmdb51": "HMDB51", "mini_ssv2": "Mini-SSV2", "diving48": "Diving48",
                  "ikea_fa": "IkeaFA", "uav_human": "UAV-Human"}
FAMILY_ORDER = ("Kinetics", "Scenic", "Synthetic", "MiT")
REAL_FAMILIES = ("Kinetics", "MiT", "Scenic")
MISSING = "—"
NOT_BIAS = {"result.json", "sweep.json", "confusion.json", "manifest.json", "subset.json", "synth.json"}


@dataclass
class Table:
    name: str  # table1 ...
    title: str
    header: list[str]
    rows: list[list[str]]  # markdown cells
    records: list[dict]  # the CSV rows
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    root: Path
    runs: list[Run]  # the chosen run of every cell
    bias: dict[str, dict]  # dataset -> bias record (with "file")
    skipped: list[str]  # files not used, with the reason
    tables: list[Table] = field(default_factory=list)
    figures: dict[str, list[dict]] = field(default_factory=dict)  # fig2.png -> points
    figure_notes: list[str] = field(default_factory=list)


# --- finding bias records ---------------------------------------------------------------------

def find_bias(root: Path, skipped: list[str]) -> dict[str, dict]:
    """`synapt-fast bias` records below `root`, by dataset (the first file in path order wins)."""
    out: dict[str, dict] = {}
    for path in sorted(root.rglob("*.json")):
        if path.name in NOT_BIAS or path.stat().st_size > 5_000_000:
            continue
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not (isinstance(rec, dict) and isinstance(rec.get("dataset"), str)
                and isinstance(rec.get("M"), (int, float)) and "B" in rec):  # B is null when M is 0
            continue
        if rec["dataset"] in out:
            skipped.append(f"{path}: a second bias record for {rec['dataset']} (using {out[rec['dataset']]['file']})")
            continue
        out[rec["dataset"]] = dict(rec, file=str(path))
    return out


# --- tables -------------------------------------------------------------------------------------

def dataset_order(names) -> list[str]:
    names = set(names)
    return [d for d in PAPER_DATASETS if d in names] + sorted(names - set(PAPER_DATASETS))


def _title(dataset: str) -> str:
    return DATASET_TITLES.get(dataset, dataset)


def main_sources(runs: list[Run]) -> dict[str, Source]:
    """Per family, the source with the most classes, the full set preferred (Tables 1, 3-5)."""
    best: dict[str, Source] = {}
    for s in {r.source for r in runs if r.mode != "scratch"}:
        key = (s.classes or 0, float("inf") if s.samples is None else s.samples)
        old = best.get(s.family)
        if old is None or key > (old.classes or 0, float("inf") if old.samples is None else old.samples):
            best[s.family] = s
    return best


def _family_order(families) -> list[str]:
    return [f for f in FAMILY_ORDER if f in families] + sorted(set(families) - set(FAMILY_ORDER))


def _seeds(run: Run) -> str:
    return f"{len(run.seeds)} seeds" if len(run.seeds) > 1 else "1 seed"


def _cell(run: Run | None) -> str:
    """`mean ± std (k seeds, n=videos; train / eval clips/s)`, or `top-1 (1 seed, n=...; ...)`."""
    if run is None:
        return MISSING
    rate = lambda x: "?" if x is None else f"{x:.0f}"  # noqa: E731
    spread = f" ± {100 * run.top1_std:.2f}" if run.top1_std is not None else ""
    n = "?" if run.val_clips is None else str(run.val_clips)
    last = "" if run.epoch_chosen else ", last epoch"
    return (f"{100 * run.top1:.2f}{spread} ({_seeds(run)}, n={n}{last}; "
            f"{rate(run.train_clips_per_s)} / {rate(run.eval_clips_per_s)})")


def _machine_line(m: dict) -> str:
    torch = (m.get("versions") or {}).get("torch")
    return (f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gib', '?')} GiB, "
            f"GPUs: {', '.join(m.get('gpus') or []) or 'none'}" + (f"; torch {torch}" if torch else ""))


def transfer_table(name: str, title: str, runs: list[Run], *, families: list[str], modes: tuple[str, ...],
                   scratch: bool, columns: list[str]) -> Table:
    """Rows model x pre-training family x mode (+ Scratch), columns downstream datasets."""
    sources = main_sources(runs)
    index = {(r.model, r.source.name, r.mode, r.dataset): r for r in runs}
    models = sorted({r.model for r in runs}, key=lambda m: (list(MODEL_TITLES).index(m.split("_")[0])
                                                             if m.split("_")[0] in MODEL_TITLES else 99, m))
    header = ["Model", "Pre-training", "Mode", *map(_title, columns)]
    rows, records, used = [], [], []
    for model in models:
        title_of = next(r.model_title for r in runs if r.model == model)
        lines = [(fam, mode) for fam in families for mode in modes]
        if scratch:
            lines.append(("Scratch", "scratch"))
        for fam, mode in lines:
            source = "none" if mode == "scratch" else (sources[fam].name if fam in sources else None)
            cells = [index.get((model, source, mode, d)) if source else None for d in columns]
            used += [c for c in cells if c]
            label = fam if mode == "scratch" else f"{fam} ({source})" if source and source.lower() != fam.lower() else fam
            rows.append([title_of, label, MODE_TITLES[mode], *map(_cell, cells)])
            for d, c in zip(columns, cells):
                records.append({"model": model, "pretraining": source or fam, "mode": MODE_TITLES[mode], "dataset": d,
                                "top1": "" if c is None else f"{100 * c.top1:.2f}",
                                "top1_std": "" if c is None or c.top1_std is None else f"{100 * c.top1_std:.2f}",
                                "seeds": "" if c is None else " ".join(map(str, c.seeds)),
                                "val_clips": "" if c is None or c.val_clips is None else c.val_clips,
                                "measured_on": "" if c is None else c.val_split,
                                "epoch_chosen_on": "" if c is None else (c.val_split if c.epoch_chosen else "last epoch"),
                                "cell_chosen_by": "" if c is None else c.chosen_by,
                                "train_clips_per_s": "" if c is None or c.train_clips_per_s is None
                                else f"{c.train_clips_per_s:.1f}",
                                "eval_clips_per_s": "" if c is None or c.eval_clips_per_s is None
                                else f"{c.eval_clips_per_s:.1f}",
                                "run": "" if c is None else str(c.path.parent)})
    splits = sorted({r.val_split for r in used})
    notes = ["Each cell: top-1 % at each run's best epoch, mean ± sample std over seeds when the cell has "
             "several, else marked 1 seed; n: validation videos measured; then training / evaluation clips/s. "
             f"{MISSING}: no run.",
             "Measured on: " + (", ".join(f"`{x}`" for x in splits) or "—") + ". The epoch (model_best) and, in "
             "sweeps, the hyper-parameters were chosen on the same split the number is measured on (no held-out "
             "test split, as in the paper): read the numbers as optimistic. How each cell was chosen: "
             "`cell_chosen_by` in the CSV."]
    single = sum(1 for r in used if len(r.seeds) <= 1)
    if single:
        notes.append(f"{single} of {len(used)} cells are single-seed (no spread to show; `sweep --seeds` runs more).")
    machines: dict[str, int] = {}
    for r in used:
        line = _machine_line(r.machine)
        machines[line] = machines.get(line, 0) + 1
    notes += [f"Throughput measured on: {m} ({n} run{'s' * (n != 1)})." for m, n in sorted(machines.items())]
    return Table(name, title, header, rows, records, notes)


def _number(x, missing: str = MISSING) -> str:
    return f"{x:.2f}" if isinstance(x, (int, float)) else missing


def bias_table(bias: dict[str, dict]) -> Table:
    pre = [d for d in bias if Source.parse(d).family in FAMILY_ORDER]
    columns = sorted(pre, key=lambda d: (_family_order([Source.parse(x).family for x in pre])
                                         .index(Source.parse(d).family), d))
    columns += dataset_order(set(bias) - set(pre))
    m_pct = {d: 100 * bias[d]["M"] if bias[d]["M"] <= 1 else bias[d]["M"] for d in columns}
    rows = [["ImageNet LP accuracy M (%)", *(f"{m_pct[d]:.2f}" for d in columns)],
            ["Representation bias B", *(_number(bias[d]["B"]) for d in columns)]]
    records = [{"dataset": d, "M_percent": f"{m_pct[d]:.2f}", "B": _number(bias[d]["B"], ""),
                "M_rnd": bias[d].get("M_rnd", ""), "file": bias[d]["file"]} for d in columns]
    # The paper's representation is an ImageNet ResNet-50; say which one these records used.
    phis = sorted({f"{bias[d].get('arch', '?')} with {Path(str(bias[d].get('weights', '?'))).name}"
                   for d in columns if bias[d].get("arch") or bias[d].get("weights")})
    notes = ["B = log2(M / M_rnd), M_rnd = 1 / classes: Eq. 1 of the paper, as the bias records give it."]
    if phis:
        notes.append("Frozen representation: " + "; ".join(phis) + ".")
    return Table("table2", "Table 2: representation bias (linear probe on frozen ImageNet features)",
                 ["", *map(_title, columns)], rows, records, notes)


SHAPE_FIGURES = (("train_clips_per_s", "FT train clips/s"), ("linear_probe_train_clips_per_s", "LP train clips/s"),
                 ("eval_videos_per_s", "eval videos/s"))


def throughput_table(shapes: dict, source: str) -> Table:
    """Every model shape x dataset from a `synapt-fast bench shapes` record: the throughput a
    paper cell would run at on the benchmarked machine, whether or not the cell has been run."""
    throughput = shapes["throughput"]
    columns = dataset_order({d for per in throughput.values() for d in per} - {"pretrain"})
    if any("pretrain" in per for per in throughput.values()):
        columns = ["pretrain", *columns]
    rows, records = [], []
    for shape in sorted(throughput):
        for key, label in SHAPE_FIGURES:
            cells = [throughput[shape].get(d, {}).get(key) for d in columns]
            rows.append([shape, label, *(f"{c:.3g}" if isinstance(c, (int, float)) else MISSING for c in cells)])
            records.append({"shape": shape, "figure": key, **{d: ("" if c is None else c) for d, c in zip(columns, cells)}})
    params = shapes.get("params", {})
    notes = [f"From `{source}` (`synapt-fast bench shapes`); {_machine_line(shapes.get('machine', {}))}.",
             "Network timed once per shape with a 150-class head; each dataset swaps in its own classifier's "
             "measured time." + (f" Parameters: {json.dumps(params, sort_keys=True)}." if params else "")]
    return Table("throughput", "Throughput per model x dataset at the recipes' shapes", ["Shape", "Figure",
                 *map(_title, columns)], rows, records, notes)


def build(root: Path, exclude: Path | None = None, shapes: Path | None = None) -> Report:
    skipped: list[str] = []
    runs = find_runs(root, skipped, exclude)
    bias = find_bias(root, skipped)
    report = Report(root, runs, bias, skipped)
    tsn16 = lambda r: r.model_family == "tsn" and r.frames == 16  # noqa: E731
    cnn = [r for r in runs if r.model_family != "timesformer" and not tsn16(r)]
    if cnn:
        families = _family_order({"Kinetics", "Synthetic"} | set(main_sources(cnn)))
        columns = dataset_order({r.dataset for r in cnn} | (set(PAPER_DATASETS) if any(
            r.dataset in PAPER_DATASETS for r in runs) else set()))
        report.tables.append(transfer_table(
            "table1", "Table 1: top-1 accuracy via fine-tuning (FT) and linear probing (LP)", cnn,
            families=families, modes=("finetune", "linear_probe"), scratch=True, columns=columns))
    if bias:
        report.tables.append(bias_table(bias))
    tf = [r for r in runs if r.model_family == "timesformer" and r.mode != "scratch"]
    if tf:
        columns = dataset_order({r.dataset for r in tf} | set(PAPER_DATASETS))
        fams = set(main_sources(tf))
        report.tables.append(transfer_table(
            "table3", "Table 3: TimeSformer (divided space-time attention)", tf,
            families=_family_order((fams - {"MiT"}) | {"Kinetics", "Synthetic"}),
            modes=("finetune", "linear_probe"), scratch=False, columns=columns))
        if "MiT" in fams:
            report.tables.append(transfer_table(
                "table4", "Table 4: pre-training on Moments-in-Time", tf, families=["MiT", "Synthetic"],
                modes=("finetune", "linear_probe"), scratch=False, columns=columns))
    t5 = [r for r in runs if tsn16(r) and r.mode == "finetune"]
    if t5:
        columns = dataset_order({r.dataset for r in t5} | set(PAPER_DATASETS))
        report.tables.append(transfer_table(
            "table5", "Table 5: 16-frame TSN, fine-tuned", t5, families=["Kinetics", "Synthetic"],
            modes=("finetune",), scratch=False, columns=columns))
    if shapes is not None:
        record = load_json(shapes, skipped)
        if isinstance(record, dict) and "throughput" in record:
            report.tables.append(throughput_table(record, str(shapes)))
        elif record is not None:
            skipped.append(f"{shapes}: no 'throughput' (not a `synapt-fast bench shapes` record)")
    _figure_points(report)
    return report


# --- figures ------------------------------------------------------------------------------------

def _figure_points(report: Report) -> None:
    runs, sources = report.runs, main_sources(report.runs)
    fig2 = []
    for d, rec in report.bias.items():
        lp = {(r.model, r.source.family): r for r in runs
              if r.dataset == d and r.mode == "linear_probe" and sources.get(r.source.family) == r.source}
        for model in sorted({m for m, _ in lp}):
            real = next((lp[(model, f)] for f in REAL_FAMILIES if (model, f) in lp), None)
            syn = lp.get((model, "Synthetic"))
            if real and syn and syn.top1 > 0 and isinstance(rec["B"], (int, float)):
                fig2.append({"dataset": d, "title": _title(d), "model": model, "B": rec["B"],
                             "ratio": real.top1 / syn.top1, "real": real.source.family})
    report.figures["fig2.png"] = sorted(fig2, key=lambda p: (p["model"], p["B"], p["dataset"]))
    ft_lp = [r for r in runs if r.mode in ("finetune", "linear_probe") and r.model_family != "timesformer"
             and r.frames != 16 and r.source.family in FAMILY_ORDER]
    rank = {d: i for i, d in enumerate(dataset_order({r.dataset for r in ft_lp}))}

    def point(r: Run, x: int) -> dict:
        return {"dataset": r.dataset, "title": _title(r.dataset), "rank": rank[r.dataset], "model": r.model,
                "family": r.source.family, "mode": MODE_TITLES[r.mode], "x": x, "top1": r.top1}

    order = lambda p: (p["rank"], p["model"], p["family"], p["mode"], p["x"])  # noqa: E731
    report.figures["fig3.png"] = sorted((point(r, r.source.classes) for r in ft_lp
                                         if r.source.classes and r.source.samples is None), key=order)
    report.figures["fig4.png"] = sorted((point(r, r.source.samples) for r in ft_lp if r.source.samples), key=order)


# --- output -------------------------------------------------------------------------------------

def _markdown_table(t: Table) -> str:
    lines = ["| " + " | ".join(t.header) + " |", "|" + "---|" * len(t.header)]
    lines += ["| " + " | ".join(row) + " |" for row in t.rows]
    return "\n".join(lines)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def write(report: Report, out: Path) -> str:
    """report.md, one CSV per table and the figures into `out`; returns the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    parts = [f"# SynAPT report: {report.root}", "",
             f"{len(report.runs)} cell(s) filled from {sum(len(r.seeds) or 1 for r in report.runs)} run(s); "
             "accuracy is each run's best validation top-1 (chosen and measured on the same split)."]
    if not report.tables:
        parts += ["", "No transfer runs (finetune, linear_probe, scratch) or bias records found."]
    for t in report.tables:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(t.records[0]) if t.records else ["empty"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(t.records)
        _atomic_write(out / f"{t.name}.csv", buf.getvalue())
        parts += ["", f"## {t.title}", "", _markdown_table(t), "", *(f"{n}  " for n in t.notes),
                  "", f"CSV: `{t.name}.csv`"]
    for name, (title, needs) in FIGURE_TITLES.items():
        points = report.figures.get(name) or []
        parts += ["", f"## {title}", ""]
        if drawable(points) and not has_matplotlib():
            parts.append("Not drawn: matplotlib is not installed (pip install 'synapt-fast[bench]').")
        elif drawable(points):
            plot(name, points, out / name)
            parts.append(f"![{title}]({name})")
        else:
            (out / name).unlink(missing_ok=True)  # a figure from an earlier report no longer holds
            parts.append(f"Not drawn: {needs}, at two or more points.")
    if report.skipped:
        parts += ["", "## Files not used", "", *(f"- {s}" for s in report.skipped)]
    text = "\n".join(parts) + "\n"
    _atomic_write(out / "report.md", text)
    return text
