"""Diving48 V2: JSON split lists and the four-part class vocabulary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..sources import SourceItem
from .common import _check_subset, _json_entries, _read_json, _skip, _video

class Diving48:
    """Diving48 V2: `Diving48_V2_train.json` / `Diving48_V2_test.json` (lists of {"vid_name",
    "label", "start_frame", "end_frame"}) and `Diving48_vocab.json` (per label the list
    [takeoff, somersault, twist, flight]) in `lists`; videos are `<videos>/<vid_name>.mp4`.

    Class name: the four vocabulary parts joined with "_" in that order, e.g. "Back_15som_05Twis_FREE".
    """

    def __init__(self, videos: Path, lists: Path, subset: str = "train"):
        _check_subset("Diving48", subset, ("train", "test"))
        self.videos, self.lists = Path(videos), Path(lists)
        self.list_file = self.lists / f"Diving48_V2_{subset}.json"
        self.class_names = self._vocab(self.lists / "Diving48_vocab.json")

    @staticmethod
    def _vocab(path: Path) -> list[str]:
        vocab = _read_json(path)
        if not isinstance(vocab, list) or not vocab:
            raise ValueError(f"{path}: expected a JSON list of [takeoff, somersault, twist, flight] lists")
        names = []
        for i, parts in enumerate(vocab):
            if not isinstance(parts, list) or len(parts) != 4 or not all(isinstance(p, str) and p for p in parts):
                raise ValueError(f"{path}[{i}]: expected [takeoff, somersault, twist, flight], got {parts!r}")
            name = "_".join(parts)
            if name in names:
                raise ValueError(f"{path}[{i}]: duplicate class {name!r}")
            names.append(name)
        return names

    def items(self) -> Iterator[SourceItem]:
        keys = ("vid_name", "label", "start_frame", "end_frame")
        for i, entry in enumerate(_json_entries(self.list_file, keys)):
            where = f"{self.list_file.name}[{i}]"
            vid, label = entry["vid_name"], entry["label"]
            if not isinstance(vid, str) or not vid or "/" in vid or not isinstance(label, int):
                raise ValueError(f"{self.list_file}[{i}]: expected a vid_name string and an integer label")
            rel = f"{vid}.mp4"
            if not 0 <= label < len(self.class_names):
                yield _skip(rel, where, f"label {label} outside the vocabulary 0..{len(self.class_names) - 1}")
                continue
            meta = {"list_entry": i, "start_frame": entry["start_frame"], "end_frame": entry["end_frame"]}
            yield _video(self.videos, rel, where, label=label, class_name=self.class_names[label], meta=meta)
