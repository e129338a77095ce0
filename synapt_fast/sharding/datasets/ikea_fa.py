"""IKEA Furniture Assembly: its 12 class folders, split by whole assembly videos as SynAPT's
follow-up work (howardzh01/PPMA) published it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from ..frames import Resolver
from ..sources import FolderSource, SourceItem
from .common import DATA, _check_subset, _lines, _skip

IKEA_FA_CLASSES = tuple(f"attach_leg_{i}" for i in range(1, 5)) + tuple(f"detach_leg_{i}" for i in range(1, 5)) + (
    "flip_over", "pick_leg", "spin_in", "spin_out")
# PPMA's data/splits/ikea_furniture/val.csv, unchanged (data/README.md).
IKEA_FA_VAL = DATA / "ikea_fa_val.csv"
# Clip names are GOPR<video>_<first frame>_<last frame>_<person>: the video is what val holds out.
_VIDEO = re.compile(r"(GOPR\d{4})_")


def assembly_video(name: str) -> str | None:
    m = _VIDEO.match(name)
    return m[1] if m else None


class IkeaFA:
    """IKEA Furniture Assembly, 12 classes, as a folder of class folders `<videos>/<class>/<clip>`
    (the published `ikea_furniture/videos/`; a clip is a video or a frame folder). Labels follow
    IKEA_FA_CLASSES. A folder that is not one of the 12 classes, or a class with no folder, is an
    error: either means the tree is not the dataset the labels describe.

    Split: `split_file` (default PPMA's val.csv) lists the val clips as
    `ikea_furniture/videos/<class>/<clip>.MP4;<label>`. `val` is exactly those clips; `train` is
    every clip of the tree from an assembly video (`GOPR####`) that none of them comes from, so
    no video is seen in both. A clip whose name shows no video cannot be placed and is skipped.
    """

    def __init__(self, videos: Path, subset: str = "train", split_file: Path | None = None):
        _check_subset("IkeaFA", subset, ("train", "val"))
        self.videos, self.subset = Path(videos), subset
        self.list_file = Path(split_file) if split_file is not None else IKEA_FA_VAL
        self.class_names = list(IKEA_FA_CLASSES)
        self.split_rule = ("the clips the file lists" if subset == "val"
                           else "every clip of an assembly video (GOPR####) that no line of the file comes from")
        self._folder = FolderSource(self.videos, self.class_names)  # also checks that the folder exists
        found = {p.name for p in self.videos.iterdir() if p.is_dir() and not p.name.startswith(".")}
        unexpected = sorted(found - set(self.class_names))
        missing = [c for c in self.class_names if c not in found]
        if unexpected:
            raise ValueError(f"{self.videos}: unexpected class folder(s) {unexpected}; IkeaFA has {self.class_names}")
        if missing:
            raise ValueError(f"{self.videos}: missing class folder(s) {missing}")
        self._held = self._held_out()  # read now: a bad split file stops before any output exists

    def _held_out(self) -> list[tuple[int, str, int]]:
        """(line, `<class>/<clip>`, label) of every val line; a line that contradicts itself stops."""
        out = []
        for n, line in _lines(self.list_file):
            path, sep, label = line.rpartition(";")
            parts = path.split("/")
            if not sep or len(parts) < 2 or not label.isdigit():
                raise ValueError(f"{self.list_file}:{n}: expected '.../<class>/<clip>;<label>', got {line!r}")
            cls, clip = parts[-2], parts[-1]
            if int(label) >= len(self.class_names) or self.class_names[int(label)] != cls:
                raise ValueError(f"{self.list_file}:{n}: label {label} is not the class folder {cls!r}")
            if assembly_video(clip) is None:
                raise ValueError(f"{self.list_file}:{n}: {clip!r} shows no assembly video (GOPR####_...)")
            out.append((n, f"{cls}/{clip}", int(label)))
        if not out:
            raise ValueError(f"{self.list_file}: no entries")
        return out

    def items(self) -> Iterator[SourceItem]:
        held = self._held
        if self.subset == "val":
            resolver = Resolver(self.videos)
            for n, rel, label in held:
                path, problem = resolver.resolve(rel)
                if path is None:
                    yield _skip(rel, f"{self.list_file.name}:{n}", problem)
                    continue
                yield SourceItem(id=rel, label=label, class_name=self.class_names[label], path=path,
                                 meta={"list_line": n, "video": assembly_video(rel.split("/")[1])})
            return
        held_videos = {assembly_video(rel.split("/")[1]) for _, rel, _ in held}
        for item in self._folder.items():
            if item.problem is not None:
                yield item
                continue
            video = assembly_video(Path(item.id).name)
            if video is None:
                yield _skip(item.id, item.id, "name shows no assembly video (GOPR####_...), so it cannot be "
                                              "kept out of val")
            elif video not in held_videos:
                yield dataclasses.replace(item, meta={**item.meta, "video": video})
