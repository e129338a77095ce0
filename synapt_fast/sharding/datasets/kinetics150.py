"""Kinetics-150, SynAPT's real pre-training set, from the packaged (or given) lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..sources import SourceItem, read_class_names
from .common import DATA, _check_subset, _lines, _lookup, _skip

class Kinetics150:
    """Kinetics-150 (SynAPT's real pre-training baseline): `kinetics150_{train,val}.txt` lines
    `<class name>/<youtubeid_start_end>`, labels in `kinetics_labels.txt` order. `lists` defaults to
    the packaged copies.

    A line's video is the first of `<videos>/<class name>/<id>.{mp4,webm,mkv,avi}`, then the same
    with spaces in the class folder replaced by "_" (e.g. `peeling_apples/`).
    """

    def __init__(self, videos: Path, subset: str = "train", lists: Path | None = None):
        _check_subset("Kinetics-150", subset, ("train", "val"))
        self.videos, self.lists = Path(videos), Path(lists) if lists else DATA
        self.list_file = self.lists / f"kinetics150_{subset}.txt"
        self.class_names = read_class_names(self.lists / "kinetics_labels.txt")

    def items(self) -> Iterator[SourceItem]:
        index = {name: i for i, name in enumerate(self.class_names)}
        for n, line in _lines(self.list_file):
            where = f"{self.list_file.name}:{n}"
            cls, _, stem = line.partition("/")
            if not cls or not stem or "/" in stem:
                raise ValueError(f"{self.list_file}:{n}: expected '<class name>/<youtubeid_start_end>', got {line!r}")
            if cls not in index:
                yield _skip(line, where, f"unknown class {cls!r}")
                continue
            path, tried = _lookup(self.videos, [cls, cls.replace(" ", "_")], stem)
            if path is None:
                yield _skip(line, where, f"missing file: tried {tried}")
                continue
            yield SourceItem(id=line, label=index[cls], class_name=cls, path=path, meta={"list_line": n})
