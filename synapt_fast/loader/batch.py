"""What every loader yields, and the one reshaping evaluation views need."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """`video`: training [B, *clip]; evaluation [B, V, *clip] with V = clips x crops views.

    `clip` is (C, T, H, W) for layout NCTHW or (T, C, H, W) for NTCHW. `label` and `pos` (the
    sample's position in its split, unique) are int64 [B].
    """

    video: torch.Tensor
    label: torch.Tensor
    pos: torch.Tensor


class Epochs:
    """`for batch in loader` runs epoch `loader.epoch`, then moves on to the next one; the
    trainer calls `iterate(epoch, start_batch)` directly. Subclasses define `iterate`."""

    epoch = 0

    def __iter__(self):
        yield from self.iterate(self.epoch)
        self.epoch += 1

    def iterate(self, epoch: int, start_batch: int = 0):
        raise NotImplementedError


def arrange_eval(video: torch.Tensor, clips: int, layout: str) -> torch.Tensor:
    """[B, crops, clips*T, C, H, W] (frames of all clips in a row) -> [B, clips*crops, *clip]."""
    b, crops, ft, c, h, w = video.shape
    t = ft // clips
    video = video.view(b, crops, clips, t, c, h, w).transpose(1, 2)  # clip-major view order
    if layout == "NCTHW":
        video = video.permute(0, 1, 2, 4, 3, 5, 6)
    return video.reshape(b, clips * crops, *video.shape[3:])
