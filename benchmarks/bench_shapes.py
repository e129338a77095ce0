"""Every model x every dataset: training and evaluation throughput at the shapes the recipes use.

The shapes come from `recipes/*.toml`, not from a table here: every full-size recipe names its
model, frames, interval, crop size and evaluation views (clips x crops), and its file name the
dataset (`..._ft-ucf101`, `..._lp-hmdb51`, `..._scratch-diving48`, `..._pretrain`). Recipes that
share (model, frames, interval, crop, views) share one shape, keyed like the recipe names:
`tsn_r50_8x1`, `tsn_r50_16x1`, `i3d_r50_8x8`, `r2plus1d_r50_8x8`, `timesformer_b16_8x32`.

Per shape, on random clips, three timed steps:

- `train`: zero_grad, forward, cross-entropy, backward, SGD step at batch `batch` (fine-tuning,
  scratch and pre-training all train the whole network);
- `frozen`: the backbone's forward without gradients at batch `batch`, then the classifier's
  forward, backward and step (linear probing: the backbone is frozen and in eval mode);
- `eval`: one video's `views` clips (the recipe's clips x crops) forward without gradients.

The dataset only changes the classifier (`DATASETS`: 12 to 155 classes). So each shape's network
is timed once, with a 150-class head, and the classifier alone (dropout + linear on the clip
features, forward + backward + step for training, forward for evaluation) is timed per class
count; a dataset's figure is the network's time minus the 150-class classifier's plus its own.
On this CPU the classifier is well under 0.1 % of a step, so the per-dataset figures differ by
noise-free arithmetic only; on a GPU at large batch the same holds.

Warm-up, then `repeats` rounds; each round runs every (shape, step) once, in an order that
reverses every round, so machine drift hits all shapes alike. CPU runs use 1 torch thread (as
`bench_model`), and every step records both wall-clock and process CPU seconds: on a shared
machine the CPU-second rates (`*_per_cpu_s`) are the comparable ones. Writes `shapes.{json,md,png}`; `--quick` uses the tiny models at their own small
clip size and is for CI. Run: `synapt-fast bench shapes [--quick]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchio import bar_chart, save_record

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RECIPES = HERE.parent / "recipes"
# Class counts of SynAPT's pre-training sets (150 actions) and its six downstream tasks.
DATASETS = {"pretrain": 150, "ucf101": 101, "hmdb51": 51, "mini_ssv2": 87, "diving48": 48, "ikea_fa": 12,
            "uav_human": 155}
FULL_MODELS = ("tsn_r50", "i3d_r50", "r2plus1d_r50", "timesformer_b16")
TINY = {"tsn_r50": "tsn_tiny", "i3d_r50": "i3d_tiny", "r2plus1d_r50": "r2plus1d_tiny",
        "timesformer_b16": "timesformer_tiny"}


def dataset_of(stem: str) -> str | None:
    """The dataset a recipe trains on, from its file name; None for names outside the scheme."""
    if stem.endswith("_pretrain"):
        return "pretrain"
    for mode in ("_ft-", "_lp-", "_scratch-"):
        if mode in stem:
            return stem.split(mode, 1)[1]
    return None


def recipe_shapes(recipes: Path = RECIPES) -> dict[str, dict]:
    """{shape key: shape} over the full-size recipes, each with the datasets and recipes using it."""
    from synapt_fast.engine.recipe import load_recipe

    shapes: dict[str, dict] = {}
    for path in sorted(Path(recipes).glob("*.toml")):
        r = load_recipe(path)
        dataset = dataset_of(path.stem)
        if r.model.name not in FULL_MODELS or dataset is None:
            continue
        d = r.data
        interval = d.interval if d.sampling == "dense" else 1
        key = f"{r.model.name}_{d.num_frames}x{interval}"
        views = r.eval.num_clips * r.eval.crops
        shape = shapes.setdefault(key, {
            "model": r.model.name, "num_frames": d.num_frames, "interval": interval, "image_size": d.image_size,
            "sampling": d.sampling, "eval_views": views, "recipe_batch": d.batch_size,
            "precision": r.precision, "datasets": [], "recipes": {}})
        if (shape["image_size"], shape["eval_views"]) != (d.image_size, views):
            raise ValueError(f"{path}: shape {key} differs from an earlier recipe's "
                             f"(image_size {d.image_size}, eval views {views})")
        if dataset not in DATASETS:
            raise ValueError(f"{path}: dataset {dataset!r} has no class count in bench_shapes.DATASETS")
        if dataset not in shape["datasets"]:
            shape["datasets"].append(dataset)
        shape["recipes"][path.stem] = {"dataset": dataset, "mode": r.model.mode}
    return shapes


class Shape:
    """One model at one input shape: the three timed steps, each returning (wall, CPU) seconds.

    CPU seconds (this process, all threads) are what to compare on a shared machine: with one
    torch thread they do not grow when other work takes the core, wall-clock seconds do."""

    def __init__(self, name: str, num_frames: int, image_size: int | None, batch: int, views: int, device):
        from synapt_fast.models import create_model

        kw = {"num_frames": num_frames} | ({"image_size": image_size} if image_size else {})
        torch.manual_seed(0)
        self.model = create_model(name, num_classes=DATASETS["pretrain"], **kw).to(device)
        self.batch, self.views, self.device = batch, views, device
        self.clips = torch.randn(self.model.input_shape(batch), device=device)
        self.labels = torch.randint(0, DATASETS["pretrain"], (batch,), device=device)
        self.eval_clips = torch.randn(self.model.input_shape(views), device=device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-4, momentum=0.9)

    def _sync(self) -> tuple[float, float]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter(), time.process_time()

    def _since(self, t0: tuple[float, float]) -> tuple[float, float]:
        t1 = self._sync()
        return t1[0] - t0[0], t1[1] - t0[1]

    def train(self) -> tuple[float, float]:
        self.model.train()
        t0 = self._sync()
        self.opt.zero_grad(set_to_none=True)
        F.cross_entropy(self.model(self.clips), self.labels).backward()
        self.opt.step()
        return self._since(t0)

    def frozen(self) -> tuple[float, float]:
        self.model.eval()
        head = self.model.get_classifier()
        t0 = self._sync()
        with torch.no_grad():
            feats = self.model.forward_features(self.clips)
        self.opt.zero_grad(set_to_none=True)
        F.cross_entropy(head(self.model.dropout(feats)), self.labels).backward()
        self.opt.step()
        return self._since(t0)

    def eval(self) -> tuple[float, float]:
        self.model.eval()
        t0 = self._sync()
        with torch.no_grad():
            self.model(self.eval_clips)
        return self._since(t0)


def head_seconds(features: int, classes: int, batch: int, views: int, device, repeats: int = 50) -> dict:
    """Median seconds of the classifier alone: training (fwd + bwd + step) and evaluation (fwd)."""
    torch.manual_seed(0)
    fc = torch.nn.Linear(features, classes).to(device)
    drop = torch.nn.Dropout(0.5)
    opt = torch.optim.SGD(fc.parameters(), lr=1e-4, momentum=0.9)
    x, y = torch.randn(batch, features, device=device), torch.randint(0, classes, (batch,), device=device)
    xe = torch.randn(views, features, device=device)

    def train() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(fc(drop(x)), y).backward()
        opt.step()
        return time.perf_counter() - t0

    def evaluate() -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            fc(xe)
        return time.perf_counter() - t0

    for _ in range(3):
        train(), evaluate()
    return {"train": statistics.median(train() for _ in range(repeats)),
            "eval": statistics.median(evaluate() for _ in range(repeats))}


def run(*, quick: bool = False, repeats: int = 2, batch: int = 2, models: list[str] | None = None,
        threads: int | None = None, out_dir: Path = RESULTS, recipes: Path = RECIPES, log=print) -> dict:
    from synapt_fast.engine.machine import machine_info

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    caller_threads = torch.get_num_threads()
    torch.set_num_threads(threads or (1 if device.type == "cpu" else caller_threads))
    try:
        shapes = recipe_shapes(recipes)
        if models:
            unknown = sorted(set(models) - {s["model"] for s in shapes.values()})
            if unknown:
                raise SystemExit(f"no recipe uses model(s) {unknown}; known: {sorted(FULL_MODELS)}")
            shapes = {k: s for k, s in shapes.items() if s["model"] in models}
        if quick:
            repeats = 1
        built = {}
        for key, s in shapes.items():
            name = TINY[s["model"]] if quick else s["model"]
            # Quick mode: the tiny models at their own clip size; the recipe's frames otherwise.
            built[key] = Shape(name, s["num_frames"], None if quick else s["image_size"], batch, s["eval_views"],
                               device)
            s["measured_model"] = name
            s["measured_clip"] = list(built[key].model.input_shape(1)[1:])
        steps = [(key, step) for key in built for step in ("train", "frozen", "eval")]
        for key, step in steps:  # warm-up: allocator, kernels, first-touch of the weights
            getattr(built[key], step)()
        per_repeat = {key: {step: [] for step in ("train", "frozen", "eval")} for key in built}
        per_repeat_cpu = {key: {step: [] for step in ("train", "frozen", "eval")} for key in built}
        for r in range(repeats):
            for key, step in (steps if r % 2 == 0 else steps[::-1]):
                wall, cpu = getattr(built[key], step)()
                per_repeat[key][step].append(wall)
                per_repeat_cpu[key][step].append(cpu)
                log(f"repeat {r + 1}/{repeats} {key:22s} {step:6s} {wall:8.3f} s wall {cpu:8.3f} s CPU", flush=True)
        record = {"benchmark": "shapes", "machine": machine_info() | {"torch_threads": torch.get_num_threads(),
                                                                       "device": str(device)},
                  "params": {"batch": batch, "eval_videos_per_step": 1, "repeats": repeats, "warmup": 1,
                             "precision": "fp32", "reference_classes": DATASETS["pretrain"],
                             "datasets": DATASETS, "quick": quick},
                  "shapes": {}, "throughput": {}, "recipes": {}, "quick": quick}
        for key, s in shapes.items():
            b = built[key]
            med = {step: statistics.median(v) for step, v in per_repeat[key].items()}
            med_cpu = {step: statistics.median(v) for step, v in per_repeat_cpu[key].items()}
            heads = {c: head_seconds(b.model.num_features, c, batch, s["eval_views"], device)
                     for c in sorted({DATASETS[d] for d in s["datasets"]} | {DATASETS["pretrain"]})}
            ref = heads[DATASETS["pretrain"]]
            record["shapes"][key] = {**{k: v for k, v in s.items() if k != "recipes"},
                                     "params": sum(p.numel() for p in b.model.parameters()),
                                     "per_repeat_s": per_repeat[key], "median_s": med,
                                     "per_repeat_cpu_s": per_repeat_cpu[key], "median_cpu_s": med_cpu,
                                     "head_s": {str(c): h for c, h in heads.items()}}
            record["throughput"][key] = {}
            for d in s["datasets"]:
                h = heads[DATASETS[d]]
                train_s = med["train"] - ref["train"] + h["train"]
                frozen_s = med["frozen"] - ref["train"] + h["train"]
                eval_s = med["eval"] - ref["eval"] + h["eval"]
                # Per CPU-second of one thread: the load-independent rate (heads cost ~nothing).
                cpu = {k: med_cpu[k] - ref[h_k] + h[h_k] for k, h_k in
                       (("train", "train"), ("frozen", "train"), ("eval", "eval"))}
                record["throughput"][key][d] = {
                    "classes": DATASETS[d], "train_clips_per_s": round(batch / train_s, 4),
                    "linear_probe_train_clips_per_s": round(batch / frozen_s, 4),
                    "eval_videos_per_s": round(1 / eval_s, 4), "eval_clips_per_s": round(s["eval_views"] / eval_s, 4),
                    "train_clips_per_cpu_s": round(batch / cpu["train"], 4),
                    "linear_probe_train_clips_per_cpu_s": round(batch / cpu["frozen"], 4),
                    "eval_videos_per_cpu_s": round(1 / cpu["eval"], 4)}
            for stem, rec in s["recipes"].items():
                t = record["throughput"][key][rec["dataset"]]
                train = t["linear_probe_train_clips_per_s"] if rec["mode"] == "linear_probe" else t["train_clips_per_s"]
                record["recipes"][stem] = {"shape": key, "dataset": rec["dataset"], "mode": rec["mode"],
                                           "train_clips_per_s": train, "eval_videos_per_s": t["eval_videos_per_s"]}
    finally:
        torch.set_num_threads(caller_threads)
    stem = "shapes_quick" if quick else "shapes"
    save_record(out_dir, stem, record, plot, to_markdown)
    log(f"results -> {Path(out_dir) / (stem + '.json')}, {Path(out_dir) / (stem + '.md')}")
    return record


def plot(r: dict, path: Path) -> str:
    groups = {}
    for key, s in r["shapes"].items():
        m = s["median_s"]
        groups[key] = {"train": r["params"]["batch"] / m["train"], "linear probe": r["params"]["batch"] / m["frozen"],
                       "eval (clips)": s["eval_views"] / m["eval"]}
    return bar_chart(path, "Clips/s per model shape (150-class head)", "clips/s", groups, log=True)


def to_markdown(r: dict) -> str:
    from synapt_fast.engine.machine import describe

    p = r["params"]
    lines = ["# Every model x every dataset: throughput at the recipes' shapes", "",
             f"![clips/s per shape]({r['plot']})", "",
             f"{describe(r['machine'])}; device `{r['machine']['device']}`, "
             f"{r['machine']['torch_threads']} torch thread(s)." + (" Quick mode: tiny models." if r["quick"] else ""),
             "",
             f"Training batch {p['batch']}, evaluation 1 video x the recipe's views, {p['precision']}; median of "
             f"{p['repeats']} rounds after a warm-up, shapes alternated. The network is timed once per shape with a "
             "150-class head; each dataset's figure swaps in its own classifier's measured time.", "",
             "| shape | model (measured) | clip | eval views | params | train s/step | frozen s/step | eval s/video | "
             "CPU s: train / frozen / eval |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for key, s in r["shapes"].items():
        m, c = s["median_s"], s["median_cpu_s"]
        clip = "x".join(str(x) for x in s["measured_clip"])
        lines.append(f"| {key} | {s['measured_model']} | {clip} | {s['eval_views']} | {s['params']:,} | "
                     f"{m['train']:.3f} | {m['frozen']:.3f} | {m['eval']:.3f} | {c['train']:.3f} / {c['frozen']:.3f} / "
                     f"{c['eval']:.3f} |")
    lines += ["", "Per dataset, wall clock (train clips/s / linear-probe train clips/s / eval videos/s; "
              "`shapes.json` also has the same per CPU-second, robust to other load):", "",
              "| shape | " + " | ".join(DATASETS) + " |", "|---|" + "---|" * len(DATASETS)]
    for key, per in r["throughput"].items():
        cells = [f"{per[d]['train_clips_per_s']:.3g} / {per[d]['linear_probe_train_clips_per_s']:.3g} / "
                 f"{per[d]['eval_videos_per_s']:.3g}" if d in per else "—" for d in DATASETS]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "`shapes.json`: `throughput[shape][dataset]` and `recipes[recipe stem]` (the figure for that "
              "recipe's mode: linear probing uses the frozen-backbone rate)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--model", action="append")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    run(quick=a.quick, repeats=a.repeats, batch=a.batch, models=a.model, threads=a.threads, out_dir=a.out_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
