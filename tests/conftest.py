"""Shared fixtures: small real video files and shard splits made from them (once per session)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Tests share two cores with the DALI/PyAV threads they start; keep torch from oversubscribing.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from synapt_fast.synth.sampleclips import make_folder  # noqa: E402
from synapt_fast.sharding.pipeline import ShardOptions, shard_source  # noqa: E402
from synapt_fast.sharding.sources import FolderSource  # noqa: E402
from synapt_fast.sharding.transcode import EncodeOptions  # noqa: E402


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory) -> Path:
    """3 classes x 3 clips, 1 s at 25 fps, 160x120 H.264 (so sharding must transcode)."""
    return make_folder(tmp_path_factory.mktemp("src"), num_classes=3, per_class=3, seconds=1.0, fps=25.0)


@pytest.fixture(scope="session")
def vp9_split(clip_folder, tmp_path_factory) -> Path:
    """A VP9 shard split of `clip_folder` (9 clips, 3 per shard)."""
    out = tmp_path_factory.mktemp("shards") / "demo" / "train"
    shard_source(FolderSource(clip_folder), out, ShardOptions("demo", "train", max_count=3), EncodeOptions(codec="vp9"))
    return out


def run_cli(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run the real `synapt-fast` entry point in a subprocess."""
    env = dict(os.environ, COLUMNS="200")  # rich wraps at 80 columns without a terminal
    proc = subprocess.run([sys.executable, "-m", "synapt_fast.cli", *args], capture_output=True, text=True,
                          env=env, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"synapt-fast {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
