"""IKEA Furniture Assembly: a folder of its 12 class folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..sources import FolderSource, SourceItem

IKEA_FA_CLASSES = tuple(f"attach_leg_{i}" for i in range(1, 5)) + tuple(f"detach_leg_{i}" for i in range(1, 5)) + (
    "flip_over", "pick_leg", "spin_in", "spin_out")


class IkeaFA:
    """IKEA Furniture Assembly, 12 classes, as a folder of class folders `<videos>/<class>/<clip>`.

    Labels follow IKEA_FA_CLASSES. A folder that is not one of the 12 classes, or a class with no
    folder, is an error: either means the tree is not the dataset the labels describe.
    """

    def __init__(self, videos: Path):
        self.videos = Path(videos)
        self.class_names = list(IKEA_FA_CLASSES)
        self._folder = FolderSource(self.videos, self.class_names)  # also checks that the folder exists
        found = {p.name for p in self.videos.iterdir() if p.is_dir() and not p.name.startswith(".")}
        unexpected = sorted(found - set(self.class_names))
        missing = [c for c in self.class_names if c not in found]
        if unexpected:
            raise ValueError(f"{self.videos}: unexpected class folder(s) {unexpected}; IkeaFA has {self.class_names}")
        if missing:
            raise ValueError(f"{self.videos}: missing class folder(s) {missing}")

    def items(self) -> Iterator[SourceItem]:
        return self._folder.items()
