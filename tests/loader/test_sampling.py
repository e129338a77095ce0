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


# --- IBM/action-recognition-pytorch's sampling (utils/video_dataset.py), restated 0-based ------------

def ibm_val_segments(n: int, groups: int) -> list[int]:
    tick = n / float(groups)  # fixed_offset, one clip, n > groups
    return [int(tick / 2.0 + tick * x) for x in range(groups)]


def ibm_val_dense(n: int, frames: int, rate: int, clips: int) -> list[int]:
    sample_pos = max(1, 1 + n - rate * frames)
    out = []
    for start in np.linspace(0, sample_pos - 1, num=clips, dtype=int).tolist():
        out += [(i * rate + start) % n for i in range(frames)]
    return out


def ibm_train_dense(n: int, frames: int, rate: int, offset: int) -> list[int]:
    return [int(offset + i * rate) % n for i in range(frames)]


def ibm_dense_offsets(n: int, frames: int, rate: int) -> range:
    highest = n - rate * frames
    return range(0, highest) if highest > 0 else range(0, 1)  # np.random.randint(0, highest)


def ours(s: Sampling, n: int, train: bool, u: float | None = None) -> list[int]:
    from synapt_fast.loader.sampling import indices

    return indices(s, np.float64(n), None if u is None else np.array([u]), train).astype(int).tolist()


@pytest.mark.parametrize("n", list(range(9, 200)) + [300, 301, 1000])
def test_ibm_style_evaluation_equals_ibms_code(n):
    assert ours(Sampling("segments", 8, style="ibm"), n, False) == ibm_val_segments(n, 8)
    for frames, rate, clips in ((8, 8, 1), (8, 8, 3), (8, 2, 2), (32, 2, 10), (16, 4, 4)):
        s = Sampling("dense", frames, interval=rate, num_clips=clips, style="ibm")
        assert ours(s, n, False) == ibm_val_dense(n, frames, rate, clips), (frames, rate, clips)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 63, 64, 65, 90, 257])
def test_ibm_style_training_clips_equal_ibms_for_every_offset(n):
    for frames, rate in ((8, 8), (8, 1), (4, 2)):
        s = Sampling("dense", frames, interval=rate, style="ibm")
        offsets = ibm_dense_offsets(n, frames, rate)
        got = {tuple(ours(s, n, True, (o + 0.5) / len(offsets))) for o in offsets}
        assert got == {tuple(ibm_train_dense(n, frames, rate, o)) for o in offsets}  # short clips wrap
    s = Sampling("segments", 8, style="ibm")
    if n >= 8:
        ave = n // 8
        for o in range(ave):  # one offset shared by every segment
            assert ours(s, n, True, (o + 0.5) / ave) == (np.arange(8) * ave + o).tolist()
    assert s.num_randoms(True) == 1 and Sampling("segments", 8).num_randoms(True) == 8


def test_ibm_short_dense_clip_wraps_while_centred_repeats_the_last_frame():
    assert ours(Sampling("dense", 8, style="ibm"), 3, False) == [0, 1, 2, 0, 1, 2, 0, 1]
    assert ours(Sampling("dense", 8), 3, False) == [0, 1, 2, 2, 2, 2, 2, 2]
    # Short segments (fewer frames than segments): the fractional grid, still one offset, in range.
    idx = ours(Sampling("segments", 8, style="ibm"), 5, True, 0.99)
    assert idx == sorted(idx) and max(idx) <= 4
