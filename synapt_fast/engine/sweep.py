"""Hyper-parameter sweeps: one recipe expanded over a grid, run cell by cell, the best cell chosen.

    cells = expand(Path("recipes/tsn_r50_8x1_synthetic150_pretrain.toml"), grid_axes(preset="pretrain"), nproc=8)
    outcome = run_sweep(cells, nproc=8)        # or emit(cells, Path("jobs"), nproc=8): a Slurm job array

The paper's grids (section 4.1) give the batch size for the whole job (global); a recipe's
`data.batch_size` is per process, so the `global_batch` axis becomes `data.batch_size = global /
nproc`. Every other axis is a recipe key (`optim.lr`), checked like a command-line override.

Each cell is an ordinary training run named `<recipe name>/<tag>` (`.../lr0.01_bs64_wd0.0001`)
under the recipe's `output.dir`; the sweep folder `<output.dir>/<recipe name>/` gets `sweep.json`,
`sweep.md` and `logs/<tag>.log`. A cell whose `result.json` matches its resolved recipe is not run
again; one stopped part-way continues from its checkpoint (`--resume`); one that fails is recorded
with its exit status and log, and the sweep goes on.

The choice: the highest `best_top1` (the best validation top-1 over the run's evaluations, the
epoch `model_best.pth.tar` holds, which downstream recipes start from); ties go to the higher final
`top1`, then to the earlier cell in grid order. There is no separate test split: like the paper,
the choice is made on the same validation split that is reported.

`seeds=[0, 1, 2]` runs every grid point once per seed (`seed=` override, tag suffix `_seed1`);
the choice is then the grid point with the highest mean `best_top1` over its seeds, among the
points whose every seed finished (a mean over fewer seeds is not comparable), and `sweep.json`
records all of the chosen point's runs with their mean and sample standard deviation.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from synapt_fast.atomic import write_atomic

from .checkpoint import LAST
from .recipe import RecipeError, Recipe, _resolve_key, flatten, load_recipe
from synapt_fast.analysis.results import ResultError, read_result

GLOBAL_BATCH = "global_batch"  # the paper's batch: clips per optimiser step over all processes
PRESETS = {  # paper section 4.1
    "pretrain": {"optim.lr": [0.01, 0.02], GLOBAL_BATCH: [64, 128], "optim.weight_decay": [1e-4, 5e-4, 1e-3]},
    "downstream": {"optim.lr": [1e-4, 5e-4, 1e-3], GLOBAL_BATCH: [32, 64],
                   "optim.weight_decay": [1e-4, 5e-4, 1e-3]},
}
SHORT = {"optim.lr": "lr", GLOBAL_BATCH: "bs", "optim.weight_decay": "wd", "data.batch_size": "bpp"}
SWEEP_JSON, SWEEP_MD = "sweep.json", "sweep.md"


@dataclass
class Cell:
    index: int
    tag: str  # e.g. lr0.01_bs64_wd0.0001
    values: dict  # axis -> value, as in the grid (global batch, not per process)
    overrides: list[str]  # the recipe overrides that make this cell (fixed ones included)
    recipe_path: str
    recipe: Recipe = field(repr=False)
    seed: int | None = None  # set when the sweep runs several seeds per grid point

    @property
    def run_dir(self) -> Path:
        return self.recipe.run_dir()


@dataclass
class CellOutcome:
    index: int
    tag: str
    run: str  # run folder
    values: dict
    status: str  # finished | skipped (finished earlier) | failed | stale (a different run's result)
    exit_code: int | None = None
    log: str | None = None
    resumed: bool = False
    seconds: float = 0.0
    message: str = ""
    best_top1: float | None = None
    top1: float | None = None
    top5: float | None = None
    train_clips_per_s: float | None = None
    eval_clips_per_s: float | None = None
    seed: int | None = None


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """`["optim.lr=0.1,0.2", ...]` -> {"optim.lr": ["0.1", "0.2"]}; keys resolved to `section.key`."""
    grid: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise RecipeError(f"--grid {item!r}: expected key=v1,v2,...")
        key, text = (s.strip() for s in item.split("=", 1))
        if key != GLOBAL_BATCH:
            section, name = _resolve_key(key)
            key = f"{section}.{name}" if section else name
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not values:
            raise RecipeError(f"--grid {key}: no values")
        if key in grid:
            raise RecipeError(f"--grid {key}: given twice")
        if len(set(values)) != len(values):
            raise RecipeError(f"--grid {key}: repeated value in {text!r}")
        grid[key] = values
    return grid


def grid_axes(preset: str | None = None, grid: list[str] = ()) -> dict[str, list]:
    """A preset's axes plus any `--grid` axes (an axis may not be given twice)."""
    axes: dict[str, list] = {}
    if preset:
        if preset not in PRESETS:
            raise RecipeError(f"--preset {preset!r}: unknown (known: {', '.join(PRESETS)})")
        axes.update(PRESETS[preset])
    for key, values in parse_grid(list(grid)).items():
        if key in axes:
            raise RecipeError(f"--grid {key}: already an axis of preset {preset!r}")
        axes[key] = values
    if not axes:
        raise RecipeError("no grid: give --preset pretrain|downstream and/or --grid section.key=v1,v2")
    if GLOBAL_BATCH in axes and "data.batch_size" in axes:
        raise RecipeError("--grid: global_batch and data.batch_size both set the batch; keep one")
    return axes


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def cell_tag(values: dict) -> str:
    """A deterministic, filesystem-safe folder name for one grid point."""
    parts = [f"{SHORT.get(k, k.rsplit('.', 1)[-1])}{_format(v)}" for k, v in values.items()]
    return re.sub(r"[^A-Za-z0-9._+-]", "-", "_".join(parts))


def expand(recipe_path: Path, axes: dict[str, list], *, nproc: int = 1, overrides: list[str] = (),
           seeds: list[int] = ()) -> list[Cell]:
    """Every grid point (times every seed, when `seeds` is given) as a checked recipe; axes vary
    in order, the last fastest, and the seeds of one grid point are adjacent."""
    base = load_recipe(recipe_path, list(overrides))  # checks the fixed overrides on their own
    fixed_keys = {_resolve_key(o.split("=", 1)[0].strip()) for o in overrides if "=" in o}
    if seeds and ("seed" in axes or (None, "seed") in fixed_keys):
        raise RecipeError("--seeds: seed is also a grid axis or a fixed override; keep one")
    if len(set(seeds)) != len(list(seeds)):
        raise RecipeError(f"--seeds: repeated seed in {list(seeds)}")
    for key in axes:
        fixed = ("data", "batch_size") if key == GLOBAL_BATCH else _resolve_key(key)
        if fixed in fixed_keys:
            raise RecipeError(f"{key}: both a grid axis and a fixed override")
    if nproc < 1:
        raise RecipeError(f"--nproc must be >= 1, got {nproc}")
    sweep_name = base.output.name
    cells, tags = [], set()
    for index, combo in enumerate(itertools.product(*axes.values())):
        raw = dict(zip(axes, combo))
        cell_overrides = list(overrides)
        for key, value in raw.items():
            if key == GLOBAL_BATCH:
                total = int(value)
                if total % nproc:
                    raise RecipeError(f"global_batch {total} is not divisible by --nproc {nproc} "
                                      f"(data.batch_size is per process)")
                cell_overrides.append(f"data.batch_size={total // nproc}")
            else:
                cell_overrides.append(f"{key}={_format(value)}")
        probe = load_recipe(recipe_path, cell_overrides)  # the typed values, for the tag
        flat = flatten(probe)
        values = {k: (int(v) if k == GLOBAL_BATCH else flat[k]) for k, v in raw.items()}
        tag = cell_tag(values)
        if tag in tags:
            raise RecipeError(f"two grid points share the run name {tag!r}; make the values distinct")
        tags.add(tag)
        for seed in seeds or [None]:
            run_overrides = cell_overrides + ([f"seed={seed}"] if seed is not None else [])
            run_tag = tag if seed is None else f"{tag}_seed{seed}"
            run_overrides.append(f"output.name={sweep_name}/{run_tag}")
            recipe = load_recipe(recipe_path, run_overrides)
            cells.append(Cell(len(cells), run_tag, values, run_overrides, str(recipe_path), recipe, seed))
    return cells


def sweep_dir(cells: list[Cell]) -> Path:
    return cells[0].run_dir.parent


def train_command(cell: Cell, nproc: int, *, python: str = sys.executable, resume: bool = True) -> list[str]:
    """The training command of one cell: plain python for one process, torchrun for several.
    `--resume` continues from a checkpoint when the run folder holds one and starts afresh when not."""
    launcher = [python, "-m", "synapt_fast.train"] if nproc == 1 else [
        python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "-m", "synapt_fast.train"]
    return [*launcher, "--recipe", cell.recipe_path, *(["--resume"] if resume else []), *cell.overrides]


_IGNORED = ("output.",)  # where a run is written and how often it logs do not change its result


def _mismatch(cell: Cell, result: dict, nproc: int) -> list[str]:
    """Keys where a finished run's result differs from the cell (empty: it is this cell's result)."""
    want = flatten(cell.recipe)
    have = result.get("hyper_parameters", {})
    diff = [k for k in sorted(set(want) | set(have)) if not k.startswith(_IGNORED) and want.get(k) != have.get(k)]
    if result.get("world_size", nproc) != nproc:
        diff.append(f"world_size ({result.get('world_size')} processes, now {nproc})")
    return diff


def _with_metrics(outcome: CellOutcome, result: dict) -> CellOutcome:
    for key in ("best_top1", "top1", "top5", "train_clips_per_s", "eval_clips_per_s"):
        setattr(outcome, key, result.get(key))
    return outcome


def _base(cell: Cell) -> dict:
    return dict(index=cell.index, tag=cell.tag, run=str(cell.run_dir), values=cell.values, seed=cell.seed)


def finished_outcome(cell: Cell, nproc: int) -> CellOutcome | None:
    """The outcome of a cell whose run folder already holds a result.json (None: it has none)."""
    base = _base(cell)
    result_path = cell.run_dir / "result.json"
    if not result_path.exists():
        return None
    try:
        result = read_result(result_path)
    except ResultError as e:  # the file and the key, never a traceback from the table below
        return CellOutcome(**base, status="failed", message=str(e))
    diff = _mismatch(cell, result, nproc)
    if diff:
        return CellOutcome(**base, status="stale", message=f"{result_path} is another run's result (differs in "
                           f"{', '.join(diff[:5])}); move the run folder away to run this cell")
    return _with_metrics(CellOutcome(**base, status="skipped", message="finished earlier"), result)


def run_cell(cell: Cell, nproc: int, log_dir: Path, on_start=None) -> CellOutcome:
    """Run (or skip, or resume) one cell; never raises for a failing training run."""
    done = finished_outcome(cell, nproc)
    if done is not None:
        return done
    base, result_path = _base(cell), cell.run_dir / "result.json"
    resumed = (cell.run_dir / LAST).exists()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{cell.tag}.log"
    if on_start:
        on_start(cell, resumed)
    env = dict(os.environ)
    if nproc > 1:
        env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default too, without its warning
    t0 = time.perf_counter()
    with open(log, "w") as f:
        code = subprocess.run(train_command(cell, nproc), stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    seconds = time.perf_counter() - t0
    result, problem = None, ""
    if code == 0:
        try:
            result = read_result(result_path)
        except ResultError as e:
            problem = str(e)
    if result is None:
        message = f"exit {code}; see {log}" if code else f"exit 0 but {problem}; see {log}"
        return CellOutcome(**base, status="failed", exit_code=code, log=str(log), resumed=resumed, seconds=seconds,
                           message=message)
    return _with_metrics(CellOutcome(**base, status="finished", exit_code=0, log=str(log), resumed=resumed,
                                     seconds=seconds), result)


def _score(o: CellOutcome) -> float:
    return o.best_top1 if o.best_top1 is not None and o.best_top1 >= 0 else o.top1


def _done(o: CellOutcome) -> bool:
    return o.status in ("finished", "skipped") and (o.best_top1 is not None or o.top1 is not None)


def choose_point(outcomes: list[CellOutcome]) -> list[CellOutcome]:
    """The chosen grid point's runs (one per seed): the highest mean best_top1 (final top1 where a
    result lacks it) among points whose every run finished, then higher mean final top1, then grid
    order. Empty when no point finished."""
    points: dict[str, list[CellOutcome]] = {}
    for o in outcomes:
        points.setdefault(json.dumps(o.values, sort_keys=True, default=str), []).append(o)
    complete = [runs for runs in points.values() if all(_done(o) for o in runs)]
    if not complete:
        return []

    def key(runs: list[CellOutcome]):
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        return (-mean([_score(o) for o in runs]), -mean([o.top1 or 0.0 for o in runs]), runs[0].index)

    return min(complete, key=key)


def choose(outcomes: list[CellOutcome]) -> CellOutcome | None:
    """The first run of the chosen grid point (see `choose_point`), or None."""
    runs = choose_point(outcomes)
    return runs[0] if runs else None


def spread(runs: list[CellOutcome]) -> tuple[float | None, float | None]:
    """(mean, sample standard deviation) of the runs' best_top1; the std is None for one run."""
    xs = [_score(o) for o in runs if _done(o)]
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    return mean, ((sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else None)


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def markdown(cells_axes: list[str], outcomes: list[CellOutcome], chosen: list[CellOutcome] | CellOutcome | None) -> str:
    chosen = chosen if isinstance(chosen, list) else [chosen] if chosen else []
    seeds = any(o.seed is not None for o in outcomes)
    head = ["#", *cells_axes, *(["seed"] if seeds else []), "status", "best top-1 %", "final top-1 %",
            "train clips/s", "eval clips/s", ""]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for o in outcomes:
        rate = lambda x: "—" if x is None else f"{x:.1f}"  # noqa: E731
        row = [str(o.index), *(_format(o.values[a]) for a in cells_axes), *([str(o.seed)] if seeds else []), o.status,
               _pct(o.best_top1), _pct(o.top1), rate(o.train_clips_per_s), rate(o.eval_clips_per_s),
               "**chosen**" if any(o is c for c in chosen) else ""]
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    if len(chosen) > 1:
        mean, std = spread(chosen)
        text += (f"\nChosen point: mean best top-1 {_pct(mean)} ± {_pct(std)} % (sample std) over seeds "
                 f"{', '.join(str(o.seed) for o in chosen)}, chosen on the validation split it is measured on.\n")
    return text


@dataclass
class SweepOutcome:
    dir: Path
    outcomes: list[CellOutcome]
    chosen: CellOutcome | None
    markdown: str

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status in ("failed", "stale", "missing")]


def run_sweep(cells: list[Cell], *, nproc: int = 1, on_start=None, on_done=None, run: bool = True) -> SweepOutcome:
    """Run every cell in order (skipping finished ones), then write sweep.json and sweep.md.
    `run=False` collects what the cells' run folders hold (cells run elsewhere, e.g. a Slurm job
    array): a cell without a result is recorded as missing."""
    out = sweep_dir(cells)
    outcomes = []
    for cell in cells:
        if run:
            outcome = run_cell(cell, nproc, out / "logs", on_start)
        else:
            outcome = finished_outcome(cell, nproc) or CellOutcome(
                **_base(cell), status="missing", message=f"no {cell.run_dir / 'result.json'} yet")
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)
    point = choose_point(outcomes)
    chosen = point[0] if point else None
    axes = list(cells[0].values)
    table = markdown(axes, outcomes, point)
    seeds = [c.seed for c in cells if c.seed is not None]
    mean, std = spread(point)
    record = {
        "recipe": cells[0].recipe_path, "name": out.name, "nproc": nproc, "axes": axes,
        "seeds": sorted(set(seeds)) or None,
        "selection": ("highest mean best_top1 over seeds (validation; points with every seed finished), then mean "
                      "final top1, then grid order" if seeds else
                      "highest best_top1 (validation), then final top1, then grid order"),
        "chosen": None if chosen is None else {
            "index": chosen.index, "tag": chosen.tag, "run": chosen.run, "runs": [o.run for o in point],
            "seeds": [o.seed for o in point] if seeds else None, "mean_best_top1": mean, "std_best_top1": std},
        "cells": [asdict(o) for o in outcomes],
    }
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / SWEEP_JSON, json.dumps(record, indent=1) + "\n", durable=False)
    write_atomic(out / SWEEP_MD, f"# Sweep {out.name}\n\n{table}", durable=False)
    return SweepOutcome(out, outcomes, chosen, table)


def node_command(cell: Cell, nproc: int, nodes: int) -> str:
    """One cell over `nodes` nodes: one `synapt-fast train` agent per node (srun), meeting at the
    job's first node; $HEAD, $PORT and $SLURM_JOB_ID are the job script's."""
    train = ["synapt-fast", "train", cell.recipe_path, "--resume", "--nproc", str(nproc), "--nnodes", str(nodes)]
    return " ".join([f"srun --nodes={nodes} --ntasks-per-node=1", shlex.join(train),
                     '--rdzv-endpoint "$HEAD:$PORT" --rdzv-id "$SLURM_JOB_ID"', shlex.join(cell.overrides)])


def emit(cells: list[Cell], job_dir: Path, *, nproc: int = 1, nodes: int = 1, python: str = "python",
         collect: str = "") -> tuple[Path, Path]:
    """A Slurm job-array script (task i runs cell i on `nodes` nodes of `nproc` GPUs) and
    commands.txt (one command per line); runs nothing. Commands say `--resume`, and a task stopped
    by SIGTERM (exit 143: time limit, preemption) requeues itself and continues from its
    checkpoint. `collect` is the command that gathers the results once the array is done."""
    job_dir.mkdir(parents=True, exist_ok=True)
    if nodes > 1:
        commands = [node_command(c, nproc, nodes) for c in cells]
    else:
        commands = [shlex.join(train_command(c, nproc, python=python)) for c in cells]
    cwd = shlex.quote(os.getcwd())  # recipe and data paths in the commands are relative to it
    script = "\n".join([
        "#!/bin/bash",
        f"#SBATCH --job-name={shlex.quote('sweep-' + sweep_dir(cells).name)}",
        f"#SBATCH --array=0-{len(cells) - 1}",
        f"#SBATCH --nodes={nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={nproc}",
        "#SBATCH --requeue",
        "#SBATCH --signal=TERM@300  # time to save a checkpoint before the time limit",
        f"#SBATCH --output={shlex.quote(str(job_dir.resolve()))}/%x_%a.log",
        "# One sweep cell per array task; the cells in order, as in commands.txt beside this script.",
        *([f"# When every task has finished: {collect}"] if collect else []),
        "set -uo pipefail",
        f"cd {cwd}",
        'HEAD=$(scontrol show hostnames "${SLURM_JOB_NODELIST:-localhost}" | head -n 1)',
        "PORT=$((20000 + ${SLURM_JOB_ID:-0} % 20000))",
        "COMMANDS=(",
        *(f"  {shlex.quote(c)}" for c in commands),
        ")",
        'eval "${COMMANDS[$SLURM_ARRAY_TASK_ID]}"',
        "code=$?",
        "if [ \"$code\" -eq 143 ]; then  # stopped and saved: run again from the checkpoint",
        '  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
        "fi",
        'exit "$code"',
        "",
    ])
    sbatch, listing = job_dir / "sweep.sbatch", job_dir / "commands.txt"
    write_atomic(sbatch, script, durable=False)
    sbatch.chmod(0o755)
    write_atomic(listing, "\n".join(commands) + "\n", durable=False)
    return sbatch, listing
