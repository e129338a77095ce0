"""The GPU run's plumbing, here: parts split and joined byte-exact, damaged parts named, the
bundle packed and unpacked, the run's plan inside its budget, its dry run, and a run that stops
at a failed install and says so (`benchmarks/gpu_parts.py`, `gpu_fetch.py`, `gpu_run.py`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import gpu_fetch  # noqa: E402
import gpu_parts  # noqa: E402
import gpu_run  # noqa: E402


@pytest.mark.parametrize("size,part", [(1000, 300), (900, 300), (1, 300), (0, 300), (5000, 5000)])
def test_split_and_join_are_byte_exact(tmp_path, size, part):
    data = os.urandom(size)
    src = tmp_path / "w.whl"
    src.write_bytes(data)
    parts = gpu_parts.split(src, tmp_path / "send", part)
    assert len(parts) == max(1, -(-size // part)) and all(p.stat().st_size <= part for p in parts)
    assert [p.name for p in parts] == [f"w.whl.part{i:03d}" for i in range(len(parts))]
    assert b"".join(p.read_bytes() for p in parts) == data
    out = gpu_parts.join(tmp_path / "send", tmp_path / "joined.whl")
    assert out.read_bytes() == data and not list(tmp_path.glob("*.partial"))


def test_join_names_a_missing_truncated_or_damaged_part(tmp_path):
    src = tmp_path / "b.tar"
    src.write_bytes(os.urandom(1000))
    send = tmp_path / "send"
    parts = gpu_parts.split(src, send, 400)
    good = parts[1].read_bytes()
    parts[1].unlink()
    with pytest.raises(gpu_parts.PartsError, match=r"b\.tar\.part001: missing \(3 parts expected\)"):
        gpu_parts.join(send)
    parts[1].write_bytes(good[:-1])
    with pytest.raises(gpu_parts.PartsError, match=r"part001: 399 bytes, expected 400"):
        gpu_parts.join(send)
    parts[1].write_bytes(bytes([good[0] ^ 1]) + good[1:])
    with pytest.raises(gpu_parts.PartsError, match=r"part001: sha256 differs"):
        gpu_parts.join(send)
    parts[1].write_bytes(good)
    assert gpu_parts.join(send).read_bytes() == src.read_bytes()
    with pytest.raises(gpu_parts.PartsError, match="parts.json: not found"):
        gpu_parts.join(tmp_path)


def _bundle(tmp_path, requirements=("tiny",)):
    wheels = []
    for name in ("a-1.0-py3-none-any.whl", "b-2.0-py3-none-any.whl"):
        w = tmp_path / "dl" / name
        w.parent.mkdir(exist_ok=True)
        w.write_bytes(os.urandom(700))
        wheels.append(w)
    bundle = gpu_fetch.pack(wheels, tmp_path / "parts" / gpu_fetch.BUNDLE, requirements)
    parts = gpu_parts.split(bundle, tmp_path / "parts" / "send", 1024)
    bundle.unlink()
    return wheels, parts


def test_the_bundle_is_packed_split_joined_and_unpacked_whole(tmp_path):
    wheels, parts = _bundle(tmp_path, ("nvidia-dali-cuda130", "av"))
    assert len(parts) >= 3  # a few KiB in 1 KiB parts
    lines = gpu_fetch.transfers(parts, tmp_path)
    assert lines[0] == f"transfer 1/{len(parts)}: carry parts/send/wheels.tar.part000 and parts/send/parts.json"
    assert lines[-1].startswith("then, on the GPU machine: python3 benchmarks/gpu_run.py --parts parts/send")
    install = gpu_run.join_and_extract(tmp_path / "parts" / "send", tmp_path / "parts" / "install")
    assert (install / "requirements.txt").read_text() == "nvidia-dali-cuda130\nav\n"
    for w in wheels:
        assert (install / "wheels" / w.name).read_bytes() == w.read_bytes()


def test_the_plan_fits_the_budget_and_runs_tests_then_the_benchmark(tmp_path):
    for budget in (480, 300):
        steps = gpu_run.plan(tmp_path / "send", tmp_path / "out", budget)
        assert [s["name"] for s in steps] == ["join", "install", "gpu tests", "bench gpu"]
        assert sum(s["timeout_s"] for s in steps) <= budget
    tests, bench = steps[2]["cmd"], steps[3]["cmd"]
    assert tests[tests.index("-m") + 2:tests.index("-m") + 4] == ["-m", "gpu"]
    assert bench[bench.index("-m") + 1:bench.index("-m") + 4] == ["synapt_fast.cli", "bench", "gpu"]
    assert bench[-2:] == ["--out-dir", str(tmp_path / "out")]


def test_dry_run_prints_the_steps_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(BENCH / "gpu_run.py"), "--parts", str(tmp_path / "send"), "--out",
                           str(out), "--dry-run"], capture_output=True, text=True, check=True)
    assert "parts.json MISSING" in proc.stdout and "budget 480 s" in proc.stdout
    for name in ("join", "install", "gpu tests", "bench gpu"):
        assert f"  {name}" in proc.stdout
    assert not out.exists() and not (tmp_path / "install").exists()


def test_a_failed_install_stops_the_run_and_is_recorded(tmp_path):
    # A requirement no wheel provides: pip (no index) fails at once and nothing after it runs.
    _, parts = _bundle(tmp_path, ("synapt-fast-no-such-wheel-for-tests",))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(BENCH / "gpu_run.py"), "--parts", str(parts[0].parent), "--out",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    rec = json.loads((out / "gpu_run.json").read_text())
    assert [(s["name"], s["rc"]) for s in rec["steps"]][0] == ("join", 0)
    assert rec["steps"][1]["name"] == "install" and rec["steps"][1]["rc"] not in (0, None)
    assert len(rec["steps"]) == 2  # no tests, no benchmark without the packages
    assert "synapt-fast-no-such-wheel-for-tests" in (out / "install.txt").read_text()


def test_a_partial_gpu_record_still_renders(tmp_path):
    # bench gpu saves after each step; a run stopped by its time limit leaves a record with the
    # later sections empty, and gpu.md must still be written from it.
    import bench_gpu
    from synapt_fast.engine.machine import machine_info

    record = {"benchmark": "gpu", "machine": machine_info(), "plan": bench_gpu.plan(), "plot": None,
              "nvdec": {"vp9 128": {"per_repeat_frames_per_s": [1.0], "frames_per_s": 1.0}},
              "loader": {"dense 8x1": {"per_repeat_clips_per_s": [2.0], "clips_per_s": 2.0,
                                       "configs": {"default": {"clips_per_s": 2.0}}},
                         "segments 8x1, 10 s, mjpeg": {"per_repeat_clips_per_s": [4.0], "clips_per_s": 4.0}},
              "train": {"tsn_r50": {"clips_per_s": 3.0}}, "data_wait": {}}
    bench_gpu._save(record, tmp_path)
    md = (tmp_path / "gpu.md").read_text()
    assert "| vp9 128 | 1 |" in md and "| dense 8x1 | 2 | - |" in md and "| segments 8x1, 10 s, mjpeg | 4 | - |" in md
    assert "| tsn_r50 | 3.0 | - |" in md
    assert json.loads((tmp_path / "gpu.json").read_text())["nvdec"]["vp9 128"]["frames_per_s"] == 1.0
    assert bench_gpu.short_side_for("hevc", 128) == 144 and bench_gpu.short_side_for("vp9", 128) == 128
