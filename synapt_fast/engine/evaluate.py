"""Evaluation over a split: clip-level and video-level top-1/top-5, each video counted once.

Every rank scores its share of the split (the loader gives every sample to exactly one rank);
the per-video results (position in the split, label, mean softmax over its views, how many
single views were right) are gathered to every rank and deduplicated by position, so the
numbers do not depend on the number of processes. Video-level accuracy ranks the views'
averaged probabilities; clip-level accuracy counts every view on its own.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass
class EvalResult:
    top1: float
    top5: float
    clip_top1: float
    clip_top5: float
    videos: int
    views: int  # views (clips) per video
    seconds: float
    clips_per_s: float  # views scored per second, all processes together
    confusion: list[list[int]] = field(repr=False, default_factory=list)  # [true][predicted], video level

    def metrics(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "confusion"}


def _topk_hits(scores: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k, scores.shape[-1])
    return (scores.topk(k, dim=-1).indices == labels.unsqueeze(-1)).any(-1)


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, *, num_classes: int, device: torch.device,
             autocast_dtype: torch.dtype | None = None, channels_last: bool = False) -> EvalResult:
    """Score every video of `loader` (batches of [B, V, *clip]) with the unwrapped `model`.

    Uses no collective until the final gather, so ranks with different batch counts never wait
    on each other mid-loop.
    """
    was_training = model.training
    model.eval()
    amp = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
    pos, labels, probs, clip1, clip5 = [], [], [], [], []
    views = 0
    t0 = time.perf_counter()
    try:
        for batch in loader:
            video = batch.video.to(device, non_blocking=True)
            b, views = video.shape[:2]
            clips = video.flatten(0, 1)
            if channels_last and clips.dim() == 5:
                clips = clips.contiguous(memory_format=torch.channels_last_3d)
            with amp:
                logits = model(clips)
            p = logits.float().softmax(-1).view(b, views, -1)
            label = batch.label.to(device)
            per_view_label = label.repeat_interleave(views).view(b, views)
            # Kept on the device until the loop ends: a `.cpu()` per batch would wait for the GPU
            # every batch instead of once.
            clip1.append(_topk_hits(p, per_view_label, 1).sum(1))
            clip5.append(_topk_hits(p, per_view_label, 5).sum(1))
            probs.append(p.mean(1))
            labels.append(batch.label)
            pos.append(batch.pos)
    finally:
        model.train(was_training)

    def gathered(parts: list[torch.Tensor], empty: torch.Tensor) -> torch.Tensor:
        return torch.cat([t.to(device) for t in parts]).cpu() if parts else empty

    local = {
        "pos": gathered(pos, torch.zeros(0, dtype=torch.long)),
        "label": gathered(labels, torch.zeros(0, dtype=torch.long)),
        "prob": gathered(probs, torch.zeros(0, num_classes)),
        "clip1": gathered(clip1, torch.zeros(0, dtype=torch.long)),
        "clip5": gathered(clip5, torch.zeros(0, dtype=torch.long)),
        "views": views,
    }
    parts = [local]
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, local)
    seconds = time.perf_counter() - t0
    return summarise(parts, num_classes, seconds)


def summarise(parts: list[dict], num_classes: int, seconds: float) -> EvalResult:
    """Merge per-rank results, counting each position once."""
    pos = torch.cat([p["pos"] for p in parts])
    order = torch.argsort(pos, stable=True)
    pos = pos[order]
    keep = torch.ones_like(pos, dtype=torch.bool)
    keep[1:] = pos[1:] != pos[:-1]
    idx = order[keep]
    label = torch.cat([p["label"] for p in parts])[idx]
    prob = torch.cat([p["prob"] for p in parts])[idx]
    clip1 = torch.cat([p["clip1"] for p in parts])[idx]
    clip5 = torch.cat([p["clip5"] for p in parts])[idx]
    views = max(p["views"] for p in parts) or 1
    n = len(label)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    if n:
        confusion.index_put_((label, prob.argmax(-1)), torch.ones(n, dtype=torch.long), accumulate=True)
    div = max(n, 1)
    return EvalResult(
        top1=_topk_hits(prob, label, 1).sum().item() / div if n else 0.0,
        top5=_topk_hits(prob, label, 5).sum().item() / div if n else 0.0,
        clip_top1=clip1.sum().item() / (div * views), clip_top5=clip5.sum().item() / (div * views),
        videos=n, views=views, seconds=seconds, clips_per_s=n * views / seconds if seconds > 0 else 0.0,
        confusion=confusion.tolist())
