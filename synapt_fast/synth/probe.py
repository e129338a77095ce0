"""A still-frame probe: how much of a task's label one static frame gives away.

Nearest class centroid on an 8 x 8 chromaticity thumbnail of the middle frame (colour, not
brightness, so lighting changes do not dominate). A stand-in for the paper's representation
bias (a linear probe on frozen ImageNet features), cheap enough for tests and CI: near chance
when only motion separates the classes, high when the scene predicts the label.
"""

from __future__ import annotations

import numpy as np


def thumbnail_features(frames: np.ndarray, grid: int = 8) -> np.ndarray:
    """(N, T, H, W, 3) uint8 clips -> (N, grid*grid*3) chromaticity of the middle frame."""
    n, t, h, w, _ = frames.shape
    mid = frames[:, t // 2, : h - h % grid, : w - w % grid].astype(np.float32)
    cells = mid.reshape(n, grid, h // grid, grid, w // grid, 3).mean(axis=(2, 4))
    return (cells / (cells.sum(-1, keepdims=True) + 1.0)).reshape(n, -1)


def still_frame_accuracy(frames: np.ndarray, labels: np.ndarray, fit: np.ndarray) -> float:
    """Accuracy on clips where `fit` is False of class centroids fitted where it is True."""
    f = thumbnail_features(frames)
    classes = np.unique(labels[fit])
    centroids = np.stack([f[fit & (labels == c)].mean(0) for c in classes])
    pred = classes[((f[~fit][:, None] - centroids[None]) ** 2).sum(-1).argmin(1)]
    return float((pred == labels[~fit]).mean())


def probe_source(source, fit_per_class: int) -> float:
    """Render a small source and probe it: the first `fit_per_class` clips of each class fit,
    the rest test."""
    from .sources import render_all

    frames, labels = render_all(source)
    index = np.array([item.meta["index"] for item in source.items()])
    return still_frame_accuracy(frames, labels, index < fit_per_class)
