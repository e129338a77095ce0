"""Sources for public datasets in their official split layouts (sources for `shard_source`).

Every adapter reads the official files as they are distributed. A malformed line stops with
`file:line`; a video the split names but the disk lacks, or a class the class list does not
know, becomes a skipped item whose reason carries `file:line`. Nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .sources import SourceItem


def _skip(rel: str, where: str, reason: str) -> SourceItem:
    return SourceItem(id=rel, label=None, class_name=None, problem=f"{where}: {reason}")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    for n, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if line:
            yield n, line


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
            path = self.videos / rel
            if not path.is_file():
                yield _skip(rel, where, f"missing file {path}")
                continue
            yield SourceItem(id=rel, label=index[folder], class_name=folder, path=path, meta={"list_line": n})


class HMDB51:
    """HMDB51 with the `testTrainMulti_7030_splits` files `<class>_test_split{k}.txt`.

    Each line is `<video> <tag>`: 1 = train, 2 = test, 0 = unused. Classes are the 51 names in
    sorted order; `videos` holds `<class>/<video>`.
    """

    TAGS = {"train": "1", "test": "2"}

    def __init__(self, videos: Path, splits: Path, subset: str = "train", split: int = 1):
        if subset not in self.TAGS or split not in (1, 2, 3):
            raise ValueError("HMDB51: subset is train or test, split is 1, 2 or 3")
        self.videos, self.splits, self.subset = Path(videos), Path(splits), subset
        suffix = f"_test_split{split}.txt"
        self.files = {p.name[: -len(suffix)]: p for p in sorted(self.splits.glob(f"*{suffix}"))}
        if not self.files:
            raise ValueError(f"{self.splits}: no '*{suffix}' split files")
        self.class_names = sorted(self.files)

    def items(self) -> Iterator[SourceItem]:
        for label, name in enumerate(self.class_names):
            path = self.files[name]
            for n, line in _lines(path):
                parts = line.split()
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise ValueError(f"{path}:{n}: expected '<video> <0|1|2>', got {line!r}")
                if parts[1] != self.TAGS[self.subset]:
                    continue
                rel = f"{name}/{parts[0]}"
                video = self.videos / rel
                if not video.is_file():
                    yield _skip(rel, f"{path.name}:{n}", f"missing file {video}")
                    continue
                yield SourceItem(id=rel, label=label, class_name=name, path=video, meta={"list_line": n})
