"""Where clips come from: the interface every input to `synapt-fast shard` implements.

A source is anything with `class_names` and an `items()` iterator of `SourceItem`s. Folder
trees, list files, dataset adapters (UCF101, HMDB51, ...) and the synthetic generator all plug
in here. Items carry either a file path or a picklable `render` callable that returns frames in
memory (the synthetic generator), so the shard writer never needs temporary files.

Problems an item cannot fix itself (unknown class, a list line naming a missing file, a
duplicate) are reported as `SourceItem`s with `problem` set: the sharder records them as skipped
with that reason instead of stopping the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

@dataclass(frozen=True)
class Frames:
    """Decoded RGB frames held in memory: `array` is uint8 (T, H, W, 3)."""

    array: np.ndarray
    fps: float


@dataclass(frozen=True)
class SourceItem:
    """One input clip.

    `id` is unique within a source and stable across runs (e.g. the path relative to the
    dataset root); it orders inputs and names the clip in the manifest. Exactly one of `path`
    and `render` is set unless `problem` is.
    """

    id: str
    label: int | None
    class_name: str | None
    path: Path | None = None
    render: Callable[[], Frames] | None = None
    meta: dict = field(default_factory=dict)
    problem: str | None = None


class Source(Protocol):
    class_names: list[str]

    def items(self) -> Iterator[SourceItem]: ...


def _skipped(id: str, problem: str) -> SourceItem:
    return SourceItem(id=id, label=None, class_name=None, problem=problem)


class FolderSource:
    """`root/<class>/<video>`: classes are the sorted sub-folder names (or `class_names`)."""

    def __init__(self, root: Path, class_names: list[str] | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"source folder {self.root} does not exist")
        found = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not found:
            raise ValueError(f"source folder {self.root} has no class sub-folders")
        self.class_names = list(class_names) if class_names is not None else found
        self._found = found

    def items(self) -> Iterator[SourceItem]:
        index = {name: i for i, name in enumerate(self.class_names)}
        for cls in self._found:
            for path in sorted((self.root / cls).rglob("*")):
                if path.is_dir() or path.name.startswith("."):
                    continue
                rel = path.relative_to(self.root).as_posix()
                if cls not in index:
                    yield _skipped(rel, f"unknown class {cls!r}")
                    continue
                yield SourceItem(id=rel, label=index[cls], class_name=cls, path=path)


def read_class_names(path: Path) -> list[str]:
    """One class name per line; blank lines are ignored, surrounding spaces stripped."""
    names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"{path}: duplicate class names {sorted(dup)}")
    return names


class ListSource:
    """A list file of `relative/path label` or `relative/path;label` lines.

    Labels are integers indexing `class_names` (required then), or class names. CRLF line
    endings and blank or `#` comment lines are tolerated. A path may contain spaces when the
    separator is `;`; with whitespace separation the label is the last field.
    """

    def __init__(self, list_file: Path, root: Path, class_names: list[str] | None = None):
        self.list_file = Path(list_file)
        self.root = Path(root)
        self._lines = self._parse()
        labels = [label for _, _, label in self._lines]
        numeric = all(label.lstrip("-").isdigit() for label in labels)
        if numeric and class_names is None:
            raise ValueError(
                f"{self.list_file}: labels are integers; pass a class-names file (--classes) to name them"
            )
        self._numeric = numeric
        self.class_names = list(class_names) if class_names is not None else sorted(set(labels))

    def _parse(self) -> list[tuple[int, str, str]]:
        out = []
        text = self.list_file.read_text(encoding="utf-8")
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if ";" in line:
                rel, _, label = line.rpartition(";")
            else:
                parts = line.rsplit(None, 1)
                if len(parts) != 2:
                    raise ValueError(f"{self.list_file}:{lineno}: expected 'path label', got {raw!r}")
                rel, label = parts
            rel, label = rel.strip(), label.strip()
            if not rel or not label:
                raise ValueError(f"{self.list_file}:{lineno}: expected 'path label', got {raw!r}")
            out.append((lineno, rel, label))
        if not out:
            raise ValueError(f"{self.list_file}: no entries")
        return out

    def items(self) -> Iterator[SourceItem]:
        index = {name: i for i, name in enumerate(self.class_names)}
        for lineno, rel, label in self._lines:
            where = f"{self.list_file.name}:{lineno}"
            if self._numeric:
                value = int(label)
                if not 0 <= value < len(self.class_names):
                    yield _skipped(rel, f"{where}: label {value} outside 0..{len(self.class_names) - 1}")
                    continue
                cls = self.class_names[value]
            else:
                if label not in index:
                    yield _skipped(rel, f"{where}: unknown class {label!r}")
                    continue
                cls, value = label, index[label]
            path = self.root / rel
            if not path.is_file():
                yield _skipped(rel, f"{where}: missing file {path}")
                continue
            yield SourceItem(id=rel, label=value, class_name=cls, path=path, meta={"list_line": lineno})
