"""SynAPT's synthetic 150-class set: its list format, class folders and asset name patterns."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..sources import SourceItem, read_class_names
from ..frames import VIDEO_EXTENSIONS
from .common import DATA, _check_subset, _lines, _lookup, _skip

# Asset of a SynAPT synthetic clip, from its name (data/README.md lists the patterns).
SYNTHETIC_ASSETS = {
    "surreact_uestc": re.compile(r"(PRE_)*a\d+_d\d+_p\d+_c\d+_color\.avi_v\d+_r\d+"),
    "surreact_ntu": re.compile(r"S\d{3}C\d{3}P\d{3}R\d{3}A\d{3}_v\d+_r\d+"),
    "eldersim": re.compile(r"A\d{3}_P\d{3}_G\d{3}_C\d{3}"),
    "phav": re.compile(r"b\d{4}-[^/]+"),
}


def synthetic_asset(name: str) -> str | None:
    """eldersim | surreact_uestc | surreact_ntu | phav for a clip name; None if none matches."""
    return next((asset for asset, pattern in SYNTHETIC_ASSETS.items() if pattern.fullmatch(name)), None)


def synthetic_folders(class_names: list[str]) -> dict[str, int]:
    """Class folder -> label: `a{i}` for the 40 SURREACT-UESTC classes (lines 1-40), the label with
    spaces as "_" for the others, plus the released folder `wipping_off_the_dinning_table`."""
    folders = {f"a{i}": i for i in range(min(40, len(class_names)))}
    folders.update({name.replace(" ", "_"): i for i, name in enumerate(class_names) if i >= 40})
    if "wiping off the dinning table" in class_names:
        folders["wipping_off_the_dinning_table"] = class_names.index("wiping off the dinning table")
    return folders


class Synthetic150:
    """SynAPT's synthetic 150-class set: a list of `<class folder>/<video name>` lines (default:
    the packaged `sim150_val.txt`; the training list was not released, pass one in this format)
    or of the follow-up work's csv form `<class folder>/<video name>.mp4;<its label>` (PPMA's
    `data/splits/sim150/val.csv`), labels in `syn_labels.txt` order: the class folder names the
    class, since the csv numbers classes its own way (kept as `meta["list_label"]`; a folder whose
    lines disagree on it is a skip). A line's video is the first existing
    `<videos>/<class folder>/<video name>.{mp4,webm,mkv,avi}`; `meta["asset"]` is the asset
    its name shows. A name matching no asset pattern is skipped with the reason.
    """

    def __init__(self, videos: Path, subset: str = "val", list_file: Path | None = None):
        _check_subset("synthetic150", subset, ("train", "val"))
        if list_file is None:
            if subset != "val":
                raise ValueError("synthetic150: the training list was not released; pass a list file (--list)")
            list_file = DATA / "sim150_val.txt"
        self.videos, self.list_file = Path(videos), Path(list_file)
        self.class_names = read_class_names(DATA / "syn_labels.txt")
        self.folders = synthetic_folders(self.class_names)

    def items(self) -> Iterator[SourceItem]:
        csv_labels: dict[str, tuple[str, int]] = {}
        for n, raw in _lines(self.list_file):
            where = f"{self.list_file.name}:{n}"
            entry, sep, list_label = raw.partition(";")
            folder, _, name = entry.strip().partition("/")
            if not folder or not name or "/" in name or (sep and not list_label.strip().isdigit()):
                raise ValueError(f"{self.list_file}:{n}: expected '<class folder>/<video name>' or "
                                 f"'<class folder>/<video name>.mp4;<label>', got {raw!r}")
            stem, ext = os.path.splitext(name)
            exact = self.videos / folder / name if ext.lower() in VIDEO_EXTENSIONS else None
            name = stem if exact is not None else name
            line = f"{folder}/{name}"
            if folder not in self.folders:
                yield _skip(line, where, f"unknown class folder {folder!r}")
                continue
            asset = synthetic_asset(name)
            if asset is None:
                yield _skip(line, where, f"name matches no asset pattern ({', '.join(SYNTHETIC_ASSETS)})")
                continue
            meta = {"list_line": n, "asset": asset}
            if sep:
                first = csv_labels.setdefault(folder, (list_label.strip(), n))
                if first[0] != list_label.strip():
                    yield _skip(line, where, f"label {list_label.strip()} but line {first[1]} gives folder "
                                             f"{folder!r} label {first[0]}")
                    continue
                meta["list_label"] = int(list_label)
            path, tried = (exact, str(exact)) if exact is not None and exact.is_file() else _lookup(
                self.videos, [folder], name)
            if path is None:
                yield _skip(line, where, f"missing file: tried {tried}")
                continue
            label = self.folders[folder]
            yield SourceItem(id=line, label=label, class_name=self.class_names[label], path=path, meta=meta)
