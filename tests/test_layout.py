"""The layout's promises: import direction between the folders, and the one-copy helpers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synapt_fast.atomic import atomic_file, partial_path, write_atomic
from synapt_fast.loader.partition import rank_shard, shard_range
from synapt_fast.seeds import pipeline_seed, step_seed

PACKAGE = Path(__file__).resolve().parents[1] / "synapt_fast"


def test_loader_models_engine_and_format_import_without_pyav():
    """A GPU training image has torch and DALI but often no PyAV: these folders must import there."""
    code = """
import importlib, pkgutil, sys
sys.modules["av"] = None  # makes every `import av` raise ImportError
import synapt_fast
names = []
for folder in ("loader", "models", "engine", "format"):
    pkg = importlib.import_module(f"synapt_fast.{folder}")
    for m in pkgutil.walk_packages(pkg.__path__, f"synapt_fast.{folder}."):
        importlib.import_module(m.name)
        names.append(m.name)
import synapt_fast.train
assert "synapt_fast.loader.dali_loader" in names and "synapt_fast.engine.trainer" in names, names
bad = sorted(n for n in sys.modules if n.startswith("synapt_fast.sharding"))
assert not bad, bad
print(len(names))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 20


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize("folder", ["loader", "format", "models"])
def test_online_folders_never_import_the_offline_side(folder):
    """Shards are the contract between the two sides: the loader, the format and the models never
    reach into sharding/ (or, through it, the encoders)."""
    for path in (PACKAGE / folder).rglob("*.py"):
        for name in _imports(path):
            assert not name.startswith("synapt_fast.sharding"), f"{path.name} imports {name}"
            assert not name.startswith("synapt_fast.cli"), f"{path.name} imports {name}"


def test_no_module_is_much_over_400_lines():
    long = {p.relative_to(PACKAGE).as_posix(): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 450}
    assert not long, long


@pytest.mark.parametrize("n,k", [(0, 3), (1, 2), (7, 2), (21, 4), (100, 7)])
def test_shard_ranges_partition_the_split(n, k):
    parts = [shard_range(n, i, k) for i in range(k)]
    assert [x for p in parts for x in p] == list(range(n))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sorted(rank_shard(r, 3, k) for r in range(k)) == list(range(k))


def test_seed_streams_do_not_collide_within_a_run():
    e, r, j = np.meshgrid(np.arange(1000), np.arange(64), np.arange(16), indexing="ij")
    seeds = pipeline_seed(5, e, r, j)
    assert np.unique(seeds).size == seeds.size
    assert pipeline_seed(5, 2, 1, 0) == 5 + 7919 * 2 + 1_000_003  # the loader's seeds as before
    steps = {step_seed(5, rank, step) for rank in range(64) for step in range(0, 100_000, 7)}
    assert len(steps) == 64 * len(range(0, 100_000, 7))


def test_write_atomic_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "result.json"
    write_atomic(target, "old\n", durable=True)
    with pytest.raises(RuntimeError):
        with atomic_file(target, durable=False) as f:
            f.write(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"
    assert not partial_path(target).exists()
    write_atomic(target, b"new", durable=False)
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
