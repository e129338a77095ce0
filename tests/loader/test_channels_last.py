"""Channels-last training clips written so by DALI: the same values, in torch.channels_last_3d memory."""

from __future__ import annotations

import torch

from synapt_fast.loader import Sampling, Transform, make_loader


def _first(split, channels_last: bool):
    loader = make_loader(split, Sampling("dense", 4, interval=2), Transform(size=32, channels_last=channels_last),
                         train=True, batch_size=3, workers=1, seed=3, decode="cpu")
    return next(iter(loader.iterate(0)))


def test_channels_last_clips_cost_no_copy_and_equal_the_default_ones(vp9_split):
    plain, fast = _first(vp9_split, False), _first(vp9_split, True)
    assert fast.video.shape == plain.video.shape  # N, C, T, H, W either way
    assert fast.video.is_contiguous(memory_format=torch.channels_last_3d)
    assert not plain.video.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(fast.video, plain.video) and torch.equal(fast.label, plain.label)
    # What the trainer does with a batch for a channels-last model: a no-op on these clips.
    assert fast.video.contiguous(memory_format=torch.channels_last_3d).data_ptr() == fast.video.data_ptr()


def test_channels_last_is_for_3d_layouts_only():
    import pytest

    with pytest.raises(ValueError, match="NCTHW"):
        Transform(layout="NTCHW", channels_last=True)
