"""Sources for public datasets in their official split layouts (sources for `shard_source`).

Every adapter reads the official files as they are distributed. A malformed line stops with
`file:line`; a video the split names but the disk lacks, or a class the class list does not
know, becomes a skipped item whose reason carries `file:line` (`file[i]`, the 0-based entry,
for JSON lists). Nothing is guessed: where a list names a video without its extension, the
candidates tried are fixed and documented per adapter.

UCF101, HMDB51, SSV2 / Mini-SSV2, Diving48 V2, IkeaFA, UAV-Human (cross-subject-v1),
Kinetics-150, SynAPT synthetic-150 and a seeded 150-class Moments in Time: `DATASETS` lists
them and `open_dataset` builds one by name.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from .sources import FolderSource, Source, SourceItem, read_class_names


def _skip(rel: str, where: str, reason: str) -> SourceItem:
    return SourceItem(id=rel, label=None, class_name=None, problem=f"{where}: {reason}")


def _video(root: Path, rel: str, where: str, **fields) -> SourceItem:
    """The item for video `root/rel`, or a skip naming `where` when the disk lacks it."""
    path = root / rel
    if not path.is_file():
        return _skip(rel, where, f"missing file {path}")
    return SourceItem(id=rel, path=path, **fields)


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
            yield _video(self.videos, rel, where, label=index[folder], class_name=folder, meta={"list_line": n})


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
                yield _video(self.videos, rel, f"{path.name}:{n}", label=label, class_name=name, meta={"list_line": n})


# ---------------------------------------------------------------------------------------------
# Shared helpers for the adapters below. JSON annotation files are lists of objects, so their
# locator is `file[i]` (the 0-based entry) where a text file's is `file:line`.

DATA = Path(__file__).resolve().parents[1] / "data"  # packaged list files (see data/README.md)

# Tried in this order where a list names a video without its extension.
CANDIDATE_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi")


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def _json_entries(path: Path, keys: tuple[str, ...]) -> list[dict]:
    entries = _read_json(path)
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of objects")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or any(k not in entry for k in keys):
            raise ValueError(f"{path}[{i}]: expected an object with {', '.join(keys)}, got {str(entry)[:120]}")
    return entries


def _check_subset(dataset: str, subset: str, allowed: tuple[str, ...]) -> None:
    if subset not in allowed:
        raise ValueError(f"{dataset}: subset is {' or '.join(allowed)}, got {subset!r}")


def _first_existing(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


# ---------------------------------------------------------------------------------------------


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


def _lookup(videos: Path, folders: list[str], stem: str) -> tuple[Path | None, str]:
    """The first `<videos>/<folder>/<stem><ext>` that exists, and a description of what was tried."""
    folders = list(dict.fromkeys(folders))
    found = _first_existing([videos / f / (stem + ext) for f in folders for ext in CANDIDATE_EXTENSIONS])
    exts = ",".join(e.lstrip(".") for e in CANDIDATE_EXTENSIONS)
    tried = " and ".join(f"{videos / f / stem}.{{{exts}}}" for f in folders)
    return found, tried


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
    the packaged `sim150_val.txt`; the training list was not released, pass one in this format),
    labels in `syn_labels.txt` order. A line's video is the first existing
    `<videos>/<class folder>/<video name>.{mp4,webm,mkv,avi}`; `meta["asset"]` is the asset
    its name shows. A name matching no asset pattern is skipped with the reason.
    """

    def __init__(self, videos: Path, subset: str = "val", list_file: Path | None = None):
        if list_file is None:
            if subset != "val":
                raise ValueError("synthetic150: the training list was not released; pass a list file (--list)")
            list_file = DATA / "sim150_val.txt"
        self.videos, self.list_file = Path(videos), Path(list_file)
        self.class_names = read_class_names(DATA / "syn_labels.txt")
        self.folders = synthetic_folders(self.class_names)

    def items(self) -> Iterator[SourceItem]:
        for n, line in _lines(self.list_file):
            where = f"{self.list_file.name}:{n}"
            folder, _, name = line.partition("/")
            if not folder or not name or "/" in name:
                raise ValueError(f"{self.list_file}:{n}: expected '<class folder>/<video name>', got {line!r}")
            if folder not in self.folders:
                yield _skip(line, where, f"unknown class folder {folder!r}")
                continue
            asset = synthetic_asset(name)
            if asset is None:
                yield _skip(line, where, f"name matches no asset pattern ({', '.join(SYNTHETIC_ASSETS)})")
                continue
            path, tried = _lookup(self.videos, [folder], name)
            if path is None:
                yield _skip(line, where, f"missing file: tried {tried}")
                continue
            label = self.folders[folder]
            yield SourceItem(id=line, label=label, class_name=self.class_names[label], path=path,
                             meta={"list_line": n, "asset": asset})


def choose_classes(names: list[str], count: int, seed: int) -> list[str]:
    """`count` of `names` chosen by seed, sorted by name. The choice ranks names by
    sha256("<seed>:<name>"), so it is the same on every machine and Python version."""
    if not 0 < count <= len(names):
        raise ValueError(f"cannot choose {count} of {len(names)} classes")
    ranked = sorted(names, key=lambda name: hashlib.sha256(f"{seed}:{name}".encode()).hexdigest())
    return sorted(ranked[:count])


class MiT150:
    """Moments in Time, 150 classes chosen with `seed` from the 339 of `moments_categories.txt`
    (`name,index` lines), labelled in sorted name order. `trainingSet.csv` / `validationSet.csv`
    rows are `<class>/<file>.mp4,<class>,<agree>,<disagree>`; videos are `<videos>/<class>/<file>.mp4`
    (`videos` is the official `training/` or `validation/` folder). Rows of unchosen classes are
    left out, not skipped.
    """

    SUBSET_FILES = {"train": "trainingSet.csv", "val": "validationSet.csv"}

    def __init__(self, videos: Path, lists: Path, subset: str = "train", seed: int = 0, num_classes: int = 150):
        _check_subset("MiT", subset, tuple(self.SUBSET_FILES))
        self.videos, self.lists, self.seed = Path(videos), Path(lists), seed
        self.list_file = self.lists / self.SUBSET_FILES[subset]
        self.all_classes = self._categories(self.lists / "moments_categories.txt")
        self.class_names = choose_classes(self.all_classes, num_classes, seed)

    @staticmethod
    def _categories(path: Path) -> list[str]:
        names = []
        for n, line in _lines(path):
            name, _, index = line.rpartition(",")
            if not name or not index.strip().isdigit() or int(index) != len(names) or name in names:
                raise ValueError(f"{path}:{n}: expected '<name>,{len(names)}', got {line!r}")
            names.append(name)
        return names

    def items(self) -> Iterator[SourceItem]:
        index = {name: i for i, name in enumerate(self.class_names)}
        known = set(self.all_classes)
        text = self.list_file.read_text(encoding="utf-8")
        for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not row or not "".join(row).strip():
                continue
            where = f"{self.list_file.name}:{n}"
            if len(row) < 2 or not row[0].strip() or "/" not in row[0]:
                raise ValueError(f"{self.list_file}:{n}: expected '<class>/<file>,<class>,...', got {','.join(row)!r}")
            rel, cls = row[0].strip(), row[1].strip()
            if cls not in known:
                yield _skip(rel, where, f"unknown class {cls!r}")
                continue
            if cls not in index:
                continue
            if rel.split("/")[0] != cls:
                yield _skip(rel, where, f"file is under {rel.split('/')[0]!r} but labelled {cls!r}")
                continue
            yield _video(self.videos, rel, where, label=index[cls], class_name=cls,
                         meta={"list_line": n, "class_seed": self.seed})


# name -> one line for `synapt-fast datasets` and `shard --help`. `open_dataset` builds them.
DATASETS = {
    "ucf101": "UCF101, 101 classes: --lists = ucfTrainTestlist/ (classInd.txt, {train,test}list0K.txt); "
              "--subset train|test, --fold K",
    "hmdb51": "HMDB51, 51 classes: --lists = testTrainMulti_7030_splits/; --subset train|test, --fold K",
    "ssv2": "Something-Something V2, 174 classes: --lists = labels.json, train.json, validation.json; "
            "videos <id>.webm; --subset train|val",
    "mini_ssv2": "Mini-SSV2, SSV2's 87 SynAPT classes (packaged list): same files as ssv2",
    "diving48": "Diving48 V2, 48 classes: --lists = Diving48_vocab.json, Diving48_V2_{train,test}.json; "
                "videos <vid_name>.mp4; --subset train|test",
    "ikea_fa": "IKEA Furniture Assembly, 12 classes: a folder of the 12 class folders",
    "uav_human": "UAV-Human RGB, 155 actions, cross-subject-v1 from the file names; --subset train|test",
    "kinetics150": "Kinetics-150, SynAPT's real pre-training set: packaged lists (or --lists); --subset train|val",
    "synthetic150": "SynAPT synthetic 150 classes: packaged sim150_val.txt, or a list in its format (--list); "
                    "meta asset",
    "mit150": "Moments in Time, 150 of 339 classes chosen by --class-seed: --lists = moments_categories.txt, "
              "trainingSet.csv, validationSet.csv; --subset train|val",
}


def open_dataset(name: str, videos: Path, *, lists: Path | None = None, subset: str = "train", fold: int = 1,
                 list_file: Path | None = None, class_seed: int = 0) -> Source:
    """The source for dataset `name` (a key of DATASETS) with its videos under `videos`."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if list_file is not None and name not in ("synthetic150",):
        raise ValueError(f"{name}: --list is for synthetic150; the official lists go in --lists")
    if name in ("ucf101", "hmdb51", "ssv2", "mini_ssv2", "diving48", "mit150") and lists is None:
        raise ValueError(f"{name}: pass the folder of the official annotation files with --lists")
    if lists is not None and not Path(lists).is_dir():
        raise FileNotFoundError(f"--lists folder {lists} does not exist")
    src = _build(name, Path(videos), lists, subset, fold, list_file, class_seed)
    # Checked here, before any output folder exists, rather than when items() first reads it.
    list_path = getattr(src, "list_file", None)
    if list_path is not None and not list_path.is_file():
        raise FileNotFoundError(f"{list_path}: no such annotation file")
    return src


def _build(name, videos, lists, subset, fold, list_file, class_seed) -> Source:
    if name == "ucf101":
        return UCF101(videos, lists, subset, fold)
    if name == "hmdb51":
        return HMDB51(videos, lists, subset, fold)
    if name == "ssv2":
        return SSV2(videos, lists, subset)
    if name == "mini_ssv2":
        return MiniSSV2(videos, lists, subset)
    if name == "diving48":
        return Diving48(videos, lists, subset)
    if name == "ikea_fa":
        return IkeaFA(videos)
    if name == "uav_human":
        return UAVHuman(videos, subset)
    if name == "kinetics150":
        return Kinetics150(videos, subset, lists)
    if name == "synthetic150":
        return Synthetic150(videos, subset, list_file)
    return MiT150(videos, lists, subset, seed=class_seed)
