"""Linear probing on cached features: the same probe as the online one, and a cache that sweep
cells share (real shards, real DALI, real torchrun)."""

from __future__ import annotations

import json

import pytest
import torch

from synapt_fast.engine import checkpoint as ckpt

from .test_train import finish, recipe_file, reference_run, run_inprocess, tiny_sets, torchrun, weights  # noqa: F401

pytestmark = pytest.mark.slow


def _lp(tmp_path, sets, init, name, probe, **kw):
    return recipe_file(tmp_path, sets, name, dataset="down_b000", model__mode="linear_probe",
                       model__init=str(init), model__dropout=0.0, model__probe=probe, optim__epochs=3,
                       optim__lr=0.5, **kw)


def _close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-6), k


def test_cached_probe_trains_the_same_head_and_sweep_cells_share_the_cache(tiny_sets, reference_run, tmp_path):
    init = reference_run / ckpt.BEST
    assert run_inprocess(_lp(tmp_path, tiny_sets, init, "online", "online")) == 0
    assert run_inprocess(_lp(tmp_path, tiny_sets, init, "cached", "cached")) == 0
    _close(weights(tmp_path / "runs" / "online"), weights(tmp_path / "runs" / "cached"))
    on = json.loads((tmp_path / "runs" / "online" / "result.json").read_text())
    ca = json.loads((tmp_path / "runs" / "cached" / "result.json").read_text())
    assert (on["top1"], on["clip_top1"], on["best_epoch"]) == (ca["top1"], ca["clip_top1"], ca["best_epoch"])

    caches = list((tmp_path / "runs" / "feature_cache").iterdir())
    assert len(caches) == 1
    files = {p.name: p.stat().st_mtime_ns for p in caches[0].iterdir()}
    assert sorted(files) == ["train-rank0-epoch0.pt", "train-rank0-epoch1.pt", "train-rank0-epoch2.pt",
                             "val-rank0-epoch0.pt"]
    # Another cell of the grid (weight decay differs): the backbone does not run again.
    assert run_inprocess(_lp(tmp_path, tiny_sets, init, "cell2", "cached", optim__weight_decay=1e-3)) == 0
    assert {p.name: p.stat().st_mtime_ns for p in caches[0].iterdir()} == files
    # Another batch size changes the clips' views: a cache of its own.
    assert run_inprocess(_lp(tmp_path, tiny_sets, init, "cell3", "cached", data__batch_size=2)) == 0
    assert len(list((tmp_path / "runs" / "feature_cache").iterdir())) == 2


def test_cached_probe_on_two_processes_matches_the_online_one(tiny_sets, reference_run, tmp_path):
    init = reference_run / ckpt.BEST
    for probe in ("online", "cached"):
        code, out = finish(torchrun(_lp(tmp_path, tiny_sets, init, probe, probe)))
        assert code == 0, out
    _close(weights(tmp_path / "runs" / "online"), weights(tmp_path / "runs" / "cached"))
