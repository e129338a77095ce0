"""Sources for public datasets in their official split layouts (sources for `shard_source`).

Every adapter reads the official files as they are distributed. A malformed line stops with
`file:line`; a video the split names but the disk lacks, or a class the class list does not
know, becomes a skipped item whose reason carries `file:line` (`file[i]`, the 0-based entry,
for JSON lists). Nothing is guessed: where a list names a video without its extension, the
candidates tried are fixed and documented per adapter.

One adapter per module; `DATASETS` below is the one list of them. `synapt-fast datasets`, the
`shard --dataset` help and `open_dataset` all read it, so a new adapter is one module and one
entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..sources import Source, split_record
from .common import CANDIDATE_EXTENSIONS, DATA
from .diving48 import Diving48
from .hmdb51 import HMDB51
from .ikea_fa import IKEA_FA_CLASSES, IkeaFA
from .kinetics150 import Kinetics150
from .mit150 import MiT150, choose_classes
from .ssv2 import SSV2, MiniSSV2, ssv2_class
from .synthetic150 import SYNTHETIC_ASSETS, Synthetic150, synthetic_asset, synthetic_folders
from .uav_human import UAV_HUMAN_CSV1_TRAIN, UAVHuman
from .ucf101 import UCF101

__all__ = ["CANDIDATE_EXTENSIONS", "DATA", "DATASETS", "HMDB51", "IKEA_FA_CLASSES", "SSV2", "SYNTHETIC_ASSETS",
           "UAV_HUMAN_CSV1_TRAIN", "UCF101", "Dataset", "Diving48", "IkeaFA", "Kinetics150", "MiT150", "MiniSSV2",
           "OpenArgs", "Synthetic150", "UAVHuman", "choose_classes", "open_dataset", "ssv2_class",
           "synthetic_asset", "synthetic_folders"]


@dataclass(frozen=True)
class OpenArgs:
    """What `synapt-fast shard --dataset` passes on; each adapter takes the part it needs."""

    videos: Path
    lists: Path | None
    subset: str
    fold: int
    list_file: Path | None
    class_seed: int


@dataclass(frozen=True)
class Dataset:
    title: str  # the name the paper's tables use
    files: str  # one line for `synapt-fast datasets`: the files it reads and the options it takes
    open: Callable[[OpenArgs], Source]
    subsets: tuple[str, ...]  # the official subsets; anything else is refused before a file is read
    needs_lists: bool = False  # the official annotation files must be given (--lists)
    takes_list_file: bool = False  # reads a list in its own format (--list)


DATASETS = {
    "ucf101": Dataset(
        "UCF101", "UCF101, 101 classes: --lists = ucfTrainTestlist/ (classInd.txt, {train,test}list0K.txt); "
                  "--subset train|test, --fold K",
        lambda a: UCF101(a.videos, a.lists, a.subset, a.fold), needs_lists=True, subsets=("train", "test")),
    "hmdb51": Dataset(
        "HMDB51", "HMDB51, 51 classes: --lists = testTrainMulti_7030_splits/; --subset train|test, --fold K",
        lambda a: HMDB51(a.videos, a.lists, a.subset, a.fold), needs_lists=True, subsets=("train", "test")),
    "ssv2": Dataset(
        "SSV2", "Something-Something V2, 174 classes: --lists = labels.json, train.json, validation.json; "
                "videos <id>.webm; --subset train|val",
        lambda a: SSV2(a.videos, a.lists, a.subset), needs_lists=True, subsets=("train", "val")),
    "mini_ssv2": Dataset(
        "Mini-SSV2", "Mini-SSV2, SSV2's 87 SynAPT classes (packaged list): same files as ssv2",
        lambda a: MiniSSV2(a.videos, a.lists, a.subset), needs_lists=True, subsets=("train", "val")),
    "diving48": Dataset(
        "Diving48", "Diving48 V2, 48 classes: --lists = Diving48_vocab.json, Diving48_V2_{train,test}.json; "
                    "videos <vid_name>.mp4; --subset train|test",
        lambda a: Diving48(a.videos, a.lists, a.subset), needs_lists=True, subsets=("train", "test")),
    "ikea_fa": Dataset(
        "IkeaFA", "IKEA Furniture Assembly, 12 classes: the folder of the 12 class folders; --subset train|val, "
                  "whole assembly videos held out by the packaged PPMA val.csv (or --lists = a folder with a "
                  "val.csv in its form)",
        lambda a: IkeaFA(a.videos, a.subset, a.lists / "val.csv" if a.lists else None), subsets=("train", "val")),
    "uav_human": Dataset(
        "UAV-Human", "UAV-Human RGB, 155 actions, cross-subject-v1 from the file names; --subset train|test",
        lambda a: UAVHuman(a.videos, a.subset), subsets=("train", "test")),
    "kinetics150": Dataset(
        "Kinetics-150", "Kinetics-150, SynAPT's real pre-training set: packaged lists (or --lists); "
                        "--subset train|val",
        lambda a: Kinetics150(a.videos, a.subset, a.lists), subsets=("train", "val")),
    "synthetic150": Dataset(
        "Synthetic-150", "SynAPT synthetic 150 classes: packaged sim150_val.txt, or a list in its format or in "
                         "PPMA's csv form, a27/<name>.mp4;0 (--list); meta asset",
        lambda a: Synthetic150(a.videos, a.subset, a.list_file), takes_list_file=True, subsets=("train", "val")),
    "mit150": Dataset(
        "MiT-150", "Moments in Time, 150 of 339 classes chosen by --class-seed: --lists = moments_categories.txt, "
                   "trainingSet.csv, validationSet.csv; --subset train|val",
        lambda a: MiT150(a.videos, a.lists, a.subset, seed=a.class_seed), needs_lists=True, subsets=("train", "val")),
}


def open_dataset(name: str, videos: Path, *, lists: Path | None = None, subset: str = "train", fold: int = 1,
                 list_file: Path | None = None, class_seed: int = 0) -> Source:
    """The source for dataset `name` (a key of DATASETS) with its videos under `videos`."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    dataset = DATASETS[name]
    if subset not in dataset.subsets:
        raise ValueError(f"{dataset.title}: subset is {' or '.join(dataset.subsets)}, got {subset!r}")
    if list_file is not None and not dataset.takes_list_file:
        takers = ", ".join(n for n, d in DATASETS.items() if d.takes_list_file)
        raise ValueError(f"{name}: --list is for {takers}; the official lists go in --lists")
    if dataset.needs_lists and lists is None:
        raise ValueError(f"{name}: pass the folder of the official annotation files with --lists")
    if lists is not None and not Path(lists).is_dir():
        raise FileNotFoundError(f"--lists folder {lists} does not exist")
    src = dataset.open(OpenArgs(Path(videos), lists, subset, fold, list_file, class_seed))
    # Checked here, before any output folder exists, rather than when items() first reads it.
    list_path = getattr(src, "list_file", None)
    if list_path is not None and not list_path.is_file():
        raise FileNotFoundError(f"{list_path}: no such annotation file")
    # Which file chose the clips goes into the manifest (split_from).
    record = split_record(list_path) if list_path is not None else {}
    rule = getattr(src, "split_rule", None)  # how the adapter reads the file, where that is not plain
    src.split_from = {"dataset": name, "subset": subset, **record, **({"rule": rule} if rule else {})}
    return src
