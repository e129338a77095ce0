"""Moments in Time, 150 of its 339 classes chosen by seed."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

from ..sources import SourceItem
from .common import _check_subset, _lines, _skip, _video

def choose_classes(names: list[str], count: int, seed: int) -> list[str]:
    """`count` of `names` chosen by seed, sorted by name. The choice ranks names by
    sha256("<seed>:<name>"), so it is the same on every machine and Python version."""
    if not 0 < count <= len(names):
        raise ValueError(f"cannot choose {count} of {len(names)} classes")
    ranked = sorted(names, key=lambda name: hashlib.sha256(f"{seed}:{name}".encode()).hexdigest())
    return sorted(ranked[:count])


class MiT150:
    """Moments in Time, 150 classes chosen with `seed` from the 339 of `moments_categories.txt`
    (`name,index` lines), labelled in sorted name order. `trainingSet.csv` / `validationSet.csv`
    rows are `<class>/<file>.mp4,<class>,<agree>,<disagree>`; videos are `<videos>/<class>/<file>.mp4`
    (`videos` is the official `training/` or `validation/` folder). Rows of unchosen classes are
    left out, not skipped.
    """

    SUBSET_FILES = {"train": "trainingSet.csv", "val": "validationSet.csv"}

    def __init__(self, videos: Path, lists: Path, subset: str = "train", seed: int = 0, num_classes: int = 150):
        _check_subset("MiT", subset, tuple(self.SUBSET_FILES))
        self.videos, self.lists, self.seed = Path(videos), Path(lists), seed
        self.list_file = self.lists / self.SUBSET_FILES[subset]
        self.all_classes = self._categories(self.lists / "moments_categories.txt")
        self.class_names = choose_classes(self.all_classes, num_classes, seed)

    @staticmethod
    def _categories(path: Path) -> list[str]:
        names = []
        for n, line in _lines(path):
            name, _, index = line.rpartition(",")
            if not name or not index.strip().isdigit() or int(index) != len(names) or name in names:
                raise ValueError(f"{path}:{n}: expected '<name>,{len(names)}', got {line!r}")
            names.append(name)
        return names

    def items(self) -> Iterator[SourceItem]:
        index = {name: i for i, name in enumerate(self.class_names)}
        known = set(self.all_classes)
        text = self.list_file.read_text(encoding="utf-8")
        for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not row or not "".join(row).strip():
                continue
            where = f"{self.list_file.name}:{n}"
            if len(row) < 2 or not row[0].strip() or "/" not in row[0]:
                raise ValueError(f"{self.list_file}:{n}: expected '<class>/<file>,<class>,...', got {','.join(row)!r}")
            rel, cls = row[0].strip(), row[1].strip()
            if cls not in known:
                yield _skip(rel, where, f"unknown class {cls!r}")
                continue
            if cls not in index:
                continue
            if rel.split("/")[0] != cls:
                yield _skip(rel, where, f"file is under {rel.split('/')[0]!r} but labelled {cls!r}")
                continue
            yield _video(self.videos, rel, where, label=index[cls], class_name=cls,
                         meta={"list_line": n, "class_seed": self.seed})
