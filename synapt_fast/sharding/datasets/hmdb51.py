"""HMDB51 in its official three-way split files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..sources import SourceItem
from .common import _lines, _video

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
        self.split_rule = f"lines tagged {self.TAGS[subset]} in the 51 '<class>{suffix}' files"

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
                yield _video(self.videos, rel, f"{path.name}:{n}", label=label, class_name=name, meta={"list_line": n})
