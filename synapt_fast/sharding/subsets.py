"""Nested class / samples-per-class subsets of a shard split, written as a new shard split.

Selection (paper §4.2.1: 30 ⊂ 90 ⊂ 150 classes, 250 ⊂ 750 ⊂ 1,000 clips per class):
- classes: one seeded permutation of the source's classes; `num_classes` takes its first n, so a
  smaller class subset is always inside a bigger one with the same seed;
- samples: per class, one seeded order of its samples; `per_class` takes its first k. Classes fed
  by several assets (`meta.json` key `asset`: eldersim, surreact_uestc, ...) interleave the
  assets round-robin (assets in a seeded order, each asset's samples in a seeded order), so any
  prefix holds an equal share of every asset; when an asset runs out the others fill in and the
  shortfall is recorded. Samples without `asset` form one group.
Orders depend on the seed, the class name and each sample's `id`, never on how the source was
sharded. Labels become 0..k-1 in the source's class order.

Writing copies the tar members (the encoded video and `nframes.i32` byte for byte; no
re-encoding); `label.i32`, `pos.i32` (samples are renumbered) and the `label` in `meta.json` are
rewritten. The split is written to `<out>.partial/` and renamed once complete, with DALI
indexes, a manifest and `subset.json` (mapping, seed, asset shares, shortfalls).

Bias-ranked subsets (paper §4.3, Figure 2): classes ranked by a static-feature linear probe's
per-class accuracy (the `bias` command's JSON; by default its out-of-fold train accuracy, since
the probe's plain train accuracy is often 1.0 for every class), cut into `count` windows of `k` consecutive
classes whose starts are evenly spaced from the lowest-accuracy end to the highest:
start_i = round(i * (C - k) / (count - 1)).
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synapt_fast.format.manifest import MANIFEST, Manifest
from .pipeline import shard_name
from synapt_fast.format.index import file_sha256, read_index
from .tarwriter import TarWriter
from synapt_fast.format.verify import ShardError, quick_check

SUBSET_JSON = "subset.json"


class SubsetError(ValueError):
    """A subset that cannot be made; the message names the file or the option at fault."""


@dataclass(frozen=True)
class SampleRef:
    """Where one source sample's members lie, plus what selection needs from it."""

    tar: Path
    key: str
    members: tuple[tuple[str, int, int], ...]  # (extension, data offset, size), in tar order
    label: int
    meta: dict

    @property
    def asset(self) -> str | None:
        return self.meta.get("asset")

    @property
    def sort_id(self) -> tuple[str, str]:
        return (str(self.meta.get("id", "")), self.key)


def _read(f, tar: Path, name: str, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise SubsetError(f"{tar}: member {name} is cut short ({len(data)} of {size} bytes)")
    return data


def read_split(split_dir: Path) -> tuple[Manifest, list[SampleRef]]:
    """The split's manifest and every sample's location, label and metadata (after the quick check
    and every tar's checksum)."""
    split_dir = Path(split_dir)
    try:
        manifest = quick_check(split_dir)
    except ShardError as e:
        raise SubsetError(str(e)) from None
    # The quick check compares sizes only; a subset copies members byte for byte, so every tar's
    # sha256 must match too, or corruption would be copied into a split that `verify` calls ok.
    corrupt = [str(split_dir / s.tar) for s in manifest.shards if file_sha256(split_dir / s.tar) != s.sha256]
    if corrupt:
        raise SubsetError(f"refusing to copy from {split_dir}: sha256 does not match the manifest (corrupt or "
                          f"altered): {', '.join(corrupt)}; `synapt-fast verify {split_dir}` says more")
    samples = []
    for shard in manifest.shards:
        tar = split_dir / shard.tar
        with open(tar, "rb") as f:
            for sample in read_index(split_dir / shard.index):
                by_ext = {ext: (offset, size, name) for ext, offset, size, name in sample}
                offset, size, name = by_ext["label.i32"]
                raw = _read(f, tar, name, offset, size)
                if size != 4:
                    raise SubsetError(f"{tar}: member {name} is {size} bytes, not one int32")
                label = int(np.frombuffer(raw, "<i4")[0])
                if not 0 <= label < len(manifest.class_names):
                    raise SubsetError(f"{tar}: member {name} = {label} is outside the class list")
                offset, size, name = by_ext["meta.json"]
                try:
                    meta = json.loads(_read(f, tar, name, offset, size))
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    raise SubsetError(f"{tar}: member {name} is not valid JSON ({e})") from None
                key = sample[0][3].split(".", 1)[0]
                samples.append(SampleRef(tar, key, tuple((ext, off, sz) for ext, off, sz, _ in sample), label, meta))
    return manifest, samples


def _rng(seed: int, *words: str) -> np.random.Generator:
    # A stable per-class stream: crc32 of the name, not Python's salted hash().
    return np.random.default_rng([seed, *(zlib.crc32(w.encode()) for w in words)])


def class_order(class_names: list[str], seed: int) -> list[str]:
    """The seeded class permutation whose prefixes are the nested class subsets."""
    perm = np.random.default_rng([seed, 0]).permutation(len(class_names))
    return [class_names[i] for i in perm]


def sample_order(samples: list[SampleRef], class_name: str, seed: int) -> list[SampleRef]:
    """One class's samples in the seeded order whose prefixes are the per-class subsets:
    assets interleaved round-robin (seeded asset order), each asset's samples permuted."""
    rng = _rng(seed, "samples", class_name)
    groups: dict[str | None, list[SampleRef]] = {}
    for s in sorted(samples, key=lambda s: s.sort_id):
        groups.setdefault(s.asset, []).append(s)
    assets = sorted(groups, key=lambda a: (a is not None, a or ""))
    assets = [assets[i] for i in rng.permutation(len(assets))]
    queues = [[groups[a][i] for i in rng.permutation(len(groups[a]))] for a in assets]
    out = []
    for depth in range(max(map(len, queues), default=0)):
        out += [q[depth] for q in queues if depth < len(q)]
    return out


@dataclass
class Selection:
    """What a subset holds: new class order, label mapping, samples (source order), records."""

    class_names: list[str]
    label_map: dict[int, int]  # source label -> subset label
    samples: list[SampleRef]
    assets: dict[str, dict[str, int]] = field(default_factory=dict)  # class -> asset -> samples taken
    short: list[str] = field(default_factory=list)  # shortfalls, in words


def select(manifest: Manifest, samples: list[SampleRef], *, seed: int = 0, num_classes: int | None = None,
           per_class: int | None = None, class_names: list[str] | None = None) -> Selection:
    """Pick classes (`num_classes` of the seeded order, or exactly `class_names`) and up to
    `per_class` samples of each (all when None)."""
    source = manifest.class_names
    if class_names is not None:
        unknown = [c for c in class_names if c not in source]
        if unknown:
            raise SubsetError(f"classes not in the source split: {', '.join(unknown[:10])}")
        chosen = set(class_names)
    else:
        n = len(source) if num_classes is None else num_classes
        if not 1 <= n <= len(source):
            raise SubsetError(f"--classes {n}: the source has {len(source)} classes")
        chosen = set(class_order(source, seed)[:n])
    if per_class is not None and per_class < 1:
        raise SubsetError(f"--per-class {per_class}: must be at least 1")
    # Subset labels follow the source's class order: deterministic, and readable next to it.
    old_labels = [i for i, c in enumerate(source) if c in chosen]
    label_map = {old: new for new, old in enumerate(old_labels)}
    by_class: dict[int, list[SampleRef]] = {i: [] for i in old_labels}
    for s in samples:
        if s.label in by_class:
            by_class[s.label].append(s)
    keep: set[int] = set()
    sel = Selection([source[i] for i in old_labels], label_map, [])
    for old in old_labels:
        name = source[old]
        order = sample_order(by_class[old], name, seed)
        taken = order if per_class is None else order[:per_class]
        keep.update(id(s) for s in taken)
        counts: dict[str, int] = {}
        for s in taken:
            counts[str(s.asset)] = counts.get(str(s.asset), 0) + 1
        sel.assets[name] = counts
        if per_class is not None:
            if len(order) < per_class:
                sel.short.append(f"{name}: {len(order)} samples, fewer than --per-class {per_class}")
            groups = {str(s.asset) for s in order}
            share = per_class // max(1, len(groups))
            for asset in sorted(groups):
                if counts.get(asset, 0) < share:
                    sel.short.append(f"{name}: asset {asset} has {counts.get(asset, 0)} samples, share {share}; "
                                     "the other assets filled in")
    sel.samples = [s for s in samples if id(s) in keep]  # source order: shards keep mixing classes
    return sel


def _names_ok(value: str) -> bool:
    return bool(value) and not any(c in value for c in "./\\ -")


def write_subset(src_dir: Path, out_dir: Path, manifest: Manifest, sel: Selection, *, seed: int,
                 info: dict, overwrite: bool = False, set_name: str | None = None, split: str | None = None,
                 max_mb: float = 256.0) -> Manifest:
    """Copy the selected samples into a new shard split at `out_dir` (atomically), with
    `subset.json` = `info` plus the mapping and records of `sel`."""
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    set_name = set_name or out_dir.parent.name
    split = split or out_dir.name
    for what, value in (("set", set_name), ("split", split)):
        if not _names_ok(value):
            raise SubsetError(f"{out_dir}: {what} name {value!r} has '.', '-', '/' or spaces; pass --{what}")
    if out_dir.exists() and not overwrite:
        raise SubsetError(f"{out_dir} exists; pass --overwrite to replace it")
    if out_dir.resolve() == src_dir.resolve():
        raise SubsetError(f"{out_dir}: the output must not be the source split")
    if not sel.samples:
        raise SubsetError(f"{src_dir}: the subset would hold no samples")
    tmp = out_dir.with_name(out_dir.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)  # what a killed earlier run left behind
    tmp.mkdir(parents=True)
    max_bytes = int(max_mb * 1e6) if max_mb else 0
    shards, writer, files = [], None, {}
    counts = dict.fromkeys(sel.class_names, 0)
    frames = 0
    try:
        for pos, s in enumerate(sel.samples):
            f = files.get(s.tar) or files.setdefault(s.tar, open(s.tar, "rb"))
            new_label = sel.label_map[s.label]
            key = f"{pos:08d}"
            members = []
            for ext, offset, size in s.members:
                data = _read(f, s.tar, f"{s.key}.{ext}", offset, size)
                if ext == "label.i32":
                    data = np.array([new_label], dtype="<i4").tobytes()
                elif ext == "pos.i32":
                    data = np.array([pos], dtype="<i4").tobytes()
                elif ext == "meta.json":
                    meta = dict(s.meta, label=new_label, subset_source={"key": s.key, "label": s.label})
                    data = json.dumps(meta, sort_keys=True, ensure_ascii=False).encode()
                elif ext == "nframes.i32":
                    frames += int(np.frombuffer(data, "<i4")[0])
                members.append((ext, data))
            if writer is not None and max_bytes and writer.size_if_added(members) > max_bytes:
                shards.append(writer.close())
                writer = None
            if writer is None:
                writer = TarWriter(tmp / shard_name(set_name, split, len(shards)))
            writer.add(key, members)
            counts[sel.class_names[new_label]] += 1
        shards.append(writer.close())
        writer = None
    except BaseException:
        if writer is not None:
            writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        for f in files.values():
            f.close()
    out = Manifest(set=set_name, split=split, class_names=sel.class_names, class_counts=counts,
                   num_samples=len(sel.samples), num_frames=frames, shards=shards, encoding=manifest.encoding,
                   skipped=[], seed=seed, format_version=manifest.format_version, split_from=manifest.split_from)
    out.save(tmp / MANIFEST)
    record = dict(info, source=str(src_dir), source_manifest_sha256=file_sha256(src_dir / MANIFEST),
                  source_set=manifest.set, source_split=manifest.split, seed=seed, class_names=sel.class_names,
                  label_map={str(k): v for k, v in sel.label_map.items()},
                  source_class_names={str(k): manifest.class_names[k] for k in sel.label_map},
                  class_counts=counts, assets=sel.assets, short=sel.short)
    (tmp / SUBSET_JSON).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    quick_check(tmp)  # what we wrote must pass what every loader checks first
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out_dir)
    return out


def classes_from(path: Path) -> list[str]:
    """The class list of an earlier subset (`subset.json`) or any split (`manifest.json`)."""
    path = Path(path)
    if path.is_dir():
        path = path / SUBSET_JSON if (path / SUBSET_JSON).is_file() else path / MANIFEST
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SubsetError(f"{path}: cannot read a class list ({e})") from None
    names = d.get("class_names")
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise SubsetError(f"{path}: no 'class_names' list")
    return names


def bias_windows(per_class_accuracy: dict[str, float], k: int, count: int) -> list[dict]:
    """`count` windows of `k` classes over the classes ranked by probe accuracy (lowest first,
    ties by name), starts evenly spaced: round(i * (C - k) / (count - 1))."""
    ranked = sorted(per_class_accuracy, key=lambda c: (per_class_accuracy[c], c))
    c = len(ranked)
    if not 1 <= k <= c:
        raise SubsetError(f"--k {k}: the ranking has {c} classes")
    if not 1 <= count <= c - k + 1:
        raise SubsetError(f"--count {count}: {c} classes give at most {c - k + 1} distinct windows of {k}")
    starts = [0] if count == 1 else [round(i * (c - k) / (count - 1)) for i in range(count)]
    windows = []
    for i, start in enumerate(starts):
        names = ranked[start:start + k]
        mean = float(np.mean([per_class_accuracy[n] for n in names]))
        windows.append({"window": i, "rank_start": start, "classes": names, "mean_probe_accuracy": mean,
                        # log2(mean accuracy * k): Eq. 1 with the full probe's per-class accuracies, an
                        # estimate; `synapt-fast bias` on the window's shards measures it properly.
                        "bias_estimate": float(np.log2(mean * k)) if mean > 0 else None})
    return windows


def read_bias_ranking(path: Path, rank_by: str = "train_cv") -> dict[str, float]:
    """Per-class probe accuracies from a `synapt-fast bias` JSON."""
    key = f"per_class_{rank_by}_accuracy"
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SubsetError(f"{path}: cannot read the bias JSON ({e})") from None
    acc = d.get(key)
    if not isinstance(acc, dict) or not acc:
        raise SubsetError(f"{path}: no '{key}' (write it with `synapt-fast bias`)")
    missing = [c for c, v in acc.items() if v is None]
    if missing:
        raise SubsetError(f"{path}: no {rank_by} accuracy for classes {', '.join(missing[:10])} (no samples)")
    return {c: float(v) for c, v in acc.items()}


def bias_window_splits(bias_json: Path, out: Path, *, rank_by: str, k: int, count: int, per_class: int | None,
                       set_name: str | None = None, split: str | None = None) -> list[tuple[Path, dict]]:
    """The bias-ranked windows of `synapt-fast subset --bias-ranked`, planned: per window, its split
    folder and the `info` its subset.json records (the window's `classes` among it). `out` is
    <root>/<set>/<split>; window i goes to <root>/<set>_w<i:02d>/<split>, where `set_name` and
    `split` replace the names taken from `out`."""
    windows = bias_windows(read_bias_ranking(bias_json, rank_by), k, count)
    stem = set_name or out.parent.name
    return [(out.parent.parent / f"{stem}_w{w['window']:02d}" / (split or out.name),
             dict(per_class=per_class, bias_ranked=str(bias_json), rank_by=rank_by, k=k, count=count, **w))
            for w in windows]
