"""Plan and write the synthetic sets: a pre-training set and a downstream suite, each split
written as a shard set (through the shard writer) or as plain video files."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .sources import DownstreamSource, SynthSource, bias_task_name


RAMP_TASK = "down_ramp"


@dataclass(frozen=True)
class SplitJob:
    set_name: str
    split: str
    source: object  # SynthSource | DownstreamSource
    params: dict


def plan(*, classes: int, clips_per_class: int, val_clips_per_class: int,
         downstream_classes: int, downstream_clips_per_class: int,
         downstream_val_clips_per_class: int, biases: list[float], frames: int, size: int,
         fps: float, seed: int, name: str | None = None, variation: float = 1.0,
         pretrain_bias: float = 0.0, ramp_classes: int = 0) -> list[SplitJob]:
    """Every split to write, in order. Pre-training set `name` (default `synth<classes>`, with
    scene bias `pretrain_bias`); one downstream task per bias, named by `bias_task_name` (e.g.
    `down_b090`); and with `ramp_classes`, a task `down_ramp` whose classes' scene bias rises
    evenly from 0 to 1 (the material for bias-ranked subsets)."""
    common = dict(frames=frames, size=size, seed=seed, fps=fps, variation=variation)
    jobs = []
    name = name or f"synth{classes}"
    for split, per_class in (("train", clips_per_class), ("val", val_clips_per_class)):
        if classes and per_class:
            params = dict(common, kind="pretrain", classes=classes, clips_per_class=per_class,
                          bias=pretrain_bias)
            src = SynthSource(classes, per_class, split=split, bias=pretrain_bias, **common)
            jobs.append(SplitJob(name, split, src, params))
    tasks = [(bias_task_name(b), downstream_classes, b) for b in (biases if downstream_classes else [])]
    if ramp_classes:
        ramp = [i / max(1, ramp_classes - 1) for i in range(ramp_classes)]
        tasks.append((RAMP_TASK, ramp_classes, ramp))
    for task, num_classes, bias in tasks:
        for split, per_class in (("train", downstream_clips_per_class), ("val", downstream_val_clips_per_class)):
            if per_class:
                params = dict(common, kind="downstream", classes=num_classes, clips_per_class=per_class,
                              bias=bias)
                src = DownstreamSource(num_classes, per_class, bias=bias, split=split, **common)
                jobs.append(SplitJob(task, split, src, params))
    return jobs


def write(jobs: list[SplitJob], out_root: Path, *, fmt: str = "shards", workers: int = 1,
          codec: str = "vp9", gop: int = 32, overwrite: bool = False,
          on_progress: Callable[[SplitJob, int, int], None] | None = None) -> list[dict]:
    """Write each job to `out_root/<set>/<split>/` as shards (`fmt="shards"`: tars, index
    files and manifest) or files (`fmt="files"`: a folder per class); returns one summary
    dict per split. Each set also gets a `synth.json` recording how it was generated."""
    from synapt_fast.sharding.transcode import EncodeOptions

    if fmt not in ("shards", "files"):
        raise ValueError(f"format must be 'shards' or 'files', got {fmt!r}")
    out_root = Path(out_root)
    summaries = []
    for job in jobs:
        encode = EncodeOptions(codec=codec, fps=job.params["fps"], short_side=0, gop=gop)
        split_dir = out_root / job.set_name / job.split
        set_info = out_root / job.set_name / "synth.json"
        split_dir.mkdir(parents=True, exist_ok=True)
        info = json.loads(set_info.read_text()) if set_info.exists() else {}
        info[job.split] = dict(job.params, class_names=list(job.source.class_names))
        set_info.write_text(json.dumps(info, indent=1) + "\n")

        def progress(done, total, *_rest, job=job):
            if on_progress:
                on_progress(job, done, total)

        if fmt == "shards":
            from synapt_fast.sharding.pipeline import ShardOptions, shard_source

            opts = ShardOptions(set_name=job.set_name, split=job.split, seed=job.params["seed"],
                                workers=workers)
            summary = shard_source(job.source, split_dir, opts, encode, overwrite=overwrite,
                                   on_progress=progress).to_dict()
        else:
            from .files import write_files

            summary = write_files(job.source, split_dir, encode=encode, workers=workers,
                                  on_progress=progress)
        summaries.append(dict(summary, set=job.set_name, split=job.split))
    return summaries
