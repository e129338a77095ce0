"""`pip install .` without the checkout: a wheel built from this tree, installed into a fresh
virtualenv, runs `demo --help` and `bench loader --quick` from an unrelated folder, with the
recipes and benchmark scripts it ships (never the checkout's, never over committed results)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _run(*cmd, **kw) -> subprocess.CompletedProcess:
    env = dict(kw.pop("env", os.environ))
    env.pop("PYTHONPATH", None)  # only the wheel may provide synapt_fast here
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, **kw)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh virtualenv holding the wheel; torch, DALI and the rest come from this
    interpreter's site-packages through a .pth line (no download), the package only from the wheel."""
    tmp = tmp_path_factory.mktemp("install")
    _run(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "wheel")
    wheel = next((tmp / "wheel").glob("synapt_fast-*.whl"))
    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--system-site-packages", venv)
    py = venv / "bin" / "python"
    site = Path(_run(py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    # The test interpreter's packages (it may itself be a virtualenv, so --system-site-packages
    # alone would not reach them); plain paths in a .pth file: its own .pth files (the editable
    # install of this checkout) are not processed.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run(py, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel)
    return venv / "bin"


def test_the_wheel_ships_recipes_and_benchmarks(installed, tmp_path):
    code = ("import synapt_fast, synapt_fast.resources as r; print(synapt_fast.__file__); "
            "print(r.recipe_path('tsn_tiny_8x1_demosynth_pretrain')); print(r.benchmarks_dir() / 'bench_loader.py')")
    lines = _run(installed / "python", "-c", code, cwd=tmp_path).stdout.split()
    assert all(str(installed.parent) in line for line in lines), lines  # the installed copy, not the checkout
    assert all(Path(line).is_file() for line in lines)


def test_demo_help_and_bench_loader_quick_from_any_folder(installed, tmp_path):
    env = dict(os.environ, COLUMNS="200")
    assert "--runs" in _run(installed / "synapt-fast", "demo", "--help", cwd=tmp_path, env=env).stdout
    out = tmp_path / "results"
    _run(installed / "synapt-fast", "bench", "loader", "--quick", "--out-dir", out, cwd=tmp_path, env=env)
    record = json.loads((out / "loader_quick.json").read_text())
    assert record["lengths"] and (out / "loader_quick.md").is_file()
    assert not (tmp_path / "bench-results").exists()  # --out-dir was honoured


def test_bench_default_out_dir_is_under_the_current_folder():
    from synapt_fast.cli.bench import DEFAULT_OUT

    assert not DEFAULT_OUT.is_absolute() and "benchmarks" not in DEFAULT_OUT.parts
