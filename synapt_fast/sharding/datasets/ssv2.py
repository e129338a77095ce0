"""Something-Something V2, and SynAPT's 87-class Mini-SSV2 of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..sources import SourceItem, read_class_names
from .common import DATA, _check_subset, _json_entries, _read_json, _skip, _video

def ssv2_class(template: str) -> str:
    """SSV2 class name from a template: brackets dropped, so "Putting [something] on [Something]"
    becomes "Putting something on Something" (the keys of labels.json)."""
    return re.sub(r"\[([^\[\]]*)\]", r"\1", template)


class SSV2:
    """Something-Something V2: `labels.json` ({"template": "index"}) and `train.json` /
    `validation.json` (lists of {"id", "label", "template", "placeholders"}) in `lists`;
    videos are `<videos>/<id>.webm`. `subset`: train or val (test labels are not public).
    """

    name = "SSV2"
    SUBSET_FILES = {"train": "train.json", "val": "validation.json"}

    def __init__(self, videos: Path, lists: Path, subset: str = "train"):
        _check_subset(self.name, subset, tuple(self.SUBSET_FILES))
        self.videos, self.lists = Path(videos), Path(lists)
        self.list_file = self.lists / self.SUBSET_FILES[subset]
        self.all_classes = self._labels(self.lists / "labels.json")
        self.class_names = self.all_classes

    @staticmethod
    def _labels(path: Path) -> list[str]:
        labels = _read_json(path)
        if not isinstance(labels, dict) or not labels:
            raise ValueError(f"{path}: expected a JSON object {{\"template\": \"index\"}}")
        by_index = {}
        for name, index in labels.items():
            if not str(index).isdigit() or int(index) in by_index:
                raise ValueError(f"{path}: class {name!r} has a bad or repeated index {index!r}")
            by_index[int(index)] = name
        if sorted(by_index) != list(range(len(by_index))):
            raise ValueError(f"{path}: indices are not 0..{len(by_index) - 1}")
        return [by_index[i] for i in range(len(by_index))]

    def items(self) -> Iterator[SourceItem]:
        index = {name: i for i, name in enumerate(self.class_names)}
        known = set(self.all_classes)
        for i, entry in enumerate(_json_entries(self.list_file, ("id", "template"))):
            where = f"{self.list_file.name}[{i}]"
            vid, cls = str(entry["id"]), ssv2_class(str(entry["template"]))
            if not vid or "/" in vid:
                raise ValueError(f"{self.list_file}[{i}]: bad video id {vid!r}")
            rel = f"{vid}.webm"
            if cls not in known:
                yield _skip(rel, where, f"unknown class {cls!r}")
                continue
            if cls not in index:  # a class outside a subset (Mini-SSV2): not part of this dataset
                continue
            yield _video(self.videos, rel, where, label=index[cls], class_name=cls, meta={"list_entry": i})


class MiniSSV2(SSV2):
    """Mini-SSV2 (SynAPT): the 87 SSV2 classes of `data/mini_ssv2_classes.txt`, labelled in that
    file's (alphabetical) order; clips of the other SSV2 classes are left out, not skipped."""

    name = "Mini-SSV2"

    def __init__(self, videos: Path, lists: Path, subset: str = "train"):
        super().__init__(videos, lists, subset)
        self.class_names = read_class_names(DATA / "mini_ssv2_classes.txt")
        unknown = [c for c in self.class_names if c not in set(self.all_classes)]
        if unknown:
            raise ValueError(f"{self.lists / 'labels.json'}: lacks Mini-SSV2 classes {unknown[:5]}")
