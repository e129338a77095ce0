"""The smaller traps of `shard`, `verify` and `inspect` on real trees and real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from synapt_fast.synth.sampleclips import make_folder
from tests.conftest import run_cli
from tests.sharding.layouts import video

UAV_TRAIN = "P000S00G10B10H10UC022000LC021000A000R0_08241716.avi"  # subject 0: cross-subject-v1 train
UAV_TEST = "P001S00G10B10H10UC022000LC021000A001R0_08241716.avi"  # subject 1: test


def test_adapters_write_train_and_val_and_verify_finds_them_from_the_root(tmp_path):
    videos = tmp_path / "UAV-Human" / "RGBVideos"
    video(videos / UAV_TRAIN)
    video(videos / UAV_TEST)
    out = tmp_path / "shards"
    for subset in ("train", "test"):
        run_cli("shard", str(videos), "--set", "uav", "--dataset", "uav_human", "--subset", subset, "--out", str(out))
    assert sorted(p.name for p in (out / "uav").iterdir()) == ["train", "val"]  # recipes read val
    m = json.loads((out / "uav" / "val" / "manifest.json").read_text())
    assert m["split"] == "val" and m["num_samples"] == 1
    assert m["split_from"] == {"dataset": "uav_human", "subset": "test", "rule": m["split_from"]["rule"]}
    proc = run_cli("verify", str(out))  # the shards root: manifests two levels down
    assert proc.stdout.count("ok ") == 2 and "uav/train" in proc.stdout and "uav/val" in proc.stdout


def test_printed_skip_reasons_are_not_rich_markup(tmp_path):
    root = tmp_path / "videos"
    video(root / "a" / "x.mp4")
    lst = tmp_path / "list.csv"
    lst.write_text("#\n" * 99 + "a/missing.mp4;a\na/x.mp4;a\n")
    proc = run_cli("shard", str(root), "--set", "s", "--list", str(lst), "--out", str(tmp_path / "shards"))
    assert "skipped a/missing.mp4: list.csv:100: missing file" in proc.stdout, proc.stdout
    proc = run_cli("shard", str(root), "--set", "s", "--list", str(lst), "--out", str(tmp_path / "shards"),
                   "--strict", "--overwrite", check=False)
    assert proc.returncode == 2 and "💯" not in proc.stdout + proc.stderr


def _descendants(pid: int) -> set[int]:
    kids = {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    return kids | {d for k in kids if Path(f"/proc/{k}").exists() for d in _descendants(k)}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_killing_the_main_shard_process_ends_its_workers(tmp_path):
    src = make_folder(tmp_path / "src", num_classes=2, per_class=6, seconds=4.0, width=320, height=240)
    env = dict(os.environ, COLUMNS="200")
    main = subprocess.Popen([sys.executable, "-m", "synapt_fast.cli", "shard", str(src), "--set", "k",
                             "--workers", "2", "--short-side", "0", "--out", str(tmp_path / "shards")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 60
        workers: set[int] = set()
        while time.time() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = {p for p in _descendants(main.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()}
        assert len(workers) >= 2, "the workers never started"
        everyone = _descendants(main.pid)
        main.send_signal(signal.SIGKILL)
        main.wait()
        deadline = time.time() + 20
        while time.time() < deadline and any(_alive(p) for p in everyone):
            time.sleep(0.2)
        assert not [p for p in everyone if _alive(p)], "processes outlived the main shard process"
    finally:
        if main.poll() is None:
            main.kill()


def test_contact_sheet_skips_a_corrupt_clip_with_a_note(vp9_split, tmp_path):
    split = tmp_path / "demo" / "train"
    shutil.copytree(vp9_split, split)
    m = json.loads((split / "manifest.json").read_text())
    first = m["shards"][0]
    fields = (split / first["index"]).read_text().splitlines()[1].split()
    offset, size = int(fields[1]), int(fields[2])
    assert fields[0] == "ivf"
    tar = split / first["tar"]
    data = bytearray(tar.read_bytes())
    data[offset:offset + size] = bytes(size)  # the first clip's video: zeros of the same length
    tar.write_bytes(bytes(data))
    png = tmp_path / "sheet.png"
    proc = run_cli("inspect", str(split), "--contact-sheet", str(png), "--clips", "3")
    assert f"skipped sample {fields[3].split('.')[0]} of {first['tar']}: does not decode" in proc.stdout
    assert "contact sheet of 3 clips" in proc.stdout and png.read_bytes().startswith(b"\x89PNG")


def test_frame_rate_option_on_the_command_line(tmp_path):
    from tests.sharding.layouts import frame_folder, packed

    frame_folder(tmp_path / "rawframes" / "a" / "v_1", 6, name="{:05d}.jpg")
    run_cli("shard", str(tmp_path / "rawframes"), "--set", "f", "--frame-rate", "15", "--out", str(tmp_path / "s"))
    split = tmp_path / "s" / "f" / "train"
    meta, frames = packed(split)["a/v_1"]
    assert json.loads((split / "manifest.json").read_text())["encoding"]["frame_rate"] == 15
    assert meta["source_fps"] == 15 and len(frames) == 12  # 6 frames at 15 fps: 0.4 s at 30 fps
