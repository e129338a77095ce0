"""Quick modes of the benchmarks run in CI so the scripts cannot rot (their figures mean little here)."""

from __future__ import annotations

import json
import shutil

import pytest

from .conftest import run_cli


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="Debian's ffmpeg (the peer baseline) is not installed")
def test_bench_shard_quick(tmp_path):
    run_cli("bench", "shard", "--quick", "--out-dir", str(tmp_path))
    record = json.loads((tmp_path / "shard_quick.json").read_text())
    assert set(record["median_clips_per_s"]) == {"shard-1w", "ffmpeg-1p", "shard-2w", "ffmpeg-2p"}
    assert all(v > 0 for v in record["median_clips_per_s"].values())
    assert record["machine"]["versions"]["av"] and "ffmpeg" in record["machine"]["ffmpeg"]
    assert "| shard_1w_over_ffmpeg_1p |" in (tmp_path / "shard_quick.md").read_text()


def test_bench_loader_quick(tmp_path):
    run_cli("bench", "loader", "--quick", "--out-dir", str(tmp_path))
    record = json.loads((tmp_path / "loader_quick.json").read_text())
    mode = record["modes"]["segments 8x1"]
    assert set(mode["clips_per_s"]) == {"dali-reader", "dali-seek", "reference", "decode-only", "default"}
    assert all(v > 0 for v in mode["clips_per_s"].values()) and mode["cpu_ms_per_clip"]["default"] > 0
    assert mode["default_source"] == "dali-reader"  # TSN segments span the clip: DALI's decoder wins
    assert len(record["memory"]["rss_mib_per_epoch"]) == 2
