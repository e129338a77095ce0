"""Which finished runs fill a report's table cells, and what each cell is: seeds, spread, splits.

    skipped = []
    runs = find_runs(Path("runs"), skipped)   # one aggregated Run per table cell; `skipped` says why not others

A cell is (model, mode, pre-training source, downstream dataset, frame count). Runs of a cell whose
hyper-parameters differ only in `seed` are seeds of one configuration and are aggregated (mean and
sample standard deviation of top-1); a repeat with the same seed is not a seed, and the better one
stands. Inside a sweep folder only the sweep's chosen runs count; elsewhere the configuration with
the best mean wins. Each aggregated Run says how it was chosen (`chosen_by`), on which split it was
measured (`val_split`, the same split that chose its epoch), and how many validation videos that
number rests on (`val_clips`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .results import ResultError, read_result

MODEL_TITLES = {"tsn": "TSN", "i3d": "I3D", "r2plus1d": "R(2+1)D", "timesformer": "TimeSformer"}
PAPER_VARIANTS = ("r50", "b16")  # tsn_r50 is "TSN"; tsn_tiny is "TSN (tsn_tiny)"
FAMILY_TITLES = {"kinetics": "Kinetics", "synthetic": "Synthetic", "synth": "Synthetic", "mit": "MiT",
                 "scenic": "Scenic"}
MODE_TITLES = {"finetune": "FT", "linear_probe": "LP", "scratch": "Scratch"}
SOURCE_NAME = re.compile(r"^(?P<family>[a-z_]+?)(?P<classes>\d+)?(?:_s(?P<samples>\d+))?$")


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
    seed: int = 0
    val_clips: int | None = None  # validation videos the accuracy is measured on
    val_split: str = ""  # the split folder measured on (data.val), which also chose the epoch
    epoch_chosen: bool = True  # False: no best epoch recorded, the last epoch's top-1 is shown
    config: tuple = ()  # hyper-parameters other than seed and output: runs equal here are seeds
    # After aggregation over seeds (`find_runs`): every seed's run, the spread, how it was chosen.
    seeds: list[int] = field(default_factory=list)
    top1_std: float | None = None  # sample standard deviation over seeds; None for one seed
    paths: list[Path] = field(default_factory=list)
    chosen_by: str = ""

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
        """From a `read_result`-checked dict; a missing key is a KeyError, a bad hyper-parameter a ResultError."""
        best = r.get("best_top1")
        chosen = best is not None and best >= 0
        hp = r.get("hyper_parameters") or {}
        frames, seed = hp.get("data.num_frames", 8), hp.get("seed", 0)
        for key, value in (("data.num_frames", frames), ("seed", seed)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ResultError(f"{path}: hyper_parameters.{key}: expected an integer, got "
                                  f"{type(value).__name__} {value!r}")
        config = tuple(sorted((k, json.dumps(v)) for k, v in hp.items() if k != "seed" and not k.startswith("output.")))
        return cls(path, r["model"], r["mode"], Source.parse(str(r.get("pretrained_on") or "none")), r["dataset"],
                   frames, float(best if chosen else r["top1"]), r.get("train_clips_per_s"),
                   r.get("eval_clips_per_s"), r.get("machine") or {}, seed=seed, val_clips=r.get("eval_videos"),
                   val_split=str(hp.get("data.val") or r.get("val_set") or "?"), epoch_chosen=chosen, config=config)


def load_json(path: Path, skipped: list[str]):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        skipped.append(f"{path}: not readable JSON ({e})")
        return None


def _mean(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def aggregate(runs: list[Run], chosen_by: str) -> Run:
    """One configuration's seeds as one Run: mean top-1 and rates, sample std of top-1."""
    runs = sorted(runs, key=lambda r: (r.seed, str(r.path)))
    first = runs[0]
    mean = sum(r.top1 for r in runs) / len(runs)
    std = (sum((r.top1 - mean) ** 2 for r in runs) / (len(runs) - 1)) ** 0.5 if len(runs) > 1 else None
    clips = {r.val_clips for r in runs}
    return Run(first.path, first.model, first.mode, first.source, first.dataset, first.frames, mean,
               _mean([r.train_clips_per_s for r in runs]), _mean([r.eval_clips_per_s for r in runs]), first.machine,
               seed=first.seed, val_clips=first.val_clips if len(clips) == 1 else None, val_split=first.val_split,
               epoch_chosen=all(r.epoch_chosen for r in runs), config=first.config, seeds=[r.seed for r in runs],
               top1_std=std, paths=[r.path for r in runs], chosen_by=chosen_by)


def find_runs(root: Path, skipped: list[str], exclude: Path | None = None) -> list[Run]:
    """One aggregated Run per (model, mode, source, dataset, frames): a sweep's chosen
    hyper-parameters, else the configuration with the best mean over its seeds."""
    chosen_in: dict[Path, set[Path]] = {}  # sweep folder -> its chosen run folders (one per seed)
    for sweep_file in sorted(root.rglob("sweep.json")):
        rec = load_json(sweep_file, skipped)
        if isinstance(rec, dict):
            chosen = rec.get("chosen") if isinstance(rec.get("chosen"), dict) else {}
            runs = chosen.get("runs") if isinstance(chosen.get("runs"), list) else [chosen.get("run")]
            chosen_in[sweep_file.parent.resolve()] = {Path(r).resolve() for r in runs if isinstance(r, str) and r}
    groups: dict[tuple, list[Run]] = {}
    in_sweep: dict[Path, Path] = {}  # result.json -> its sweep folder
    for path in sorted(root.rglob("result.json")):
        if exclude is not None and exclude.resolve() in path.resolve().parents:
            continue
        run_dir = path.parent.resolve()
        sweep = next((d for d in run_dir.parents if d in chosen_in), None)
        if sweep is not None and run_dir not in chosen_in[sweep]:
            skipped.append(f"{path}: not the chosen cell of the sweep in {path.parents[len(run_dir.parents) - len(sweep.parents)]}")
            continue
        try:
            run = Run.from_result(path, read_result(path))
        except ResultError as e:  # names the file and the key
            skipped.append(str(e))
            continue
        except KeyError as e:
            skipped.append(f"{path}: missing field {e}")
            continue
        if run.mode not in MODE_TITLES:  # pre-training runs are sources, not table cells
            continue
        if sweep is not None:
            in_sweep[path] = sweep
        groups.setdefault((run.model, run.mode, run.source.name, run.dataset, run.frames), []).append(run)
    out = []
    for key in sorted(groups):
        configs: dict[tuple, list[Run]] = {}
        for r in sorted(groups[key], key=lambda r: (-r.top1, str(r.path))):
            same = next((o for o in configs.get(r.config, []) if o.seed == r.seed), None)
            if same is not None:  # a repeat, not another seed: the better one stands
                skipped.append(f"{r.path}: a better run of the same cell (same hyper-parameters and seed) is {same.path}")
                continue
            configs.setdefault(r.config, []).append(r)
        split = Path(groups[key][0].val_split).name or "validation"
        sweeps = {in_sweep[r.path] for r in groups[key] if r.path in in_sweep}
        if sweeps:
            how = f"sweep {', '.join(sorted(s.name for s in sweeps))} (best mean top-1 on {split})"
        elif len(configs) > 1:
            how = f"best mean top-1 on {split} of {len(configs)} configurations"
        else:
            how = "the only configuration run"
        ranked = sorted((aggregate(rs, how) for rs in configs.values()), key=lambda r: (-r.top1, str(r.path)))
        out.append(ranked[0])
        skipped += [f"{p}: a better configuration of the same cell is {ranked[0].path}" for r in ranked[1:] for p in r.paths]
    return out
