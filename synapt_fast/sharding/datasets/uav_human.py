"""UAV-Human RGB, cross-subject-v1: labels and the split read from the file names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..sources import SourceItem
from .common import _check_subset, _skip

# UAV-Human cross-subject-v1 training subjects, from the official repository's README
# (sutdcv/UAV-Human, "Action Recognition Evaluation Protocols"); the other of the 119 subjects test.
UAV_HUMAN_CSV1_TRAIN = frozenset({
    0, 2, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 25, 26, 27, 28, 29, 30, 32, 33, 34,
    35, 36, 37, 38, 39, 40, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 55, 56, 57, 59, 61, 62, 63, 64,
    65, 67, 68, 69, 70, 71, 73, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 98, 100, 102,
    103, 105, 106, 110, 111, 112, 114, 115, 116, 117, 118,
})
# The official toolkit's file-name pattern: P<subject>S..G..B..H..UC..LC..A<action>R.._<timestamp>.
_UAV_NAME = re.compile(r"P(\d+)S\d+G\d+B\d+H\d+UC\d+LC\d+A(\d+)R\d+_\d+")


class UAVHuman:
    """UAV-Human RGB videos, cross-subject-v1: every file under `videos`, named as
    `P000S00G10B10H10UC022000LC021000A000R0_08241716.avi`; the label is the action number
    (A000..A154), the subject (P###) picks train or test. Other names are skipped with the reason.
    """

    NUM_SUBJECTS, NUM_ACTIONS = 119, 155

    def __init__(self, videos: Path, subset: str = "train", train_subjects: frozenset[int] = UAV_HUMAN_CSV1_TRAIN):
        _check_subset("UAV-Human", subset, ("train", "test"))
        self.videos, self.subset, self.train_subjects = Path(videos), subset, frozenset(train_subjects)
        if not self.videos.is_dir():
            raise FileNotFoundError(f"source folder {self.videos} does not exist")
        self.class_names = [f"A{i:03d}" for i in range(self.NUM_ACTIONS)]
        self.split_rule = "cross-subject-v1: training subjects from the sutdcv/UAV-Human README, read from file names"

    def items(self) -> Iterator[SourceItem]:
        for path in sorted(self.videos.rglob("*")):
            if path.is_dir() or path.name.startswith("."):
                continue
            rel = path.relative_to(self.videos).as_posix()
            m = _UAV_NAME.fullmatch(path.stem)
            if m is None:
                yield _skip(rel, rel, "name has no UAV-Human P###...A###R#_######## pattern")
                continue
            subject, action = int(m[1]), int(m[2])
            if subject >= self.NUM_SUBJECTS or action >= self.NUM_ACTIONS:
                yield _skip(rel, rel, f"subject P{m[1]} or action A{m[2]} outside the dataset "
                                      f"(P000-P{self.NUM_SUBJECTS - 1:03d}, A000-A{self.NUM_ACTIONS - 1:03d})")
                continue
            if (subject in self.train_subjects) != (self.subset == "train"):
                continue
            yield SourceItem(id=rel, label=action, class_name=self.class_names[action], path=path,
                             meta={"subject": subject})
