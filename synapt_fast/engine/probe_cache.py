"""Linear probing on cached features (`model.probe = "cached"`).

A frozen backbone computes the same features for the same clip view every time, so a linear probe
need not run it in every run of a sweep. Here the backbone runs once per epoch's clip views (the
video loader's epoch `e` is a pure function of seed, epoch, rank, batch size and processes), the
features are saved, and training replays them batch by batch in the loader's order through the
head alone. The trainer's loop is unchanged: `HeadOnly` stands in for the model and
`CachedFeatures` for the loader, so steps, schedule, checkpoints, resume and SIGTERM behave as in
an online probe, and so do the numbers, up to where dropout falls: the online CNNs drop per frame
before averaging, the head here drops on the averaged feature (same expectation; with dropout 0
the two give the same weights up to float rounding, as `tests/engine/test_probe_cache.py` checks).

The cache is keyed by everything the features depend on (backbone file, data, views, seed,
batch, processes, precision) and lives in `<output.dir>/feature_cache/<key>/`, so the cells of a
sweep that differ only in learning rate or weight decay share it; cells with another batch size
get their own. Files are written atomically: concurrent cells at worst compute one twice.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn as nn

from synapt_fast.atomic import atomic_file
from synapt_fast.format.index import file_sha256
from synapt_fast.loader.batch import Batch

from .recipe import Recipe


class HeadOnly(nn.Module):
    """The model's head (dropout + classifier) as a module of its own: what the probe trains."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(features)


def cache_key(r: Recipe, world_size: int) -> str:
    """A name for the features `r`'s backbone computes on `r`'s data and views."""
    from synapt_fast.format.manifest import Manifest

    d, e = r.data, r.eval
    parts = {
        "init": file_sha256(Path(r.model.init)) if r.model.init else "", "model": r.model.name,
        "init_format": r.model.init_format, "seed": r.seed, "world_size": world_size, "precision": r.precision,
        "train": [str(Path(d.train).resolve()), Manifest.load(Path(d.train)).to_json()],
        "val": [str(Path(d.val).resolve()), Manifest.load(Path(d.val)).to_json()],
        "data": {k: getattr(d, k) for k in ("batch_size", "sampling", "num_frames", "frames_per_segment", "interval",
                                            "image_size", "train_crop", "flip", "resize_ratio", "backend",
                                            "shuffle_buffer")},
        "eval": {"num_clips": e.num_clips, "crops": e.crops, "batch_size": e.batch_size},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


class CachedFeatures:
    """A loader of features: `iterate(epoch, start_batch)` like the video loader it wraps, with
    each batch's clips replaced by the frozen backbone's features (train: (B, D); evaluation:
    (B, V, D) for V views). An epoch missing from the cache is computed first."""

    def __init__(self, videos, model: nn.Module, cache_dir: Path, *, name: str, rank: int, device: torch.device,
                 autocast_dtype: torch.dtype | None, memory_format=None):
        self.videos, self.model, self.cache_dir, self.name = videos, model, Path(cache_dir), name
        self.rank, self.device, self.autocast_dtype, self.memory_format = rank, device, autocast_dtype, memory_format
        self.manifest = getattr(videos, "manifest", None)
        self.extracted_seconds = 0.0  # backbone time spent in this process (0 when the cache had it all)

    def path(self, epoch: int) -> Path:
        return self.cache_dir / f"{self.name}-rank{self.rank}-epoch{epoch}.pt"

    def iterate(self, epoch: int, start_batch: int = 0):
        path = self.path(epoch)
        if not path.exists():
            self._extract(epoch, path)
        batches = torch.load(path, map_location="cpu", weights_only=True)["batches"]
        for feats, label, pos in batches[start_batch:]:
            yield Batch(video=feats, label=label, pos=pos)

    @torch.no_grad()
    def _extract(self, epoch: int, path: Path) -> None:
        import time

        t0 = time.perf_counter()
        was_training = self.model.training
        self.model.eval()  # the frozen backbone is in eval mode in an online probe too
        amp = (torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype
               else nullcontext())
        batches = []
        try:
            for batch in self.videos.iterate(epoch):
                video = batch.video.to(self.device, non_blocking=True)
                views = video.shape[1] if self.name == "val" else None  # evaluation batches: (B, V, *clip)
                clips = video.flatten(0, 1) if views else video
                if self.memory_format is torch.channels_last_3d and clips.dim() == 5:
                    clips = clips.contiguous(memory_format=self.memory_format)
                with amp:
                    f = self.model.forward_features(clips)
                f = f.float()
                if views:
                    f = f.view(len(batch.label), views, -1)
                batches.append((f.cpu(), batch.label.cpu(), batch.pos.cpu()))
        finally:
            self.model.train(was_training)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, durable=False) as out:
            torch.save({"batches": batches}, out)
        self.extracted_seconds += time.perf_counter() - t0
