"""Spatial augmentation and evaluation views, the same for every frame of a clip.

Like the sampling math, the crop-box arithmetic is written once against an `ops` namespace and
runs on numpy (reference loader) and on DALI nodes (DALI pipeline).

Training crops:
- `multiscale` (TSN's GroupMultiScaleCrop): crop sides from {1, .875, .75, .66} x the short side,
  height and width at most one scale step apart, placed at one of 13 fixed positions (corners,
  centre, edge midpoints, quarter points), then resized to `size` x `size`;
- `random_resized` (Inception-style: area 8-100 %, aspect 3/4-4/3), resized to `size`;
- `center`: the central `size` x `size` after resizing the short side to `size / resize_ratio`;
- `jitter` (TimeSformer's and SlowFast's short-side jitter): resize the short side to a random
  length in [256, 320] x `size` / 224 and take a random `size` x `size` crop; done as a square box
  of side `short side x size / length` at a uniform random place, resized to `size` (one resize).
A horizontal flip with probability 1/2 follows when `flip` is on.

Evaluation: resize the short side to `size / resize_ratio` (128 for 112, 256 for 224), then
`eval_crops` = 1 (centre), 3 (both ends and the middle of the long side) or 10 (four corners and
centre, each also mirrored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCALES = (1.0, 0.875, 0.75, 0.66)
# (x, y) of the 13 fixed crop positions, as fractions of the free space (GroupMultiScaleCrop's
# more_fix_crop grid in quarters).
POSITIONS = ((0, 0), (1, 0), (0, 1), (1, 1), (0.5, 0.5), (0, 0.5), (1, 0.5), (0.5, 1), (0.5, 0),
             (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))
LAYOUTS = ("NCTHW", "NTCHW")
DTYPES = ("float32", "float16")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
TRAIN_CROPS = ("multiscale", "random_resized", "center", "jitter")
JITTER = (256 / 224, 320 / 224)  # TimeSformer's TRAIN_JITTER_SCALES [256, 320] for 224 crops


@dataclass(frozen=True)
class Transform:
    size: int = 112
    train_crop: str = "multiscale"  # multiscale | random_resized | center | jitter
    flip: bool = True
    eval_crops: int = 1  # 1, 3 or 10
    resize_ratio: float = 0.875
    layout: str = "NCTHW"  # NCTHW for 3D CNNs, NTCHW for TSN and TimeSformer
    dtype: str = "float32"
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD
    # NCTHW training clips stored channels-last (N, T, H, W, C in memory, viewed as N, C, T, H, W):
    # what `torch.channels_last_3d` models want, written so by DALI instead of copied every step.
    channels_last: bool = False

    def __post_init__(self):
        if self.train_crop not in TRAIN_CROPS:
            raise ValueError(f"train_crop must be one of {', '.join(TRAIN_CROPS)}, got {self.train_crop!r}")
        if self.eval_crops not in (1, 3, 10):
            raise ValueError(f"eval_crops must be 1, 3 or 10, got {self.eval_crops}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.channels_last and self.layout != "NCTHW":
            raise ValueError("channels_last applies to the NCTHW layout (3D CNNs) only")

    @property
    def eval_short_side(self) -> int:
        return int(round(self.size / self.resize_ratio))

    def views(self) -> list[tuple[float, float, bool]]:
        """(x, y, mirror) of each evaluation crop, as fractions of the free space."""
        if self.eval_crops == 1:
            return [(0.5, 0.5, False)]
        if self.eval_crops == 3:
            # Along the long side; the crop already spans the short side. (x and y both vary:
            # on the short side the free space is zero, so the fraction does not matter.)
            return [(0.0, 0.0, False), (0.5, 0.5, False), (1.0, 1.0, False)]
        five = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.5)]
        return [(x, y, m) for m in (False, True) for x, y in five]


def scale_pairs(max_distort: int = 1) -> list[tuple[float, float]]:
    """(height scale, width scale) pairs at most `max_distort` steps apart."""
    return [(SCALES[i], SCALES[j]) for i in range(len(SCALES)) for j in range(len(SCALES))
            if abs(i - j) <= max_distort]


def multiscale_box(h, w, scale_h, scale_w, pos_x, pos_y, ops):
    """(y0, x0, crop_h, crop_w) of a TSN multi-scale crop: the math shared by both loaders."""
    base = ops.minimum(h, w)
    ch = ops.floor(base * scale_h)
    cw = ops.floor(base * scale_w)
    return ops.floor((h - ch) * pos_y), ops.floor((w - cw) * pos_x), ch, cw


def jitter_box(h, w, scale, pos_x, pos_y, ops):
    """(y0, x0, side, side) of a short-side jitter crop: `scale` in JITTER, positions in [0, 1]."""
    side = ops.floor(ops.minimum(h, w) / scale)
    return ops.floor((h - side) * pos_y), ops.floor((w - side) * pos_x), side, side


def numpy_jitter_box(h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    from .sampling import NumpyOps

    scale, px, py = rng.uniform(*JITTER), rng.random(), rng.random()
    return tuple(int(v) for v in jitter_box(np.float64(h), np.float64(w), scale, px, py, NumpyOps))


def numpy_train_box(t: Transform, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """The training crop box of `t.train_crop` (not `center`, which is no box) for an h x w clip."""
    box = {"multiscale": numpy_multiscale_box, "random_resized": numpy_random_resized_box,
           "jitter": numpy_jitter_box}[t.train_crop]
    return box(h, w, rng)


def numpy_multiscale_box(h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    from .sampling import NumpyOps

    pairs = scale_pairs()
    sh, sw = pairs[rng.integers(len(pairs))]
    px, py = POSITIONS[rng.integers(len(POSITIONS))]
    return tuple(int(v) for v in multiscale_box(np.float64(h), np.float64(w), sh, sw, px, py, NumpyOps))


def numpy_random_resized_box(h: int, w: int, rng: np.random.Generator, area=(0.08, 1.0),
                             ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """Inception-style crop box (as torchvision's RandomResizedCrop): 10 tries, then centre."""
    for _ in range(10):
        target = h * w * rng.uniform(*area)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        cw = int(round(np.sqrt(target * aspect)))
        ch = int(round(np.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side, side
