"""Transfer modes and feature caching.

- ``finetune``: start from pre-trained weights, every parameter trains; a new classifier when the
  class count differs.
- ``linear_probe``: backbone frozen — no gradients, and kept in eval mode (BatchNorm statistics,
  dropout and drop-path inside it) even under `model.train()`; only a new classifier (and the
  dropout before it) trains.
- ``scratch``: random initialisation, every parameter trains.

Linear probing on a frozen backbone recomputes the same features every epoch, so
`extract_features` runs the backbone once and `model.forward_head(features)` then trains the
probe on the cached tensors. In eval mode ``model(x) == model.forward_head(model.forward_features(x))``
exactly. In train mode the CNNs apply dropout per frame before averaging, the cached path to the
frame-averaged feature: the same expectation, not the same noise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import torch
import torch.nn as nn

from synapt_fast.atomic import atomic_file

TRANSFER_MODES = ("finetune", "linear_probe", "scratch")


def prepare_transfer(model: nn.Module, mode: str, num_classes: int) -> nn.Module:
    """Set `model` up for `mode` with a `num_classes`-way classifier; returns the same model.

    Weights (if any) are loaded before this call; linear probing always gets a fresh head.
    """
    if mode not in TRANSFER_MODES:
        raise ValueError(f"unknown transfer mode {mode!r}; choose one of {', '.join(TRANSFER_MODES)}")
    if mode == "linear_probe" or model.num_classes != num_classes:
        model.reset_classifier(num_classes)
    model.freeze_backbone(mode == "linear_probe")
    return model


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimizer should get (only the head's under linear probing)."""
    return [p for p in model.parameters() if p.requires_grad]


@torch.no_grad()
def extract_features(model: nn.Module, batches: Iterable, *, device: torch.device | str | None = None,
                     autocast_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `model.forward_features` in eval mode over `(clips, labels)` batches.

    Clips must be in `model.input_layout`. Returns ``(features float32 (N, D), labels int64 (N,))``
    on the CPU. The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    feats, labels = [], []
    try:
        for clips, target in batches:
            clips = clips.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                f = model.forward_features(clips)
            feats.append(f.float().cpu())
            labels.append(torch.as_tensor(target).long().cpu())
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("extract_features got no batches")
    return torch.cat(feats), torch.cat(labels)


def save_features(path: str | os.PathLike, features: torch.Tensor, labels: torch.Tensor) -> None:
    """Write cached features atomically (a half-written cache must never be read back)."""
    with atomic_file(Path(path), durable=False) as f:
        torch.save({"features": features, "labels": labels}, f)


def load_features(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Read features written by `save_features` (as data: `weights_only=True`)."""
    obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    return obj["features"], obj["labels"]
