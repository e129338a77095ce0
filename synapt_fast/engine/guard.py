"""Stops training on non-finite losses or gradients without a per-step CPU-GPU sync."""

from __future__ import annotations

from collections.abc import Callable

import torch


class NonFiniteLoss(RuntimeError):
    pass


class NonFiniteGuard:
    """Counts consecutive non-finite steps on the device; `check` reads the count at sync points.

    fp16 tolerates a few overflowing steps (the scaler skips them and lowers its scale), so its
    `limit` is higher; with bf16/fp32 one non-finite step is already an error.
    """

    def __init__(self, device: torch.device, *, limit: int):
        self.limit = limit
        self._streak = torch.zeros((), device=device)
        self._worst = torch.zeros((), device=device)

    def observe(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        bad = ~torch.isfinite(grad_norm) | ~torch.isfinite(loss)
        self._streak = (self._streak + 1) * bad
        self._worst = torch.maximum(self._worst, self._streak)

    def check(self, message: Callable[[], str]) -> None:
        """Raise `NonFiniteLoss(message())` if `limit` consecutive steps were non-finite."""
        if self._worst.item() >= self.limit:
            raise NonFiniteLoss(message())
