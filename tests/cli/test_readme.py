"""README's first hour, run as written: every command of its block, in order, on a few generated
clips in an empty folder (with the checkout's recipes/), then the files it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synapt_fast.synth.sampleclips import make_folder

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def first_hour_commands(readme: str) -> list[str]:
    """The commands of the first ```bash block of the "## The first hour" section (comments dropped)."""
    section = readme.split("\n## The first hour", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_first_hour_runs_as_written(tmp_path):
    commands = first_hour_commands((ROOT / "README.md").read_text())
    programs = [c.split()[0] + " " + c.split()[1] for c in commands]
    for step in ("shard", "train", "plot", "eval", "predict", "report"):
        assert f"synapt-fast {step}" in programs, step
    make_folder(tmp_path / "videos" / "train", num_classes=3, per_class=4, seconds=1.0, fps=25.0)
    make_folder(tmp_path / "videos" / "val", num_classes=3, per_class=2, seconds=1.0, fps=25.0)
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", COLUMNS="200",
               OMP_NUM_THREADS="1")
    for command in commands:
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    run = tmp_path / "runs" / "mine"
    result = json.loads((run / "result.json").read_text())
    assert result["dataset"] == "mine" and result["num_classes"] == 3 and result["eval_videos"] == 6
    assert (run / "metrics.jsonl").is_file() and (run / "metrics.csv").is_file() and (run / "curves.png").is_file()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((run / "eval" / "mine_val_1x3" / "eval.json").read_text())["views"] == 3
    assert (tmp_path / "runs" / "report" / "report.md").is_file()
