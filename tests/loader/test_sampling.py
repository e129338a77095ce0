"""The frame-index math shared by the DALI graph and the reference loader."""

from __future__ import annotations

import numpy as np
import pytest

from synapt_fast.loader.sampling import Sampling, numpy_indices


def test_segments_eval_takes_segment_centres():
    s = Sampling("segments", 8)
    assert numpy_indices(s, 80, train=False).tolist() == [4, 14, 24, 34, 44, 54, 64, 74]


def test_segments_train_draws_one_frame_inside_each_segment():
    s = Sampling("segments", 8)
    rng = np.random.default_rng(0)
    draws = np.stack([numpy_indices(s, 80, True, rng) for _ in range(400)])
    for j in range(8):
        assert draws[:, j].min() >= 10 * j and draws[:, j].max() <= 10 * j + 9
        assert len(set(draws[:, j])) == 10  # every offset inside the segment occurs


def test_segments_with_consecutive_frames():
    s = Sampling("segments", 4, frames_per_segment=3)
    idx = numpy_indices(s, 40, train=False)
    assert idx.tolist() == [3, 4, 5, 13, 14, 15, 23, 24, 25, 33, 34, 35]
    rng = np.random.default_rng(1)
    for _ in range(50):
        idx = numpy_indices(s, 40, True, rng).reshape(4, 3)
        assert (np.diff(idx, axis=1) == 1).all()  # consecutive within a segment
        assert ((idx[:, 0] // 10) == np.arange(4)).all() and idx.max() <= 39


def test_dense_train_random_start_with_interval():
    s = Sampling("dense", 8, interval=2)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(300):
        idx = numpy_indices(s, 40, True, rng)
        assert (np.diff(idx) == 2).all() and idx[0] >= 0 and idx[-1] <= 39
        starts.add(int(idx[0]))
    assert starts == set(range(0, 40 - 15 + 1))  # every start that fits, and only those


def test_dense_eval_clips_are_evenly_spaced():
    s = Sampling("dense", 4, interval=2, num_clips=3)  # span 7; 64 frames -> 58 possible starts
    idx = numpy_indices(s, 64, train=False).reshape(3, 4)
    assert idx[:, 0].tolist() == [9, 29, 48]
    assert (np.diff(idx, axis=1) == 2).all()
    assert Sampling("dense", 4, num_clips=1).frames_per_clip() == 4
    assert numpy_indices(Sampling("dense", 4), 64, train=False).tolist() == [30, 31, 32, 33]


def test_uniform_spans_first_to_last():
    assert numpy_indices(Sampling("uniform", 5), 41, train=False).tolist() == [0, 10, 20, 30, 40]
    assert numpy_indices(Sampling("uniform", 5), 41, train=True).tolist() == [0, 10, 20, 30, 40]
    assert numpy_indices(Sampling("uniform", 1), 41, train=False).tolist() == [20]


@pytest.mark.parametrize("s", [Sampling("segments", 8), Sampling("segments", 4, frames_per_segment=4),
                               Sampling("dense", 32, interval=2), Sampling("dense", 8, num_clips=3),
                               Sampling("uniform", 8)])
@pytest.mark.parametrize("n", [1, 2, 5, 9])
@pytest.mark.parametrize("train", [True, False])
def test_short_clips_repeat_their_last_frame(s, n, train):
    idx = numpy_indices(s, n, train, np.random.default_rng(n))
    assert len(idx) == s.clips(train) * s.frames_per_clip()
    assert idx.min() >= 0 and idx.max() <= n - 1
    if s.mode == "dense" and n < s.span():
        clip = idx[: s.num_frames]
        assert clip[-1] == n - 1 and (np.diff(clip) >= 0).all()


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="sampling mode"):
        Sampling("sparse")
    with pytest.raises(ValueError, match=">= 1"):
        Sampling("dense", 0)
    with pytest.raises(ValueError, match="at least one frame"):
        numpy_indices(Sampling(), 0, train=False)
