"""What every dataset adapter shares: skipped items that name `file:line`, line and JSON readers,
the packaged list files, and the fixed extensions tried where a list names a video without one.

JSON annotation files are lists of objects, so their locator is `file[i]` (the 0-based entry)
where a text file's is `file:line`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..sources import SourceItem

DATA = Path(__file__).resolve().parents[2] / "data"  # packaged list files (see data/README.md)

# Tried in this order where a list names a video without its extension.
CANDIDATE_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi")


def _skip(rel: str, where: str, reason: str) -> SourceItem:
    return SourceItem(id=rel, label=None, class_name=None, problem=f"{where}: {reason}")


def _video(root: Path, rel: str, where: str, **fields) -> SourceItem:
    """The item for video `root/rel`, or a skip naming `where` when the disk lacks it."""
    path = root / rel
    if not path.is_file():
        return _skip(rel, where, f"missing file {path}")
    return SourceItem(id=rel, path=path, **fields)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    for n, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if line:
            yield n, line


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def _json_entries(path: Path, keys: tuple[str, ...]) -> list[dict]:
    entries = _read_json(path)
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of objects")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or any(k not in entry for k in keys):
            raise ValueError(f"{path}[{i}]: expected an object with {', '.join(keys)}, got {str(entry)[:120]}")
    return entries


def _check_subset(dataset: str, subset: str, allowed: tuple[str, ...]) -> None:
    if subset not in allowed:
        raise ValueError(f"{dataset}: subset is {' or '.join(allowed)}, got {subset!r}")


def _first_existing(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def _lookup(videos: Path, folders: list[str], stem: str) -> tuple[Path | None, str]:
    """The first `<videos>/<folder>/<stem><ext>` that exists, and a description of what was tried."""
    folders = list(dict.fromkeys(folders))
    found = _first_existing([videos / f / (stem + ext) for f in folders for ext in CANDIDATE_EXTENSIONS])
    exts = ",".join(e.lstrip(".") for e in CANDIDATE_EXTENSIONS)
    tried = " and ".join(f"{videos / f / stem}.{{{exts}}}" for f in folders)
    return found, tried
