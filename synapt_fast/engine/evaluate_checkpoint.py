"""Evaluating a trained checkpoint at test-time views (`synapt-fast eval`).

The in-training validation is kept cheap (the recipe's `[eval]` views, often 1 clip x 1 crop);
the numbers a paper reports come from this pass: any split, any views (`--clips 10 --crops 3`),
the same `evaluate()` the trainer runs (clip- and video-level top-1/top-5, each video once across
processes), plus per-class accuracy, the confusion matrix (JSON and PNG) and throughput, in
`eval.json`. At the recipe's own views it gives the trainer's last validation numbers.

Checkpoints (`checkpoint.pth.tar`, `model_best.pth.tar`) hold the weights, `class_names` and the
flattened recipe they were trained with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch.nn as nn

from synapt_fast.atomic import write_atomic

from . import checkpoint as ckpt
from .recipe import Recipe, RecipeError, from_dict


def unflatten(flat: dict) -> dict:
    """{"data.train": ..., "seed": ...} (a checkpoint's `recipe`) -> a recipe table."""
    table: dict = {}
    for key, value in flat.items():
        if "." in key:
            section, name = key.split(".", 1)
            table.setdefault(section, {})[name] = value
        else:
            table[key] = value
    return table


@dataclass
class Trained:
    """A checkpoint's model (eval mode, on the CPU), the recipe it was trained with, its classes."""

    model: nn.Module
    recipe: Recipe
    class_names: list[str]
    epoch: int
    path: Path


def load_trained(path: str | Path, recipe: Recipe | None = None, overrides: list[str] = ()) -> Trained:
    """The model a checkpoint holds; `recipe` (default: the checkpoint's own, with `overrides`)
    gives the shapes and views."""
    from synapt_fast.loader import Sampling
    from synapt_fast.models import create_model, prepare_transfer

    path = Path(path)
    if not path.is_file():
        raise ckpt.CheckpointError(f"{path}: no such checkpoint")
    state = ckpt.load(path)
    missing = [k for k in ("state_dict", "class_names", "recipe") if k not in state]
    if missing:
        raise ckpt.CheckpointError(f"{path}: not a synapt-fast training checkpoint (no {', '.join(missing)})")
    if recipe is None:
        recipe = from_dict(unflatten(state["recipe"]), list(overrides))
    elif recipe.model.name != state["recipe"].get("model.name"):
        raise RecipeError(f"model.name: the recipe says {recipe.model.name!r}, {path} holds "
                          f"{state['recipe'].get('model.name')!r}")
    d = recipe.data
    frames = Sampling(d.sampling, d.num_frames, d.frames_per_segment, d.interval).frames_per_clip()
    names = list(state["class_names"])
    model = create_model(recipe.model.name, num_classes=len(names), num_frames=frames, image_size=d.image_size,
                         dropout=recipe.model.dropout)
    if recipe.model.mode != "pretrain":
        prepare_transfer(model, recipe.model.mode, len(names))
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as e:
        raise ckpt.CheckpointError(f"{path}: its weights do not fit {recipe.model.name} at these shapes ({e})") from None
    return Trained(model.eval(), recipe, names, int(state.get("epoch", 0)), path)


def view_overrides(clips: int | None, crops: int | None) -> list[str]:
    """Recipe overrides for the test-time views (None keeps the recipe's)."""
    return ([f"eval.num_clips={clips}"] if clips else []) + ([f"eval.crops={crops}"] if crops else [])


def eval_loader(r: Recipe, env, split: str, layout: str):
    """A split read as the trainer reads its validation split, at the recipe's `[eval]` views."""
    from synapt_fast.format.codecs import decode_for_trainer
    from synapt_fast.loader import Transform, make_loader

    from .build import build_sampling

    d = r.data
    transform = Transform(size=d.image_size, train_crop=d.train_crop, flip=d.flip, eval_crops=r.eval.crops,
                          resize_ratio=d.resize_ratio, layout=layout)
    kw = dict(backend=d.backend, decode=decode_for_trainer(str(env.device), d.decode), rank=env.rank, world_size=env.world_size,
              seed=r.seed, workers=d.workers, prefetch=d.prefetch)
    return make_loader(split, build_sampling(r), transform, train=False,
                       batch_size=r.eval.batch_size or d.batch_size, **kw)


def per_class(confusion: list[list[int]], names: list[str]) -> dict[str, float | None]:
    """Video-level accuracy of each class (None for a class with no video in the split)."""
    out = {}
    for i, name in enumerate(names):
        total = sum(confusion[i])
        out[name] = confusion[i][i] / total if total else None
    return out


def run_eval(trained: Trained, split: str | Path, env, out_dir: Path | None) -> dict:
    """Evaluate `trained` on `split` at its recipe's `[eval]` views; writes eval.json,
    confusion.json and confusion.png into `out_dir` (rank 0) and returns the record."""
    from synapt_fast.format.verify import quick_check

    from .evaluate import evaluate
    from .trainer import autocast_dtype

    r, model = trained.recipe, trained.model
    manifest = quick_check(Path(split))
    if list(manifest.class_names) != trained.class_names:
        raise RecipeError(f"--split: {split} has other classes than {trained.path} was trained on")
    loader = eval_loader(r, env, str(split), model.input_layout)
    res = evaluate(model.to(env.device), loader.iterate(0), num_classes=len(trained.class_names), device=env.device,
                   autocast_dtype=autocast_dtype(r.precision))
    record = {
        "checkpoint": str(trained.path), "epoch": trained.epoch, "model": r.model.name, "split": str(split),
        "dataset": manifest.set, "num_clips": r.eval.num_clips, "crops": r.eval.crops,
        **res.metrics(), "videos_per_s": res.videos / res.seconds if res.seconds else 0.0,
        "world_size": env.world_size, "device": env.device.type,
        "per_class_top1": per_class(res.confusion, trained.class_names),
    }
    if env.main and out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(out_dir / "confusion.json", json.dumps(
            {"class_names": trained.class_names, "matrix": res.confusion}) + "\n", durable=False)
        from synapt_fast.analysis.curves import confusion_png

        confusion_png(res.confusion, trained.class_names, out_dir / "confusion.png",
                      title=f"{r.output.name} on {manifest.set}: top-1 {res.top1:.3f}")
        write_atomic(out_dir / "eval.json", json.dumps(record, indent=1) + "\n", durable=False)
    return record


def default_out_dir(checkpoint: Path, split: str | Path, r: Recipe) -> Path:
    """<run folder>/eval/<set>_<split>_<clips>x<crops>/: one folder per split and views."""
    split = Path(split)
    return checkpoint.parent / "eval" / f"{split.parent.name}_{split.name}_{r.eval.num_clips}x{r.eval.crops}"
