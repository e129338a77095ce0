"""What every dataset adapter shares: skipped items that name `file:line`, line and JSON readers,
the packaged list files, and the fixed extensions tried where a list names a video without one
(then a frame folder of that name).

JSON annotation files are lists of objects, so their locator is `file[i]` (the 0-based entry)
where a text file's is `file:line`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..frames import Resolver, is_frame_folder
from ..sources import SourceItem, read_text

DATA = Path(__file__).resolve().parents[2] / "data"  # packaged list files (see data/README.md)

# Tried in this order where a list names a video without its extension.
CANDIDATE_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi")


def _skip(rel: str, where: str, reason: str) -> SourceItem:
    return SourceItem(id=rel, label=None, class_name=None, problem=f"{where}: {reason}")


def _video(root: Path, rel: str, where: str, **fields) -> SourceItem:
    """The item for video `root/rel` (or, where the tree holds frames, the frame folder of its
    stem), or a skip naming `where` when the disk lacks it."""
    path, problem = Resolver(root).resolve(rel)
    if path is None:
        return _skip(rel, where, problem)
    return SourceItem(id=rel, path=path, **fields)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    for n, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if line:
            yield n, line


def _read_json(path: Path):
    try:
        return json.loads(read_text(path))
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
    """The first `<videos>/<folder>/<stem><ext>` that exists, else the first frame folder
    `<videos>/<folder>/<stem>/`, and a description of what was tried."""
    folders = list(dict.fromkeys(folders))
    found = _first_existing([videos / f / (stem + ext) for f in folders for ext in CANDIDATE_EXTENSIONS])
    if found is None:
        found = next((videos / f / stem for f in folders if is_frame_folder(videos / f / stem)), None)
    exts = ",".join(e.lstrip(".") for e in CANDIDATE_EXTENSIONS)
    tried = " and ".join(f"{videos / f / stem}.{{{exts}}}" for f in folders)
    return found, tried
