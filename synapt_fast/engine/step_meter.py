"""Running sums of the training step loop: a logging window and the whole epoch.

The loss is summed on the device and read (a CPU-GPU sync) only when a window is flushed, at
`log_every` steps or before a checkpoint, never per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch


@dataclass
class Window:
    steps: int
    clips: int
    wait: float  # seconds spent waiting for the loader
    seconds: float
    loss: float  # sum over the window's steps

    @property
    def mean_loss(self) -> float:
        return self.loss / max(self.steps, 1)


class StepMeter:
    def __init__(self, device: torch.device):
        self._loss = torch.zeros((), device=device)
        self._start = self._window_start = time.perf_counter()
        self.steps, self.clips, self.wait = 0, 0, 0.0
        self.total = Window(0, 0, 0.0, 0.0, 0.0)

    def update(self, loss: torch.Tensor, clips: int, wait: float) -> None:
        # A non-finite step adds 0: the guard reports it, and the mean stays readable.
        self._loss += torch.nan_to_num(loss, nan=0.0, posinf=0.0)
        self.steps += 1
        self.clips += clips
        self.wait += wait

    def flush(self) -> Window:
        """The window since the last flush (added to the epoch's totals), and a new window."""
        now = time.perf_counter()
        w = Window(self.steps, self.clips, self.wait, now - self._window_start, self._loss.item())
        for name in ("steps", "clips", "wait", "loss"):
            setattr(self.total, name, getattr(self.total, name) + getattr(w, name))
        self._loss.zero_()
        self.steps, self.clips, self.wait, self._window_start = 0, 0, 0.0, time.perf_counter()
        return w

    def finish(self) -> Window:
        """The epoch's totals, with the unflushed rest of the last window."""
        self.flush()
        self.total.seconds = time.perf_counter() - self._start
        return self.total
