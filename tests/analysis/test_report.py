"""The report: the paper's tables and figures from result files written here, gaps and sweeps included."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import run_cli

MACHINE = {"cpu": "Test CPU 9000", "cores": 2, "memory_gib": 8.0, "gpus": [], "versions": {"torch": "2.13.0"}}


def result(run_dir: Path, model: str, mode: str, source: str, dataset: str, top1: float, *, frames: int = 8,
           train: float = 120.0, evaluate: float = 480.0, best: float | None = None, seed: int = 0,
           lr: float = 0.001, videos: int = 50) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps({
        "run": run_dir.name, "model": model, "mode": mode, "pretrained_on": source, "dataset": dataset,
        "num_classes": 10, "top1": top1, "top5": 1.0, "best_top1": top1 if best is None else best,
        "train_clips_per_s": train, "eval_clips_per_s": evaluate, "eval_videos": videos,
        "hyper_parameters": {"data.num_frames": frames, "optim.lr": lr, "seed": seed, "data.val": f"shards/{dataset}/val"},
        "machine": MACHINE}))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    t = "tsn_r50"
    result(root / "k_ft_ucf", t, "finetune", "kinetics150", "ucf101", 0.8617, train=123.4, evaluate=456.7)
    result(root / "k_lp_ucf", t, "linear_probe", "kinetics150", "ucf101", 0.6992)
    result(root / "k_lp_hmdb", t, "linear_probe", "kinetics150", "hmdb51", 0.4634)
    result(root / "s_ft_ucf", t, "finetune", "synthetic150", "ucf101", 0.8340)
    result(root / "s_ft_ucf_worse", t, "finetune", "synthetic150", "ucf101", 0.5000)  # same cell: not chosen
    result(root / "s_lp_ucf", t, "linear_probe", "synthetic150", "ucf101", 0.2802)
    result(root / "s_lp_hmdb", t, "linear_probe", "synthetic150", "hmdb51", 0.2092)
    # Three seeds of one configuration: mean ± std; a better-looking other configuration with one seed
    # does not beat the mean it is compared with unless its own number is higher.
    for seed, top1 in enumerate((0.40, 0.42, 0.44)):
        result(root / f"k_ft_hmdb_seed{seed}", t, "finetune", "kinetics150", "hmdb51", top1, seed=seed)
    result(root / "k_ft_hmdb_lr_other", t, "finetune", "kinetics150", "hmdb51", 0.41, lr=0.01)
    result(root / "scratch_ucf", t, "scratch", "none", "ucf101", 0.4837)
    result(root / "i3d_s_ft_ssv2", "i3d_r50", "finetune", "synthetic150", "mini_ssv2", 0.5072)
    result(root / "s30_ft_ucf", t, "finetune", "synthetic30", "ucf101", 0.7100)  # Figure 3
    result(root / "k_s250_lp_ucf", t, "linear_probe", "kinetics150_s250", "ucf101", 0.6500)  # Figure 4
    result(root / "k_s750_lp_ucf", t, "linear_probe", "kinetics150_s750", "ucf101", 0.6800)
    result(root / "tf_k_ft_ucf", "timesformer_b16", "finetune", "kinetics150", "ucf101", 0.9209)
    result(root / "tf_mit_lp_hmdb", "timesformer_b16", "linear_probe", "mit150", "hmdb51", 0.5271)
    result(root / "tsn16_s_ft_ucf", t, "finetune", "synthetic150", "ucf101", 0.8610, frames=16)
    result(root / "pretrain", t, "pretrain", "none", "synthetic150", 0.9)  # a source, not a table cell
    # A sweep on Diving48: its chosen cell fills the table even though another cell scored higher.
    sweep = root / "sweeps" / "tsn_r50_8x1_synthetic150_ft-diving48"
    result(sweep / "lr0.001", t, "finetune", "synthetic150", "diving48", 0.6000)
    result(sweep / "lr0.0001", t, "finetune", "synthetic150", "diving48", 0.7000)
    (sweep / "sweep.json").write_text(json.dumps({"chosen": {"tag": "lr0.001", "run": str(sweep / "lr0.001")},
                                                  "cells": []}))
    # A sweep with --seeds: its chosen point's two seeds fill the cell, the other point's do not.
    seeded = root / "sweeps" / "tsn_r50_8x1_kinetics150_lp-diving48"
    for tag, lr, seed, top1 in (("lr0.001_seed0", 0.001, 0, 0.30), ("lr0.001_seed1", 0.001, 1, 0.34),
                                ("lr0.01_seed0", 0.01, 0, 0.50), ("lr0.01_seed1", 0.01, 1, 0.10)):
        result(seeded / tag, t, "linear_probe", "kinetics150", "diving48", top1, seed=seed, lr=lr)
    (seeded / "sweep.json").write_text(json.dumps({"chosen": {
        "tag": "lr0.001_seed0", "run": str(seeded / "lr0.001_seed0"),
        "runs": [str(seeded / "lr0.001_seed0"), str(seeded / "lr0.001_seed1")]}, "cells": []}))
    bias = root / "bias"
    bias.mkdir()
    for d, m, b in (("kinetics150", 0.4467, 6.07), ("ucf101", 0.6532, 6.04), ("hmdb51", 0.3856, 4.30)):
        (bias / f"{d}.json").write_text(json.dumps({"dataset": d, "M": m, "M_rnd": 0.01, "B": b,
                                                    "per_class_accuracy": [0.5, 0.5]}))
    (bias / "ikea_fa.json").write_text(json.dumps({"dataset": "ikea_fa", "M": 0.0, "M_rnd": 0.0833, "B": None}))
    (root / "broken").mkdir()
    (root / "broken" / "result.json").write_text("{not json")
    result(root / "wrong_type", t, "finetune", "kinetics150", "ikea_fa", 0.5)  # a hand-edited file
    edited = json.loads((root / "wrong_type" / "result.json").read_text())
    (root / "wrong_type" / "result.json").write_text(json.dumps(dict(edited, best_top1="0.9")))
    result(root / "wrong_frames", t, "finetune", "kinetics150", "ikea_fa", 0.5)
    edited = json.loads((root / "wrong_frames" / "result.json").read_text())
    edited["hyper_parameters"]["data.num_frames"] = "eight"
    (root / "wrong_frames" / "result.json").write_text(json.dumps(edited))
    return root


def md_table(text: str, heading: str) -> list[dict]:
    """The markdown table under `## <heading>...` as a list of row dicts."""
    section = text.split(f"## {heading}", 1)[1]
    lines = [line for line in section.split("\n\n", 2)[1].splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


def row(rows: list[dict], model: str, pre: str, mode: str) -> dict:
    (found,) = [r for r in rows if (r["Model"], r["Pre-training"], r["Mode"]) == (model, pre, mode)]
    return found


@pytest.fixture(scope="module")
def report(runs) -> tuple[str, Path]:
    proc = run_cli("report", str(runs))
    out = runs / "report"
    text = (out / "report.md").read_text()
    assert "Table 1" in proc.stdout and "fig2.png, fig3.png, fig4.png" in proc.stdout
    return text, out


def test_table_1_cells_gaps_and_throughput(report):
    text, out = report
    rows = md_table(text, "Table 1")
    assert list(rows[0])[:9] == ["Model", "Pre-training", "Mode", "UCF101", "HMDB51", "Mini-SSV2", "Diving48",
                                 "IkeaFA", "UAV-Human"]
    k_ft = row(rows, "TSN", "Kinetics (kinetics150)", "FT")
    # top-1 % (seeds, validation videos; training / evaluation clips/s)
    assert k_ft["UCF101"] == "86.17 (1 seed, n=50; 123 / 457)"
    assert k_ft["HMDB51"] == "42.00 ± 2.00 (3 seeds, n=50; 120 / 480)"  # mean ± sample std over seeds
    assert k_ft["IkeaFA"] == "—"  # both of its runs have wrong-typed fields: skipped, named
    assert row(rows, "TSN", "Kinetics (kinetics150)", "LP")["Diving48"] == "32.00 ± 2.83 (2 seeds, n=50; 120 / 480)"
    assert row(rows, "TSN", "Synthetic (synthetic150)", "FT")["UCF101"].startswith("83.40 (")  # best of two
    assert row(rows, "TSN", "Synthetic (synthetic150)", "FT")["Diving48"].startswith("60.00 (")  # the sweep's choice
    assert row(rows, "TSN", "Scratch", "Scratch")["UCF101"].startswith("48.37 (")
    assert row(rows, "I3D", "Synthetic (synthetic150)", "FT")["Mini-SSV2"].startswith("50.72 (")
    assert row(rows, "I3D", "Kinetics (kinetics150)", "LP")["UCF101"] == "—"  # no Kinetics I3D run at all: still a row
    assert [r["Mode"] for r in rows if r["Model"] == "TSN"] == ["FT", "LP", "FT", "LP", "Scratch"]
    cells = [v for r in rows for k, v in r.items() if k not in ("Model", "Pre-training", "Mode")]
    assert "—" in cells and not any(c.startswith(("0.0", "0.00")) for c in cells)
    assert "86.10" not in "".join(cells) and "71.00" not in "".join(cells)  # 16-frame and 30-class runs elsewhere
    assert "Throughput measured on: Test CPU 9000, 2 cores, 8.0 GiB, GPUs: none; torch 2.13.0" in text
    # Which split chose the epoch and the cell, and which split the number is measured on.
    assert "Measured on: `shards/diving48/val`, `shards/hmdb51/val`" in text and "optimistic" in text
    assert "cells are single-seed" in text

    # The CSV holds the same cells, missing ones empty (never 0).
    records = list(csv.DictReader(open(out / "table1.csv")))
    by = {(r["model"], r["pretraining"], r["mode"], r["dataset"]): r for r in records}
    assert len(records) == len(rows) * 6  # every row x the paper's six datasets
    assert by[("tsn_r50", "kinetics150", "FT", "ucf101")]["top1"] == "86.17"
    assert by[("tsn_r50", "kinetics150", "FT", "ucf101")]["train_clips_per_s"] == "123.4"
    assert by[("tsn_r50", "kinetics150", "FT", "hmdb51")]["top1"] == "42.00"
    hmdb = by[("tsn_r50", "kinetics150", "FT", "hmdb51")]
    assert (hmdb["top1_std"], hmdb["seeds"], hmdb["val_clips"]) == ("2.00", "0 1 2", "50")
    assert hmdb["measured_on"] == hmdb["epoch_chosen_on"] == "shards/hmdb51/val"
    assert "best mean top-1 on val of 2 configurations" in hmdb["cell_chosen_by"]
    assert "sweep tsn_r50_8x1_synthetic150_ft-diving48" in by[("tsn_r50", "synthetic150", "FT", "diving48")]["cell_chosen_by"]
    assert by[("tsn_r50", "synthetic150", "LP", "ucf101")]["cell_chosen_by"] == "the only configuration run"
    assert by[("tsn_r50", "kinetics150", "FT", "ikea_fa")]["top1"] == ""
    for r in rows:
        for d, title in (("ucf101", "UCF101"), ("diving48", "Diving48"), ("hmdb51", "HMDB51")):
            pre = {"Scratch": "none"}.get(r["Mode"], r["Pre-training"].split("(")[-1].rstrip(")").lower())
            rec = by[({"TSN": "tsn_r50", "I3D": "i3d_r50"}[r["Model"]], pre, r["Mode"], d)]
            assert (rec["top1"] or "—") == r[title].split(" ")[0]


def test_tables_2_to_5(report):
    text, out = report
    bias = md_table(text, "Table 2")
    assert list(bias[0])[1:] == ["kinetics150", "UCF101", "HMDB51", "IkeaFA"]
    assert bias[0]["IkeaFA"] == "0.00" and bias[1]["IkeaFA"] == "—"  # M = 0: no bias defined
    assert bias[0]["UCF101"] == "65.32" and bias[1]["HMDB51"] == "4.30"
    assert {r["dataset"]: r["B"] for r in csv.DictReader(open(out / "table2.csv"))}["kinetics150"] == "6.07"
    t3 = md_table(text, "Table 3")
    assert row(t3, "TimeSformer", "Kinetics (kinetics150)", "FT")["UCF101"].startswith("92.09 (")
    t4 = md_table(text, "Table 4")
    assert row(t4, "TimeSformer", "MiT (mit150)", "LP")["HMDB51"].startswith("52.71 (")
    assert row(t4, "TimeSformer", "Synthetic", "FT")["UCF101"] == "—"
    t5 = md_table(text, "Table 5")
    assert row(t5, "TSN", "Synthetic (synthetic150)", "FT")["UCF101"].startswith("86.10 (")
    assert [r["Mode"] for r in t5] == ["FT", "FT"]


def test_figures_and_skips(report):
    text, out = report
    for name in ("fig2.png", "fig3.png", "fig4.png"):
        with Image.open(out / name) as im:
            im.verify()
            assert im.format == "PNG"
        assert f"]({name})" in text
    assert "broken/result.json: not readable JSON" in text
    assert "wrong_type/result.json: best_top1: expected a finite number, got str '0.9'" in text
    assert "wrong_frames/result.json: hyper_parameters.data.num_frames: expected an integer" in text
    assert "k_ft_hmdb_lr_other/result.json: a better configuration of the same cell" in text
    assert "s_ft_ucf_worse/result.json: a better run" in text
    assert "lr0.0001/result.json: not the chosen cell" in text


def test_report_of_an_empty_folder_fails_cleanly(tmp_path):
    proc = run_cli("report", str(tmp_path), check=False)
    assert proc.returncode == 2 and "no result.json" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "report").exists()


def test_throughput_table_from_a_shapes_record(runs, tmp_path):
    cell = {"classes": 101, "train_clips_per_s": 0.1735, "linear_probe_train_clips_per_s": 0.7875,
            "eval_videos_per_s": 0.0523}
    shapes = {"machine": MACHINE, "params": {"batch_size": 2},
              "throughput": {"i3d_r50_8x8": {"ucf101": cell, "pretrain": dict(cell, classes=150)},
                             "tsn_r50_8x1": {"ucf101": dict(cell, train_clips_per_s=0.42)}}}
    record = tmp_path / "shapes.json"
    record.write_text(json.dumps(shapes))
    out = tmp_path / "report"
    run_cli("report", str(runs), "--out", str(out), "--throughput", str(record))
    text = (out / "report.md").read_text()
    section = text.split("## Throughput per model x dataset")[1]
    assert "| i3d_r50_8x8 | FT train clips/s | 0.173 | 0.173 |" in section  # pretrain, then UCF101
    assert "| tsn_r50_8x1 | FT train clips/s | — | 0.42 |" in section  # no pretrain figure: missing, not 0
    assert "Test CPU 9000" in section
    rows = list(csv.DictReader((out / "throughput.csv").open()))
    assert {r["shape"] for r in rows} == {"i3d_r50_8x8", "tsn_r50_8x1"} and len(rows) == 6
    # a file that is not a shapes record is named, not silently dropped
    bad = tmp_path / "other.json"
    bad.write_text("{}")
    run_cli("report", str(runs), "--out", str(tmp_path / "r2"), "--throughput", str(bad))
    assert f"{bad}: no 'throughput'" in (tmp_path / "r2" / "report.md").read_text()
    missing = run_cli("report", str(runs), "--throughput", str(tmp_path / "none.json"), check=False)
    assert missing.returncode == 2 and "none.json: no such file" in missing.stderr


def _legend_matches(ax) -> None:
    """Every legend entry is drawn with the colour, line style and marker of the line it names."""
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    legend = ax.get_legend()
    entries = dict(zip((t.get_text() for t in legend.get_texts()), legend.legend_handles))
    assert set(entries) == set(lines)
    for label, handle in entries.items():
        line = lines[label]
        assert (handle.get_color(), handle.get_linestyle(), handle.get_marker()) == (
            line.get_color(), line.get_linestyle(), line.get_marker()), label


def test_figures_join_no_datasets_and_legends_match_the_lines():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synapt_fast.analysis import figures

    fig2 = [{"dataset": d, "title": d, "model": m, "B": b, "ratio": r, "real": "Kinetics"}
            for m in ("tsn_r50", "i3d_r50") for d, b, r in (("ucf101", 6.0, 2.4), ("hmdb51", 4.3, 2.2),
                                                            ("diving48", 2.4, 0.9))]
    fig = figures._bias_figure(plt, fig2)
    ax = fig.axes[0]
    drawn = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert len(drawn) == 2 and all(line.get_linestyle() == "None" for line in drawn)  # markers, no joins
    assert {line.get_marker() for line in drawn} == {"o", "s"}
    _legend_matches(ax)
    plt.close(fig)

    fig3 = [{"dataset": d, "title": d, "rank": i, "model": m, "family": f, "mode": mode, "x": x, "top1": 0.5}
            for i, d in enumerate(("ucf101", "hmdb51")) for m in ("tsn_r50", "i3d_r50")
            for f in ("Kinetics", "Synthetic") for mode in ("FT", "LP") for x in (30, 90, 150)]
    fig = figures._sweep_figure(plt, "fig3.png", fig3)
    assert [a.get_title() for a in fig.axes] == ["ucf101", "hmdb51"]  # one panel per dataset, none joined
    for ax in fig.axes:
        drawn = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
        assert len(drawn) == 8 and all(list(line.get_xdata()) == [30, 90, 150] for line in drawn)
        _legend_matches(ax)
    plt.close(fig)
