"""The README's main job on a fresh machine: the SynAPT protocol in miniature, offline.

1. Generate a small synthetic pre-training set and two downstream tasks with disjoint labels (low
   and high representation bias), pack them into shards, verify them and decode every clip with DALI.
2. Pre-train a tiny TSN on the synthetic set through `torchrun` (2 processes, gloo).
3. Fine-tune and linear-probe it on both downstream tasks, and train the scratch baseline.
4. Print the paper's Table 1 in miniature: top-1 and training clips/s per mode and task.

Every run is a committed recipe (`recipes/tsn_tiny_8x1_*`) run by `python -m synapt_fast.train`,
with the data and output paths pointed at this demo's folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from synapt_fast.resources import recipes_dir


@dataclass(frozen=True)
class DemoSize:
    classes: int = 8
    clips_per_class: int = 120
    val_clips_per_class: int = 16
    downstream_classes: int = 5
    downstream_clips_per_class: int = 40
    downstream_val_clips_per_class: int = 12
    frames: int = 32
    size: int = 64
    variation: float = 0.2  # narrower nuisance ranges: learnable from pixels in a minute on a CPU


def make_data(out: Path, size: DemoSize, workers: int, seed: int, console: Console) -> list[Path]:
    """Synthetic shard sets under `out`; returns their split folders."""
    from rich.progress import Progress

    from synapt_fast.synth import build

    jobs = build.plan(classes=size.classes, clips_per_class=size.clips_per_class,
                      val_clips_per_class=size.val_clips_per_class,
                      downstream_classes=size.downstream_classes,
                      downstream_clips_per_class=size.downstream_clips_per_class,
                      downstream_val_clips_per_class=size.downstream_val_clips_per_class,
                      biases=[0.0, 0.9], frames=size.frames, size=size.size, fps=30.0, seed=seed,
                      name="demo_synth", variation=size.variation)
    with Progress(console=console) as progress:
        bars = {(j.set_name, j.split): progress.add_task(f"{j.set_name}/{j.split}", total=len(j.source))
                for j in jobs}
        build.write(jobs, out, workers=workers,
                    on_progress=lambda j, done, total: progress.update(bars[(j.set_name, j.split)], completed=done))
    return [out / j.set_name / j.split for j in jobs]


RECIPES = recipes_dir()  # shipped with the package: the demo runs installed, from any folder
PRETRAIN = "tsn_tiny_8x1_demosynth_pretrain"
TASKS = {"down_b000": "low bias", "down_b090": "high bias"}
DEMO_RECIPES = {"FT": "tsn_tiny_8x1_demosynth_ft-{task}", "LP": "tsn_tiny_8x1_demosynth_lp-{task}",
         "scratch": "tsn_tiny_8x1_scratch-{task}"}


def train(recipe: str, data_root: Path, runs: Path, console: Console, *, nproc: int, train_set: str,
          init: Path | None = None, extra: tuple[str, ...] = ()) -> dict:
    """One recipe through torchrun, its data and output paths pointed at the demo's folders."""
    run_dir = runs / recipe
    shutil.rmtree(run_dir, ignore_errors=True)  # the demo starts its runs afresh
    overrides = [f"data.train={data_root / train_set / 'train'}", f"data.val={data_root / train_set / 'val'}",
                 f"output.dir={runs}", *extra]
    if init is not None:
        overrides.append(f"model.init={init}")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "synapt_fast.train", "--recipe", str(RECIPES / f"{recipe}.toml"), *overrides]
    env = dict(os.environ, OMP_NUM_THREADS="1")  # one torch thread per process on a shared CPU
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{recipe} failed (exit {proc.returncode}); command: {' '.join(cmd)}")
    return json.loads((run_dir / "result.json").read_text())


def table_1(results: dict[tuple[str, str], dict], pretrain: dict, chance: dict[str, float]) -> Table:
    table = Table(title="Table 1 in miniature: top-1 (val) and training clips/s, tiny TSN 8x48², 2 CPU processes")
    table.add_column("pre-training")
    for task, bias in TASKS.items():
        table.add_column(f"{task} ({bias})\ntop-1", justify="right")
        table.add_column("clips/s", justify="right")
    for mode in DEMO_RECIPES:
        source = "none (scratch)" if mode == "scratch" else f"{pretrain['dataset']} {mode}"
        row = [source]
        for task in TASKS:
            r = results[(mode, task)]
            row += [f"{r['top1']:.3f}", f"{r['train_clips_per_s']:.0f}"]
        table.add_row(*row)
    table.add_row("chance", *[x for task in TASKS for x in (f"{chance[task]:.3f}", "")])
    return table


def run(out: Path = Path("shards/demo"), workers: int = 2, seed: int = 0, size: DemoSize = DemoSize(),
        runs: Path = Path("runs/demo"), nproc: int = 2) -> int:
    console = Console()
    t0 = time.perf_counter()
    out, runs = Path(out), Path(runs)
    console.rule("1. synthetic videos -> shards")
    splits = make_data(out, size, workers, seed, console)

    console.rule("2. verify every shard and decode every clip with DALI")
    from synapt_fast.format.verify import verify_split

    table = Table("split", "classes", "clips", "frames", "MB", "codec", "verified + decoded")
    failed = False
    for d in splits:
        m, problems = verify_split(d, decode=True)
        failed |= bool(problems)
        for p in problems:
            console.print(f"[red]{p}[/red]", highlight=False)
        table.add_row(f"{m.set}/{m.split}", str(len(m.class_names)), str(m.num_samples), str(m.num_frames),
                      f"{sum(s.bytes for s in m.shards) / 1e6:.2f}", m.codec, "FAIL" if problems else "ok")
    console.print(table)
    if failed:
        return 1
    t_data = time.perf_counter() - t0

    console.rule(f"3. pre-train on demo_synth: torchrun, {nproc} processes")
    pretrain = train(PRETRAIN, out, runs, console, nproc=nproc, train_set="demo_synth")
    init = runs / PRETRAIN / "model_best.pth.tar"

    results = {}
    for task, bias in TASKS.items():
        for mode, name in DEMO_RECIPES.items():
            console.rule(f"4. {mode} on {task} ({bias})")
            results[(mode, task)] = train(name.format(task=task), out, runs, console, nproc=nproc, train_set=task,
                                          init=None if mode == "scratch" else init)

    console.rule("5. results")
    chance = {task: 1 / results[("FT", task)]["num_classes"] for task in TASKS}
    console.print(f"pre-training ({pretrain['dataset']}, {pretrain['num_classes']} classes): val top-1 "
                  f"{pretrain['top1']:.3f} (chance {1 / pretrain['num_classes']:.3f}), top-5 {pretrain['top5']:.3f}; "
                  f"{pretrain['train_clips_per_s']:.0f} training clips/s, {pretrain['eval_clips_per_s']:.0f} "
                  f"evaluation clips/s", highlight=False)
    console.print(table_1(results, pretrain, chance))
    summary = {"pretrain": pretrain, "transfer": {f"{m}/{t}": r for (m, t), r in results.items()},
               "data_seconds": t_data, "seconds": time.perf_counter() - t0}
    for r in [summary["pretrain"], *summary["transfer"].values()]:
        r.pop("machine", None)
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "demo_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s (data {t_data:.0f} s); shards under {out}/, "
                  f"runs under {runs}/ (recipe.toml, metrics.jsonl, checkpoints, confusion.json, result.json)",
                  highlight=False)
    return 0
