"""Sources of synthetic clips for the shard writer (see `synapt_fast.sharding.sources`).

`SynthSource` is the pre-training set: the first `num_classes` classes of the motion grammar,
scenes independent of the label. `DownstreamSource` is a transfer task whose classes the
pre-training set never contains; its `bias` in [0, 1] sets how strongly a static scene cue (wall
colour and a prop) goes with the label: 0 = only motion tells the classes apart (low
representation bias), 1 = one still frame of the background names the class (high bias).

Each item's `render` is a `functools.partial` of the top-level `render_frames` with plain
arguments, so it pickles into worker processes; every clip depends only on (seed, class name,
split, index) and gives the same bytes wherever it is rendered.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np

from synapt_fast.sharding.sources import Frames, SourceItem
from .motions import downstream_class_names, pretrain_class_names
from .render import clip_rng, render_clip

SPLITS = {"train": 0, "val": 1, "test": 2}
DOWNSTREAM_STREAM = 10  # downstream clips use streams 10 + split
CONTEXT_STREAM = 20     # and draw their scene context from streams 20 + split


def render_frames(class_name: str, seed: int, stream: int, index: int, frames: int, size: int,
                  context: int | None, fps: float, variation: float = 1.0) -> Frames:
    """Render one clip as `Frames` (the callable behind every synthetic `SourceItem`)."""
    return Frames(render_clip(class_name, seed, stream, index, frames, size, context, variation), fps)


def _check(num_classes: int, available: int, clips_per_class: int, frames: int, size: int) -> None:
    if not 1 <= num_classes <= available:
        raise ValueError(f"num_classes must be in 1..{available}, got {num_classes}")
    if clips_per_class < 0:
        raise ValueError("clips_per_class must be >= 0")
    if frames < 1 or size < 16:
        raise ValueError("need frames >= 1 and size >= 16")


class SynthSource:
    """Pre-training clips: `clips_per_class` clips of each of the first `num_classes` grammar
    classes (at most 238). Class lists and clips are nested: 30 classes are the first 30 of
    90, and 250 clips per class are the first 250 of 1,000 -- the paper's subset layout.
    `variation` < 1 narrows the nuisance randomisation (see `render_clip`) for quick demos.

    `bias` > 0 gives each class a scene context of its own, shown with that probability (as
    `DownstreamSource` does): a pre-training set with object and scene bias, the stand-in for
    a real set such as Kinetics in the protocol run. At 0 (the default) scenes are independent
    of the label and the clips are those of an unbiased set, byte for byte."""

    def __init__(self, num_classes: int = 150, clips_per_class: int = 1000, *, frames: int = 32,
                 size: int = 112, seed: int = 0, split: str = "train", fps: float = 30.0,
                 variation: float = 1.0, bias: float = 0.0):
        names = pretrain_class_names()
        _check(num_classes, len(names), clips_per_class, frames, size)
        if not 0.0 <= bias <= 1.0:
            raise ValueError(f"bias must be in [0, 1], got {bias}")
        self.class_names = names[:num_classes]
        self.clips_per_class, self.frames, self.size = clips_per_class, frames, size
        self.seed, self.split, self.fps, self.variation = seed, split, fps, float(variation)
        self.bias = float(bias)
        self.stream = SPLITS[split]

    def __len__(self) -> int:
        return len(self.class_names) * self.clips_per_class

    def context_of(self, label: int, index: int) -> int | None:
        """The scene context of clip `index` of class `label`; None for an unbiased set."""
        if not self.bias:
            return None
        return _context(self.seed, self.class_names, label, index, self.split, self.bias)

    def items(self) -> Iterator[SourceItem]:
        return _clip_items(self, self._meta)

    def _meta(self, label: int, index: int, context: int | None) -> dict:
        meta = {"generator": "synapt_fast.synth", "seed": self.seed, "split": self.split,
                "index": index, "variation": self.variation}
        if self.bias:
            meta.update(bias=self.bias, context=context)
        return meta


def _clip_items(source, meta_of) -> Iterator[SourceItem]:
    """Every clip of a synthetic source, rendered lazily; `meta_of(label, index, context)` gives
    each clip's meta.json (its key order is part of the shard bytes)."""
    for label, name in enumerate(source.class_names):
        for index in range(source.clips_per_class):
            context = source.context_of(label, index)
            render = partial(render_frames, name, source.seed, source.stream, index, source.frames,
                             source.size, context, source.fps, source.variation)
            yield SourceItem(id=f"{name}/{source.split}_{index:06d}", label=label, class_name=name,
                             render=render, meta=meta_of(label, index, context))


def _context(seed: int, class_names: list[str], label: int, index: int, split: str, bias: float) -> int:
    """Own class's context with probability `bias`, else a uniformly random class's: the scene
    distribution is the same at every bias, only its correlation with the label changes."""
    rng = clip_rng(seed, class_names[label], CONTEXT_STREAM + SPLITS[split], index)
    u, other = rng.uniform(), int(rng.integers(len(class_names)))
    return label if u < bias else other


class DownstreamSource:
    """A downstream task: `num_classes` classes (at most 120) disjoint from every pre-training
    class, each with a scene *context* of its own.

    Each clip shows its own class's context with probability `bias` and a uniformly random
    class's context otherwise, so the scene distribution is the same at every bias and only
    its correlation with the label changes. The draw is coupled across bias values (one
    uniform number per clip), and actor, motion and camera do not depend on `bias` at all:
    tasks at several biases differ only in which backgrounds go with which clips.
    `class_offset` picks a different block of downstream classes for a second task.
    `bias` may also be a sequence, one strength per class: a task whose classes differ in how
    much the scene gives them away (like HMDB51's, which the paper ranks into subsets).
    """

    def __init__(self, num_classes: int = 20, clips_per_class: int = 100, *, bias=0.0,
                 frames: int = 32, size: int = 112, seed: int = 0, split: str = "train",
                 fps: float = 30.0, class_offset: int = 0, variation: float = 1.0):
        biases = [float(bias)] * num_classes if isinstance(bias, (int, float)) else [float(b) for b in bias]
        if len(biases) != num_classes or not all(0.0 <= b <= 1.0 for b in biases):
            raise ValueError(f"bias must be in [0, 1] (or one such value per class), got {bias}")
        names = downstream_class_names()
        _check(num_classes + class_offset, len(names), clips_per_class, frames, size)
        self.class_names = names[class_offset:class_offset + num_classes]
        self.clips_per_class, self.frames, self.size = clips_per_class, frames, size
        self.seed, self.split, self.fps = seed, split, fps
        self.biases = biases
        self.bias = biases[0] if len(set(biases)) == 1 else sum(biases) / len(biases)  # the mean when per class
        self.variation = float(variation)
        self.stream = DOWNSTREAM_STREAM + SPLITS[split]

    def __len__(self) -> int:
        return len(self.class_names) * self.clips_per_class

    def context_of(self, label: int, index: int) -> int:
        """The scene context clip `index` of class `label` is shown in."""
        return _context(self.seed, self.class_names, label, index, self.split, self.biases[label])

    def items(self) -> Iterator[SourceItem]:
        return _clip_items(self, lambda label, index, context: {
            "generator": "synapt_fast.synth", "seed": self.seed, "split": self.split, "index": index,
            "bias": self.biases[label], "context": context, "variation": self.variation})


def bias_task_name(bias: float) -> str:
    """Shard-set name of a downstream task at `bias`, e.g. 0.9 -> `down_b090`."""
    return f"down_b{int(round(bias * 100)):03d}"


def downstream_suite(biases=(0.0, 0.9), **kwargs) -> dict[str, DownstreamSource]:
    """One task per bias over the same classes and clips: e.g. `down_b000` (only motion
    separates the classes) and `down_b090` (the background gives the label away 90 % of the
    time). Keyword arguments go to every `DownstreamSource`."""
    return {bias_task_name(b): DownstreamSource(bias=b, **kwargs) for b in biases}


def render_all(source) -> tuple[np.ndarray, np.ndarray]:
    """All clips of a (small) source in memory: frames (N, T, H, W, 3) and labels (N,)."""
    clips, labels = [], []
    for item in source.items():
        clips.append(item.render().array)
        labels.append(item.label)
    return np.stack(clips), np.array(labels)
