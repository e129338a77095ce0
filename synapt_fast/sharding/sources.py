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

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from .frames import Resolver, folder_id, not_utf8, printable, walk_clips


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
    (a video file, or a folder of frames) and `render` is set unless `problem` is.
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


def split_record(path: Path, **fields) -> dict:
    """What the manifest records of the file that made a split: its name (no machine path) and sha256."""
    return {"file": Path(path).name, "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(), **fields}


class FolderSource:
    """`root/<class>/<clip>`: classes are the sorted sub-folder names (or `class_names`). A clip
    is a video file or a frame folder (`<class>/<video>/00001.jpg`), at any depth."""

    def __init__(self, root: Path, class_names: list[str] | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"source folder {self.root} does not exist")
        found = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self._bad_names = [n for n in found if not_utf8(n)]  # reported by items(), not classes
        found = [n for n in found if not not_utf8(n)]
        if not found:
            raise ValueError(f"source folder {self.root} has no class sub-folders")
        self.class_names = list(class_names) if class_names is not None else found
        self._found = found

    def items(self) -> Iterator[SourceItem]:
        for name in self._bad_names:
            yield _skipped(printable(name) + "/", "class folder name is not valid UTF-8; rename it")
        index = {name: i for i, name in enumerate(self.class_names)}
        seen = {folder_id(self.root)}
        for cls in self._found:
            for path, problem in walk_clips(self.root / cls, seen):
                rel = path.relative_to(self.root).as_posix()
                if not_utf8(rel):
                    yield _skipped(printable(rel), "file or folder name is not valid UTF-8; rename it")
                elif problem is not None:
                    yield _skipped(rel, problem)
                elif cls not in index:
                    yield _skipped(rel, f"unknown class {cls!r}")
                else:
                    yield SourceItem(id=rel, label=index[cls], class_name=cls, path=path)


def read_class_names(path: Path) -> list[str]:
    """One class name per line; blank lines are ignored, surrounding spaces stripped."""
    names = [line.strip() for line in read_text(path).splitlines()]
    names = [n for n in names if n]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"{path}: duplicate class names {sorted(dup)}")
    return names


def read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start})") from None


_INT = re.compile(r"-?\d+")
# A class file in another order than the list's integers disagrees with most class folders; a
# handful of disagreements are more likely mislabelled lines, skipped with the reason.
MAX_FOLDER_DISAGREEMENTS = 3


class ListSource:
    """A list file of `relative/path label` or `relative/path;label` lines.

    Labels are integers indexing `class_names` (required then), or class names: whichever most
    lines hold; a line whose label is of the other kind is skipped with the reason. CRLF line
    endings and blank or `#` comment lines are tolerated. A path may contain spaces when the
    separator is `;`; with whitespace separation the label is the last field. A path names a
    video file or a frame folder, with or without its extension (see `frames.Resolver`). Where a
    path's first folder is a class name, it must be the label's class.
    """

    def __init__(self, list_file: Path, root: Path, class_names: list[str] | None = None):
        self.list_file = Path(list_file)
        self.root = Path(root)
        self._lines = self._parse()
        labels = [label for _, _, label in self._lines]
        ints = sum(bool(_INT.fullmatch(label)) for label in labels)
        numeric = 2 * ints > len(labels)
        if numeric and class_names is None:
            raise ValueError(
                f"{self.list_file}: labels are integers; pass a class-names file (--classes) to name them"
            )
        self._numeric = numeric
        if class_names is None:
            class_names = sorted({label for label in labels if not _INT.fullmatch(label)})
        self.class_names = list(class_names)
        self._labels = self._label_lines(ints, len(labels))
        self.split_from = split_record(self.list_file)

    def _parse(self) -> list[tuple[int, str, str]]:
        out = []
        for lineno, raw in enumerate(read_text(self.list_file).splitlines(), start=1):
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

    def _label_lines(self, ints: int, total: int) -> dict[int, tuple[int, str] | str]:
        """Per line number: (label, class name), or the reason the line is skipped."""
        index = {name: i for i, name in enumerate(self.class_names)}
        kind = (f"integers ({ints} of {total} lines)" if self._numeric
                else f"class names ({total - ints} of {total} lines)")
        out: dict[int, tuple[int, str] | str] = {}
        disagree = []
        for lineno, rel, label in self._lines:
            where = f"{self.list_file.name}:{lineno}"
            if self._numeric and not _INT.fullmatch(label):
                out[lineno] = f"{where}: label {label!r} is not an integer; this list's labels are {kind}"
                continue
            if self._numeric:
                value = int(label)
                if not 0 <= value < len(self.class_names):
                    out[lineno] = f"{where}: label {value} outside 0..{len(self.class_names) - 1}"
                    continue
            elif label not in index:
                why = f"; this list's labels are {kind}" if _INT.fullmatch(label) else ""
                out[lineno] = f"{where}: unknown class {label!r}{why}"
                continue
            else:
                value = index[label]
            cls = self.class_names[value]
            folder = rel.replace("\\", "/").split("/")[0]
            if folder != cls and folder in index and "/" in rel:
                disagree.append((lineno, rel, label, cls))
                out[lineno] = f"{where}: labelled {label} = {cls!r} but under the class folder {folder!r}"
                continue
            out[lineno] = (value, cls)
        if len(disagree) > MAX_FOLDER_DISAGREEMENTS:
            shown = "; ".join(f"line {n}: {rel} labelled {label} = {cls!r}" for n, rel, label, cls in disagree[:5])
            raise ValueError(
                f"{self.list_file}: {len(disagree)} of {total} lines put a clip in another class than its folder "
                f"(is the class file in another order than the list's labels?): {shown}")
        return out

    def items(self) -> Iterator[SourceItem]:
        resolver = Resolver(self.root)
        for lineno, rel, _ in self._lines:
            where = f"{self.list_file.name}:{lineno}"
            labelled = self._labels[lineno]
            if isinstance(labelled, str):
                yield _skipped(rel, labelled)
                continue
            path, problem = resolver.resolve(rel)
            if path is None:
                yield _skipped(rel, f"{where}: {problem}")
                continue
            value, cls = labelled
            yield SourceItem(id=rel, label=value, class_name=cls, path=path, meta={"list_line": lineno})
