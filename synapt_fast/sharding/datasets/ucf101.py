"""UCF101 in its official split files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..sources import SourceItem
from .common import _lines, _skip, _video

class UCF101:
    """UCF101 with `classInd.txt` and `trainlist0{k}.txt` / `testlist0{k}.txt` (split 1 by default).

    `videos`: the folder holding `<Class>/v_<Class>_gXX_cYY.avi`; `lists`: the folder of the
    official split files. Train lines carry a 1-based label, which must agree with the folder.
    """

    def __init__(self, videos: Path, lists: Path, subset: str = "train", split: int = 1):
        if subset not in ("train", "test") or split not in (1, 2, 3):
            raise ValueError("UCF101: subset is train or test, split is 1, 2 or 3")
        self.videos, self.lists = Path(videos), Path(lists)
        self.list_file = self.lists / f"{subset}list0{split}.txt"
        self.class_names = self._classes()

    def _classes(self) -> list[str]:
        path = self.lists / "classInd.txt"
        names = []
        for n, line in _lines(path):
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(names) + 1:
                raise ValueError(f"{path}:{n}: expected '<index> <class>' in order, got {line!r}")
            names.append(parts[1])
        return names

    def items(self) -> Iterator[SourceItem]:
        index = {name: i for i, name in enumerate(self.class_names)}
        for n, line in _lines(self.list_file):
            where = f"{self.list_file.name}:{n}"
            parts = line.split()
            if len(parts) not in (1, 2) or "/" not in parts[0]:
                raise ValueError(f"{self.list_file}:{n}: expected '<Class>/<video> [label]', got {line!r}")
            rel = parts[0]
            folder = rel.split("/")[0]
            if folder not in index:
                yield _skip(rel, where, f"unknown class {folder!r}")
                continue
            if len(parts) == 2 and (not parts[1].isdigit() or int(parts[1]) - 1 != index[folder]):
                raise ValueError(f"{self.list_file}:{n}: label {parts[1]} does not match class {folder!r}")
            yield _video(self.videos, rel, where, label=index[folder], class_name=folder, meta={"list_line": n})
