"""The paper's tables and figures from a folder of finished runs.

    report = build(Path("runs"))            # every result.json below, one run chosen per table cell
    write(report, Path("runs/report"))      # report.md, table1.csv ... table5.csv, fig2-4 PNGs

Which run fills a cell: inside a sweep folder (one holding `sweep.json`), the sweep's chosen cell
and none of the others; elsewhere the best of the runs with the same model, mode, pre-training
source, downstream dataset and frame count. "Best" and the accuracy shown are `best_top1`, the
best validation top-1 of the run (the epoch `model_best.pth.tar` holds), as `synapt-fast sweep`
chooses; ties go to the run folder that sorts first.

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
import re
from dataclasses import dataclass, field
from pathlib import Path

from synapt_fast.atomic import write_atomic

PAPER_DATASETS = ("ucf101", "hmdb51", "mini_ssv2", "diving48", "ikea_fa", "uav_human")
DATASET_TITLES = {"ucf101": "UCF101", "hmdb51": "HMDB51", "mini_ssv2": "Mini-SSV2", "diving48": "Diving48",
                  "ikea_fa": "IkeaFA", "uav_human": "UAV-Human"}
MODEL_TITLES = {"tsn": "TSN", "i3d": "I3D", "r2plus1d": "R(2+1)D", "timesformer": "TimeSformer"}
PAPER_VARIANTS = ("r50", "b16")  # tsn_r50 is "TSN"; tsn_tiny is "TSN (tsn_tiny)"
FAMILY_TITLES = {"kinetics": "Kinetics", "synthetic": "Synthetic", "synth": "Synthetic", "mit": "MiT",
                 "scenic": "Scenic"}
FAMILY_ORDER = ("Kinetics", "Scenic", "Synthetic", "MiT")
REAL_FAMILIES = ("Kinetics", "MiT", "Scenic")
MODE_TITLES = {"finetune": "FT", "linear_probe": "LP", "scratch": "Scratch"}
MISSING = "—"
SOURCE_NAME = re.compile(r"^(?P<family>[a-z_]+?)(?P<classes>\d+)?(?:_s(?P<samples>\d+))?$")
NOT_BIAS = {"result.json", "sweep.json", "confusion.json", "manifest.json", "subset.json", "synth.json"}


@dataclass(frozen=True)
class Source:
    """A pre-training source parsed from its name (`kinetics150_s250`)."""

    name: str
    family: str  # title: Kinetics, Synthetic, MiT, or the name itself
    classes: int | None = None
    samples: int | None = None  # None: the full set

    @classmethod
    def parse(cls, name: str) -> "Source":
        m = SOURCE_NAME.match(name.lower())
        if not m:
            return cls(name, name)
        family = FAMILY_TITLES.get(m["family"])
        if family is None:
            return cls(name, name)
        return cls(name, family, int(m["classes"]) if m["classes"] else None,
                   int(m["samples"]) if m["samples"] else None)


@dataclass
class Run:
    path: Path  # the result.json
    model: str
    mode: str
    source: Source
    dataset: str
    frames: int
    top1: float
    train_clips_per_s: float | None
    eval_clips_per_s: float | None
    machine: dict

    @property
    def model_family(self) -> str:
        return self.model.split("_", 1)[0]

    @property
    def model_title(self) -> str:
        title = MODEL_TITLES.get(self.model_family, self.model)
        variant = self.model.split("_", 1)[1] if "_" in self.model else ""
        return title if variant in PAPER_VARIANTS or title == self.model else f"{title} ({self.model})"

    @classmethod
    def from_result(cls, path: Path, r: dict) -> "Run":
        best = r.get("best_top1")
        top1 = best if isinstance(best, (int, float)) and best >= 0 else r["top1"]
        hp = r.get("hyper_parameters", {})
        return cls(path, r["model"], r["mode"], Source.parse(str(r.get("pretrained_on") or "none")), r["dataset"],
                   int(hp.get("data.num_frames", 8)), float(top1), r.get("train_clips_per_s"),
                   r.get("eval_clips_per_s"), r.get("machine") or {})


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


# --- finding and choosing runs ------------------------------------------------------------------

def _load_json(path: Path, skipped: list[str]):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        skipped.append(f"{path}: not readable JSON ({e})")
        return None


def find_runs(root: Path, skipped: list[str], exclude: Path | None = None) -> list[Run]:
    """One run per (model, mode, source, dataset, frames): a sweep's chosen cell, else the best."""
    chosen_in: dict[Path, Path | None] = {}  # sweep folder -> its chosen run folder
    for sweep_file in sorted(root.rglob("sweep.json")):
        rec = _load_json(sweep_file, skipped)
        if isinstance(rec, dict):
            run = (rec.get("chosen") or {}).get("run")
            chosen_in[sweep_file.parent.resolve()] = Path(run).resolve() if run else None
    groups: dict[tuple, list[Run]] = {}
    for path in sorted(root.rglob("result.json")):
        if exclude is not None and exclude.resolve() in path.resolve().parents:
            continue
        run_dir = path.parent.resolve()
        sweep = next((d for d in run_dir.parents if d in chosen_in), None)
        if sweep is not None and chosen_in[sweep] != run_dir:
            skipped.append(f"{path}: not the chosen cell of the sweep in {path.parents[len(run_dir.parents) - len(sweep.parents)]}")
            continue
        r = _load_json(path, skipped)
        if r is None:
            continue
        try:
            run = Run.from_result(path, r)
        except (KeyError, TypeError, ValueError) as e:
            skipped.append(f"{path}: missing or malformed field {e}")
            continue
        if run.mode not in MODE_TITLES:  # pre-training runs are sources, not table cells
            continue
        groups.setdefault((run.model, run.mode, run.source.name, run.dataset, run.frames), []).append(run)
    runs = []
    for key in sorted(groups):
        ordered = sorted(groups[key], key=lambda r: (-r.top1, str(r.path)))
        runs.append(ordered[0])
        skipped += [f"{r.path}: a better run of the same cell is {ordered[0].path}" for r in ordered[1:]]
    return runs


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


def _cell(run: Run | None) -> str:
    if run is None:
        return MISSING
    rate = lambda x: "?" if x is None else f"{x:.0f}"  # noqa: E731
    return f"{100 * run.top1:.2f} ({rate(run.train_clips_per_s)} / {rate(run.eval_clips_per_s)})"


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
                                "train_clips_per_s": "" if c is None or c.train_clips_per_s is None
                                else f"{c.train_clips_per_s:.1f}",
                                "eval_clips_per_s": "" if c is None or c.eval_clips_per_s is None
                                else f"{c.eval_clips_per_s:.1f}",
                                "run": "" if c is None else str(c.path.parent)})
    notes = ["Each cell: top-1 % on the validation split (training / evaluation clips/s); "
             f"{MISSING}: no run."]
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
        record = _load_json(shapes, skipped)
        if isinstance(record, dict) and "throughput" in record:
            report.tables.append(throughput_table(record, str(shapes)))
        elif record is not None:
            skipped.append(f"{shapes}: no 'throughput' (not a `synapt-fast bench shapes` record)")
    from .figures import figure_points

    figure_points(report)
    return report


# --- output -------------------------------------------------------------------------------------

def _markdown_table(t: Table) -> str:
    lines = ["| " + " | ".join(t.header) + " |", "|" + "---|" * len(t.header)]
    lines += ["| " + " | ".join(row) + " |" for row in t.rows]
    return "\n".join(lines)


def write(report: Report, out: Path) -> str:
    """report.md, one CSV per table and the figures into `out`; returns the markdown."""
    from .figures import FIGURE_TITLES, has_matplotlib, plot_figure

    out.mkdir(parents=True, exist_ok=True)
    parts = [f"# SynAPT report: {report.root}", "",
             f"{len(report.runs)} run(s) fill the tables; accuracy is each run's best validation top-1."]
    if not report.tables:
        parts += ["", "No transfer runs (finetune, linear_probe, scratch) or bias records found."]
    for t in report.tables:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(t.records[0]) if t.records else ["empty"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(t.records)
        write_atomic(out / f"{t.name}.csv", buf.getvalue(), durable=False)
        parts += ["", f"## {t.title}", "", _markdown_table(t), "", *(f"{n}  " for n in t.notes),
                  "", f"CSV: `{t.name}.csv`"]
    for name, (title, needs) in FIGURE_TITLES.items():
        points = report.figures.get(name) or []
        parts += ["", f"## {title}", ""]
        # a curve needs two x values (Figure 2: two datasets with a bias); one point says nothing
        if len({p.get("x", p.get("B")) for p in points}) >= 2 and not has_matplotlib():
            parts.append("Not drawn: matplotlib is not installed (pip install 'synapt-fast[bench]').")
        elif len({p.get("x", p.get("B")) for p in points}) >= 2:
            plot_figure(name, points, out / name)
            parts.append(f"![{title}]({name})")
        else:
            (out / name).unlink(missing_ok=True)  # a figure from an earlier report no longer holds
            parts.append(f"Not drawn: {needs}, at two or more points.")
    if report.skipped:
        parts += ["", "## Files not used", "", *(f"- {s}" for s in report.skipped)]
    text = "\n".join(parts) + "\n"
    write_atomic(out / "report.md", text, durable=False)
    return text
