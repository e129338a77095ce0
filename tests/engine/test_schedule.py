"""Learning-rate schedules on a real SGD optimiser: cosine with warm-up, TimeSformer's steps, resume."""

from __future__ import annotations

import math

import pytest
import torch

from synapt_fast.engine.recipe import from_dict
from synapt_fast.engine.schedule import CosineSchedule, StepSchedule, build_schedule
from tests.engine.test_recipe import minimal


def sgd(lr: float = 1.0) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=0.9)


def lrs(schedule, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(schedule.optimizer.param_groups[0]["lr"])
        schedule.step()
    return out


def test_timesformer_step_schedule_from_its_recipe_keys():
    """TimeSformer 8x32: lr 0.005 for epochs 0-10, 0.0005 for 11-13, 0.00005 for 14 (of 15)."""
    r = from_dict(minimal(optim={"lr": 0.005, "epochs": 15, "schedule": "step", "step_epochs": [11, 14]}))
    schedule = build_schedule(sgd(), r.optim, steps_per_epoch=4)
    assert isinstance(schedule, StepSchedule)
    got = lrs(schedule, 60)
    assert got[:44] == [0.005] * 44
    assert got[44:56] == pytest.approx([0.0005] * 12) and got[56:] == pytest.approx([0.00005] * 4)


def test_cosine_with_warmup_and_floor():
    schedule = CosineSchedule(sgd(), lr=0.1, min_lr=0.001, warmup_steps=4, total_steps=14)
    got = lrs(schedule, 15)
    assert got[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert got[4] == pytest.approx(0.1) and got[9] == pytest.approx(0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert got[14] == pytest.approx(0.001) and all(a >= b for a, b in zip(got[4:], got[5:]))


def test_step_schedule_warms_up_and_resumes_where_it_stopped():
    r = from_dict(minimal(optim={"lr": 0.2, "epochs": 4, "warmup_epochs": 1.0, "schedule": "step",
                                 "step_epochs": [2.5]}))
    first = build_schedule(sgd(), r.optim, steps_per_epoch=2)
    got = lrs(first, 8)
    assert got == pytest.approx([0.1, 0.2, 0.2, 0.2, 0.2, 0.02, 0.02, 0.02])
    again = build_schedule(sgd(), r.optim, steps_per_epoch=2)
    state = first.state_dict()
    again.load_state_dict(dict(state, step=5))
    assert again.optimizer.param_groups[0]["lr"] == pytest.approx(0.02)
    cosine = build_schedule(sgd(), from_dict(minimal()).optim, steps_per_epoch=2)
    with pytest.raises(ValueError, match="schedule is 'step'"):
        cosine.load_state_dict(state)
    cosine.load_state_dict({"step": 1, "total_steps": 4, "warmup_steps": 0})  # a checkpoint from before `kind`
