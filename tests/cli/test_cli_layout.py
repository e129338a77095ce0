"""The CLI's layout: one dataset registry behind `--dataset`, commands that call the library
(contact sheets, bias windows), and benchmarks imported without leaving the import path changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synapt_fast.cli.bench import BENCHMARKS, benchmark
from synapt_fast.format.manifest import Manifest
from synapt_fast.sharding.contact_sheet import first_clips
from synapt_fast.sharding.datasets import DATASETS, open_dataset
from synapt_fast.sharding.subsets import SubsetError, bias_window_splits

from tests.conftest import run_cli

def test_the_registry_feeds_the_help_and_open_dataset(tmp_path):
    text = run_cli("shard", "--help").stdout
    assert all(name in text for name in DATASETS)
    with pytest.raises(ValueError, match="unknown dataset 'kinetics'; known: " + ", ".join(DATASETS)):
        open_dataset("kinetics", tmp_path)
    for name, entry in DATASETS.items():
        if entry.needs_lists:
            with pytest.raises(ValueError, match=f"{name}: pass the folder of the official annotation files"):
                open_dataset(name, tmp_path)
        if not entry.takes_list_file:
            with pytest.raises(ValueError, match=f"{name}: --list is for synthetic150"):
                open_dataset(name, tmp_path, list_file=tmp_path / "x.txt")


def test_bias_window_splits_name_each_window_after_the_output_split(tmp_path):
    ranking = tmp_path / "bias.json"
    acc = {"a": 0.9, "b": 0.1, "c": 0.5, "d": 0.3, "e": 0.7, "f": 0.2}
    ranking.write_text(json.dumps({"per_class_train_cv_accuracy": acc}))
    out = tmp_path / "root" / "ucf" / "train"
    plans = bias_window_splits(ranking, out, rank_by="train_cv", k=2, count=3, per_class=4)
    assert [p for p, _ in plans] == [tmp_path / "root" / f"ucf_w{i:02d}" / "train" for i in range(3)]
    assert [info["classes"] for _, info in plans] == [["b", "f"], ["d", "c"], ["e", "a"]]
    assert plans[0][1]["per_class"] == 4 and plans[0][1]["bias_ranked"] == str(ranking)
    renamed = bias_window_splits(ranking, out, rank_by="train_cv", k=2, count=1, per_class=None,
                                 set_name="low", split="val")
    assert [p for p, _ in renamed] == [tmp_path / "root" / "low_w00" / "val"]
    with pytest.raises(SubsetError, match="--count 6"):
        bias_window_splits(ranking, out, rank_by="train_cv", k=2, count=6, per_class=None)


def test_first_clips_decodes_the_first_clips_with_their_class_names(vp9_split):
    manifest = Manifest.load(vp9_split)
    frames, labels = first_clips(vp9_split, manifest, 4)
    assert len(frames) == len(labels) == 4
    assert all(f.dtype == np.uint8 and f.ndim == 4 and f.shape[-1] == 3 for f in frames)
    assert set(labels) <= set(manifest.class_names)


def test_a_benchmark_is_imported_for_the_block_only():
    path, modules = list(sys.path), set(sys.modules)
    with benchmark("bench_all") as bench:
        assert bench.ORDER[0] == "shard" and "benchio" in sys.modules  # its sibling, by file name
    assert sys.path == path
    left = [name for name in set(sys.modules) - modules
            if Path(getattr(sys.modules[name], "__file__", None) or "/").parent == BENCHMARKS]
    assert not left


@pytest.mark.parametrize("script", ["bench_synth.py", "bench_all.py"])
def test_benchmarks_still_run_as_scripts(script, tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr
