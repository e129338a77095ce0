"""Turn a source into a shard split: order, transcode in parallel, pack, journal, manifest.

Determinism: inputs are sorted by id, then permuted with the seed (so every shard mixes
classes); worker results are consumed in that order, so the bytes do not depend on the number
of workers. Resumability: each finished shard is appended to a journal only after its tar and
index have their final names; a rerun of the same command checks the journaled shards
(size and sha256), drops anything after the last good one, and continues from there, ending
byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from synapt_fast import __version__
from synapt_fast.atomic import write_atomic
from synapt_fast.format.ivf import FRAMES, KEYFRAMES
from synapt_fast.format.manifest import MANIFEST, Manifest
from synapt_fast.format.index import ShardInfo, file_sha256
from .tarwriter import TarWriter
from .order import order_items
from .sources import Source, SourceItem
from synapt_fast.format.codecs import shard_refusal
from .transcode import EncodeOptions, Encoded
from .workers import results

PART_STRIDE = 10_000  # shard indices of part p start at p * PART_STRIDE


@dataclass(frozen=True)
class ShardOptions:
    """How a split is cut into shards. Encoding options live in EncodeOptions."""

    set_name: str
    split: str
    max_count: int = 0  # samples per shard; 0 = no limit
    max_mb: float = 256.0  # target shard size; 0 = no limit
    seed: int = 0
    workers: int = 1
    num_parts: int = 1
    part: int = 0

    def __post_init__(self):
        for name, value in (("set_name", self.set_name), ("split", self.split)):
            if not value or any(c in value for c in "./\\ -"):
                raise ValueError(f"{name} {value!r} must be non-empty without '.', '/', '-' or spaces")
        if not 0 <= self.part < self.num_parts:
            raise ValueError(f"part {self.part} outside 0..{self.num_parts - 1}")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")


@dataclass
class Summary:
    set: str
    split: str
    out_dir: str
    samples: int
    skipped: int
    shards: int
    bytes: int
    frames: int
    seconds: float
    clips_per_s: float
    resumed_shards: int
    skipped_items: list[dict] = field(default_factory=list)
    manifest: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def shard_name(set_name: str, split: str, index: int) -> str:
    return f"{set_name}-{split}-{index:06d}.tar"


def manifest_name(num_parts: int, part: int) -> str:
    return MANIFEST if num_parts == 1 else f"manifest.part-{part:04d}-of-{num_parts:04d}.json"


def _members(key: str, item: SourceItem, enc: Encoded, fps: float) -> list[tuple[str, bytes]]:
    meta = {
        "id": item.id,
        "class_name": item.class_name,
        "label": item.label,
        "num_frames": enc.num_frames,
        "fps": fps,
        "width": enc.width,
        "height": enc.height,
        **enc.meta,
        **item.meta,
    }
    return [
        (enc.ext, enc.data),
        ("label.i32", np.array([item.label], dtype="<i4").tobytes()),
        ("nframes.i32", np.array([enc.num_frames], dtype="<i4").tobytes()),
        # The key as a number: DALI exposes sample keys only as strings.
        ("pos.i32", np.array([int(key)], dtype="<i4").tobytes()),
        ("meta.json", json.dumps(meta, sort_keys=True, ensure_ascii=False).encode()),
        # Where each keyframe starts, so that the loader can decode from the one before its clip.
        *([(KEYFRAMES, enc.keyframes.tobytes())] if enc.keyframes is not None else []),
        # Where every frame starts, so that it can also decode each sampled frame from its own keyframe.
        *([(FRAMES, enc.frame_offsets.tobytes())] if enc.frame_offsets is not None else []),
    ]


class _Journal:
    """Append-only record of finished shards: a header (fingerprint), then one line per shard."""

    def __init__(self, path: Path, fingerprint: str):
        self.path, self.fingerprint = path, fingerprint

    def load(self) -> list[dict]:
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        try:
            head = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            head = {}
        if head.get("fingerprint") != self.fingerprint:
            raise RuntimeError(
                f"{self.path} belongs to a run with different inputs or options; "
                "rerun with the same command, or pass --overwrite to start again"
            )
        records = []
        for line in lines[1:]:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a kill: everything after it is redone
        return records

    def reset(self, records: list[dict]) -> None:
        lines = [json.dumps({"fingerprint": self.fingerprint})] + [json.dumps(r) for r in records]
        write_atomic(self.path, "".join(line + "\n" for line in lines), durable=True)

    def append(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _still_good(out_dir: Path, rec: dict) -> bool:
    if rec.get("shard") is None:
        return True
    info = ShardInfo(**rec["shard"])
    tar, idx = out_dir / info.tar, out_dir / info.index
    return (
        tar.is_file()
        and idx.is_file()
        and tar.stat().st_size == info.bytes
        and file_sha256(tar) == info.sha256
        and file_sha256(idx) == info.index_sha256
    )


def shard_source(
    source: Source,
    out_dir: Path,
    opts: ShardOptions,
    encode: EncodeOptions = EncodeOptions(),
    *,
    overwrite: bool = False,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> Summary:
    """Write (or finish writing) one split of a shard set into `out_dir`.

    `on_progress(done, total, skipped)` is called after each input is handled.
    """
    if refusal := shard_refusal(encode.codec, encode.short_side):
        raise ValueError(refusal)
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    class_names = list(source.class_names)
    ordered = order_items(source, opts.seed)
    lo = len(ordered) * opts.part // opts.num_parts
    hi = len(ordered) * (opts.part + 1) // opts.num_parts
    mine = ordered[lo:hi]

    fingerprint = hashlib.sha256(
        json.dumps(
            {"ids": [it.id for it in ordered], "classes": class_names, "encode": encode.to_dict(),
             "shard": asdict(opts) | {"workers": None}, "version": __version__},
            sort_keys=True,
        ).encode()
    ).hexdigest()
    suffix = "" if opts.num_parts == 1 else f".part-{opts.part:04d}"
    journal = _Journal(out_dir / f".journal-{opts.set_name}-{opts.split}{suffix}.jsonl", fingerprint)
    first_index = opts.part * PART_STRIDE
    prefix = f"{opts.set_name}-{opts.split}-"
    if overwrite:
        journal.path.unlink(missing_ok=True)

    records = journal.load()
    good = []
    for rec in records:
        if not _still_good(out_dir, rec):
            break
        good.append(rec)
    journal.reset(good)
    keep = {rec["shard"]["tar"] for rec in good if rec.get("shard")}
    keep |= {Path(t).with_suffix(".idx").name for t in keep}
    # Stale shards of this part (after the last good one) and any partial files go.
    for p in out_dir.iterdir():
        if p.name.endswith(".partial") or (
            p.name.startswith(prefix) and p.suffix in (".tar", ".idx") and p.name not in keep
            and first_index <= _index_of(p.name, prefix) < first_index + PART_STRIDE
        ):
            p.unlink()

    done = sum(rec["count"] for rec in good)
    resumed = sum(1 for rec in good if rec.get("shard"))
    shard_index = first_index + resumed
    skipped_so_far = sum(len(rec["skipped"]) for rec in good)
    max_bytes = int(opts.max_mb * 1e6) if opts.max_mb else 0
    total = len(mine)
    if on_progress:
        on_progress(done, total, skipped_so_far)

    writer: TarWriter | None = None
    pending = {"start": lo + done, "count": 0, "skipped": [], "class_counts": {}, "frames": 0}

    def close_shard():
        nonlocal writer, shard_index, pending
        info = writer.close() if writer is not None else None
        journal.append(dict(pending, shard=asdict(info) if info else None))
        if info is not None:
            shard_index += 1
        writer = None
        pending = {"start": pending["start"] + pending["count"], "count": 0, "skipped": [],
                   "class_counts": {}, "frames": 0}

    jobs = [(it, encode) for it in mine[done:]]
    try:
        for pos, (item, result) in enumerate(zip(mine[done:], results(jobs, opts.workers)), start=lo + done):
            if isinstance(result, str):
                pending["skipped"].append({"id": item.id, "reason": result})
            else:
                members = _members(f"{pos:08d}", item, result, encode.fps)
                if writer is not None and max_bytes and writer.size_if_added(members) > max_bytes:
                    close_shard()
                if writer is None:
                    if shard_index - first_index >= PART_STRIDE:
                        raise RuntimeError(f"more than {PART_STRIDE} shards in one part; raise --shard-mb")
                    writer = TarWriter(out_dir / shard_name(opts.set_name, opts.split, shard_index))
                writer.add(f"{pos:08d}", members)
                counts = pending["class_counts"]
                counts[item.class_name] = counts.get(item.class_name, 0) + 1
                pending["frames"] += result.num_frames
            pending["count"] += 1
            done += 1
            skipped_so_far += isinstance(result, str)
            if writer is not None and opts.max_count and writer.samples >= opts.max_count:
                close_shard()
            if on_progress:
                on_progress(done, total, skipped_so_far)
        if writer is not None or pending["count"]:
            close_shard()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise

    records = journal.load()
    manifest = _manifest(records, class_names, encode, opts, getattr(source, "split_from", None))
    manifest.save(out_dir / manifest_name(opts.num_parts, opts.part))
    seconds = time.perf_counter() - t0
    processed = total - sum(rec["count"] for rec in good)
    return Summary(
        set=opts.set_name, split=opts.split, out_dir=str(out_dir), samples=manifest.num_samples,
        skipped=len(manifest.skipped), shards=len(manifest.shards),
        bytes=sum(s.bytes for s in manifest.shards), frames=manifest.num_frames, seconds=round(seconds, 3),
        clips_per_s=round(processed / seconds, 2) if seconds > 0 else 0.0, resumed_shards=resumed,
        skipped_items=manifest.skipped, manifest=str(out_dir / manifest_name(opts.num_parts, opts.part)),
    )


def _index_of(name: str, prefix: str) -> int:
    stem = name[len(prefix):].split(".")[0]
    return int(stem) if stem.isdigit() else -1


def _manifest(records: list[dict], class_names: list[str], encode: EncodeOptions, opts: ShardOptions,
              split_from: dict | None) -> Manifest:
    counts = dict.fromkeys(class_names, 0)
    for rec in records:
        for name, n in rec["class_counts"].items():
            counts[name] += n
    return Manifest(
        set=opts.set_name,
        split=opts.split,
        class_names=class_names,
        class_counts=counts,
        num_samples=sum(counts.values()),
        num_frames=sum(rec["frames"] for rec in records),
        shards=[ShardInfo(**rec["shard"]) for rec in records if rec.get("shard")],
        encoding=encode.to_dict(),
        skipped=[s for rec in records for s in rec["skipped"]],
        seed=opts.seed,
        part=None if opts.num_parts == 1 else {"index": opts.part, "count": opts.num_parts},
        split_from=split_from,
    )


def merge_parts(split_dir: Path) -> Manifest:
    """Combine every part manifest of a split folder into `manifest.json`."""
    split_dir = Path(split_dir)
    paths = sorted(split_dir.glob("manifest.part-*-of-*.json"))
    if not paths:
        raise FileNotFoundError(f"{split_dir}: no part manifests (manifest.part-*-of-*.json)")
    parts = [Manifest.load(p) for p in paths]
    count = parts[0].part["count"]
    have = sorted(m.part["index"] for m in parts)
    if have != list(range(count)) or any(m.part["count"] != count for m in parts):
        raise ValueError(f"{split_dir}: need parts 0..{count - 1} of {count}, found {have}")
    first = parts[0]
    for m, p in zip(parts, paths):
        if (m.class_names, m.encoding, m.set, m.split, m.seed) != (
            first.class_names, first.encoding, first.set, first.split, first.seed
        ):
            raise ValueError(f"{p}: classes, encoding, set, split or seed differ from {paths[0].name}")
    counts = {name: sum(m.class_counts[name] for m in parts) for name in first.class_names}
    merged = Manifest(
        set=first.set, split=first.split, class_names=first.class_names, class_counts=counts,
        num_samples=sum(counts.values()), num_frames=sum(m.num_frames for m in parts),
        shards=[s for m in parts for s in m.shards], encoding=first.encoding,
        skipped=[s for m in parts for s in m.skipped], seed=first.seed, split_from=first.split_from,
    )
    merged.save(split_dir / MANIFEST)
    return merged
