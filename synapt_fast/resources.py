"""Files the package ships beside its code: the recipes and the benchmark scripts.

In a checkout, `synapt_fast/recipes` and `synapt_fast/benchmarks` are links to the top-level
`recipes/` and `benchmarks/` folders (where users look for them); `pip install .` copies what
they hold into the installed package as package data (pyproject.toml), so the same lookup works
from any folder, installed or checked out.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _shipped(name: str) -> Path:
    return Path(str(files("synapt_fast") / name)).resolve()


def recipes_dir() -> Path:
    """The shipped recipes (`<name>.toml`)."""
    return _shipped("recipes")


def benchmarks_dir() -> Path:
    """The benchmark scripts (`bench_<name>.py`, run by `synapt-fast bench <name>`)."""
    return _shipped("benchmarks")


def recipe_path(name: str) -> Path:
    """A shipped recipe by name (`tsn_tiny_8x1_demosynth_pretrain`, with or without `.toml`)."""
    stem = name[:-5] if name.endswith(".toml") else name
    path = recipes_dir() / f"{stem}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped recipe {stem!r} in {recipes_dir()}")
    return path
