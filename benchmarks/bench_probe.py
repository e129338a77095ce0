"""A linear-probe sweep with cached features against the same sweep run online.

The paper's downstream grid is 18 cells (lr x batch x weight decay); every linear-probe cell runs a
frozen backbone over the same clips. With `model.probe = "cached"` the backbone runs once per
epoch's views for each batch size, and each further cell trains only the head. This runs the cells
of one batch size of that grid (3 lr x wd {1e-4, 5e-4, 1e-3}: 9 cells, `GRID`; the other
batch size repeats the same cost structure) both ways, cells alternating between the two so load
from other jobs hits both, on real shards from the synthetic generator, with a backbone
pre-trained here for one epoch. Reported: seconds per sweep, the ratio, top-1 per cell both ways.

    python benchmarks/bench_probe.py            # 9 cells x 5 epochs, 2 repeats
    python benchmarks/bench_probe.py --quick    # 2 cells x 2 epochs, 1 repeat (seconds)
    synapt-fast bench probe [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchio import bar_chart, save_record

RESULTS = Path(__file__).resolve().parent / "results"
# The paper's downstream grid shape; learning rates x100, since a tiny backbone probed for 5 epochs
# learns nothing at 1e-4 (the paper's values are for full-size models and 50 epochs).
GRID = [(lr, wd) for lr in (0.01, 0.05, 0.1) for wd in (1e-4, 5e-4, 1e-3)]


def _recipe(root: Path, name: str, *, train: Path, val: Path, epochs: int, batch: int, mode: str,
            init: str = "", probe: str = "online", lr: float = 0.01, wd: float = 1e-4) -> Path:
    from synapt_fast.engine.recipe import dumps, from_dict

    r = from_dict({
        "data": {"train": str(train), "val": str(val), "batch_size": batch, "sampling": "segments",
                 "num_frames": 8, "image_size": 48, "workers": 2, "shuffle_buffer": 32, "train_crop": "multiscale"},
        "model": {"name": "tsn_tiny", "mode": mode, "init": init, "probe": probe},
        "optim": {"lr": lr, "epochs": epochs, "weight_decay": wd},
        "output": {"dir": str(root / "runs"), "name": name, "log_every": 20, "checkpoint_minutes": 0.0},
    })
    path = root / f"{name}.toml"
    path.write_text(dumps(r))
    return path


def _train(recipe: Path) -> float:
    from synapt_fast.engine.main import main

    t0 = time.perf_counter()
    if main(["--recipe", str(recipe)]) != 0:
        raise RuntimeError(f"training {recipe} failed")
    return time.perf_counter() - t0


def run(*, quick: bool = False, epochs: int = 5, repeats: int = 2, out_dir: Path = RESULTS, log=print) -> dict:
    import torch

    from synapt_fast.engine.machine import machine_info
    from synapt_fast.synth import build

    grid = GRID[:2] if quick else GRID
    epochs, repeats = (2, 1) if quick else (epochs, repeats)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    record = {"machine": machine_info(), "quick": quick, "epochs": epochs, "repeats": repeats, "cells": len(grid),
              "load_average_before": os.getloadavg()[0], "runs": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            jobs = build.plan(classes=4, clips_per_class=6 if quick else 24, val_clips_per_class=2 if quick else 6,
                              downstream_classes=3, downstream_clips_per_class=6 if quick else 24,
                              downstream_val_clips_per_class=2 if quick else 8, biases=[0.0], frames=32,
                              size=64, fps=30.0, seed=0, name="probe")
            build.write(jobs, root / "shards", workers=2)
            sets = root / "shards" / "probe"
            pre = _recipe(root, "pretrain", train=sets / "train", val=sets / "val", epochs=1, batch=8,
                          mode="pretrain")
            _train(pre)
            init = str(root / "runs" / "pretrain" / "model_best.pth.tar")
            down = next(p for p in (root / "shards").iterdir() if p.name.startswith("down_"))
            for rep in range(repeats):
                cache = root / "runs" / "feature_cache"
                if cache.exists():  # every repeat pays for its own feature pass
                    import shutil

                    shutil.rmtree(cache)
                times = {"online": [], "cached": []}
                top1 = {"online": [], "cached": []}
                for i, (lr, wd) in enumerate(grid):
                    order = ("online", "cached") if i % 2 == 0 else ("cached", "online")
                    for probe in order:
                        name = f"r{rep}-{probe}-{i}"
                        recipe = _recipe(root, name, train=down / "train", val=down / "val", epochs=epochs,
                                         batch=8, mode="linear_probe", init=init, probe=probe, lr=lr, wd=wd)
                        times[probe].append(_train(recipe))
                        res = json.loads((root / "runs" / name / "result.json").read_text())
                        top1[probe].append(res["top1"])
                        log(f"repeat {rep + 1}, cell {i + 1}/{len(grid)} lr {lr:g} wd {wd:g}, {probe}: "
                            f"{times[probe][-1]:.1f} s, top-1 {res['top1']:.3f}")
                record["runs"].append({"seconds": times, "top1": top1})
    finally:
        torch.set_num_threads(threads)
    record["load_average_after"] = os.getloadavg()[0]
    sweep = {p: statistics.median(sum(r["seconds"][p]) for r in record["runs"]) for p in ("online", "cached")}
    record["sweep_seconds"] = sweep
    record["speedup"] = sweep["online"] / sweep["cached"]
    last = record["runs"][-1]
    record["max_top1_difference"] = max(abs(a - b) for a, b in zip(last["top1"]["online"], last["top1"]["cached"]))
    save_record(out_dir, "probe", record, plot, markdown)
    log(f"sweep: online {sweep['online']:.1f} s, cached {sweep['cached']:.1f} s ({record['speedup']:.2f}x); "
        f"largest top-1 difference between the two per cell {record['max_top1_difference']:.3f}")
    return record


def plot(record: dict, path: Path) -> str:
    last = record["runs"][-1]["seconds"]
    groups = {f"cell {i + 1}": {"online s": last["online"][i], "cached s": last["cached"][i]}
              for i in range(record["cells"])}
    return bar_chart(path, "Linear-probe sweep: seconds per cell (cached: the first cell pays the feature pass)",
                     "seconds", groups)


def markdown(record: dict) -> str:
    m = record["machine"]
    last = record["runs"][-1]
    lines = ["# Linear probing: cached features against online", "", f"![seconds per cell]({record['plot']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores (shared with other jobs: load average "
             f"{record['load_average_before']:.1f} before, {record['load_average_after']:.1f} after), torch "
             f"{m['versions'].get('torch')}, DALI {m['versions'].get('nvidia-dali-cuda120')}; 1 process, CPU, 1 torch "
             f"thread; {'quick run' if record['quick'] else 'full run'}.", "",
             f"tsn_tiny (8 segments, 48²) pre-trained here for one epoch, linear-probed on a 3-class synthetic "
             f"downstream task for {record['epochs']} epochs per cell, batch 8, {record['cells']} cells "
             f"(lr x weight decay: the paper's downstream grid at one batch size, learning rates x100 for a tiny model), cells alternating between the "
             f"two modes. Sweep seconds are the median over {record['repeats']} repeat(s), each with an empty cache.",
             "", "| | online | cached | online / cached |", "| --- | ---: | ---: | ---: |",
             f"| sweep seconds | {record['sweep_seconds']['online']:.1f} | {record['sweep_seconds']['cached']:.1f} | "
             f"{record['speedup']:.2f}x |", "", "| cell | lr | wd | online s | cached s | online top-1 | cached top-1 |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for i, (lr, wd) in enumerate(GRID[:record["cells"]]):
        lines.append(f"| {i + 1} | {lr:g} | {wd:g} | {last['seconds']['online'][i]:.1f} | "
                     f"{last['seconds']['cached'][i]:.1f} | {last['top1']['online'][i]:.3f} | "
                     f"{last['top1']['cached'][i]:.3f} |")
    lines += ["", f"Largest top-1 difference in a cell: {record['max_top1_difference']:.3f}. The two differ only in "
              "where dropout (0.5) falls: per frame before averaging online, on the averaged feature cached "
              "(`synapt_fast/engine/probe_cache.py`); with dropout 0 they train the same weights "
              "(`tests/engine/test_probe_cache.py`)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    a = p.parse_args()
    run(quick=a.quick, epochs=a.epochs, repeats=a.repeats, out_dir=a.out_dir)


if __name__ == "__main__":
    main()
