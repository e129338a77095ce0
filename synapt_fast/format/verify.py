"""Check shard splits against their manifests and indexes before anything reads them.

DALI segfaults on a truncated tar that has a fresh index and stops the whole pipeline on one bad
clip, so these checks stand between users and those failures. `quick_check` is cheap (sizes,
index checksums and bounds) and runs before every loader start; `verify_split` adds full
checksums, the tar structure, sample members and, optionally, a DALI decode of every clip.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np

from .codecs import DecodeDeviceError, decode_device
from . import annexb
from .ivf import FRAMES, KEYFRAMES, frame_offsets, keyframe_table
from .manifest import MANIFEST, Manifest, ManifestError
from .index import file_sha256, read_index

REQUIRED_MEMBERS = ("label.i32", "nframes.i32", "pos.i32", "meta.json")


def required_members(video_ext: str, format_version: int = 3) -> tuple[str, ...]:
    """Every member a sample of a split in this container (and shard format) must have."""
    if video_ext == "ivf":
        tables = (KEYFRAMES, *((FRAMES,) if format_version >= 3 else ()))
    else:  # the loader cuts H.264 / HEVC elementary streams at keyframes too
        tables = (KEYFRAMES,) if video_ext in annexb.EXTS else ()
    return (video_ext, *REQUIRED_MEMBERS, *tables)


class ShardError(ValueError):
    """A shard split that must not be opened; the message names the file and the problem."""


def split_dirs(path: Path) -> list[Path]:
    """A split folder itself, or every split folder (holding a manifest) under a set folder
    (`<set>/<split>`) or a shards root (`<root>/<set>/<split>`)."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return [path]
    found = sorted(p.parent for p in path.glob(f"*/{MANIFEST}")) or sorted(
        p.parent for p in path.glob(f"*/*/{MANIFEST}"))
    if not found:
        raise ShardError(f"{path}: no {MANIFEST} here, in its sub-folders or theirs")
    return found


def _tar_problem(split_dir: Path, shard) -> str | None:
    """A missing tar, or one whose size differs from the manifest's (truncated or altered)."""
    tar = split_dir / shard.tar
    if not tar.is_file():
        return f"{tar}: missing"
    size = tar.stat().st_size
    if size != shard.bytes:
        what = "truncated" if size < shard.bytes else "larger than recorded"
        return f"{tar}: {what} ({size} bytes, manifest says {shard.bytes})"
    return None


def _check_index(split_dir: Path, shard, video_ext: str, problems: list[str], format_version: int = 3) -> list | None:
    idx_path = split_dir / shard.index
    try:
        if file_sha256(idx_path) != shard.index_sha256:
            problems.append(f"{idx_path}: index checksum does not match the manifest (stale index?)")
            return None
        index = read_index(idx_path)
    except (OSError, ValueError) as e:
        problems.append(f"{idx_path}: {e}")
        return None
    if len(index) != shard.samples:
        problems.append(f"{idx_path}: {len(index)} samples, manifest says {shard.samples}")
    for n, sample in enumerate(index):
        exts = {ext for ext, *_ in sample}
        missing = [e for e in required_members(video_ext, format_version) if e not in exts]
        if missing:
            problems.append(f"{idx_path}: sample {n} lacks members {missing}")
        for ext, offset, size, name in sample:
            if offset % 512 or offset + size > shard.bytes:
                problems.append(f"{idx_path}: member {name} at {offset}+{size} lies outside {shard.tar}")
    return index


def _total_problems(split_dir: Path, manifest: Manifest) -> list[str]:
    """The manifest's totals against its own shard list: the trainer sizes its epochs and
    schedule from `num_samples`, so an edited total must not get past the loaders."""
    problems = []
    in_shards = sum(s.samples for s in manifest.shards)
    if in_shards != manifest.num_samples:
        problems.append(f"{split_dir / MANIFEST}: num_samples is {manifest.num_samples}, its shards hold {in_shards}")
    per_class = sum(manifest.class_counts.values())
    if per_class != manifest.num_samples:
        problems.append(f"{split_dir / MANIFEST}: class_counts add up to {per_class}, num_samples is "
                        f"{manifest.num_samples}")
    return problems


def quick_check(split_dir: Path) -> Manifest:
    """Manifest, file sizes and index bounds; raises ShardError naming every problem found."""
    split_dir = Path(split_dir)
    try:
        manifest = Manifest.load(split_dir)
    except ManifestError as e:
        raise ShardError(str(e)) from None
    problems: list[str] = []
    if not manifest.shards:
        problems.append(f"{split_dir}: manifest lists no shards")
    for shard in manifest.shards:
        problem = _tar_problem(split_dir, shard)
        if problem:
            problems.append(problem)
            continue
        _check_index(split_dir, shard, manifest.video_ext, problems, manifest.format_version)
    problems += _total_problems(split_dir, manifest)
    if problems:
        raise ShardError("refusing to load shards:\n  " + "\n  ".join(problems))
    return manifest


def verify_split(split_dir: Path, decode: bool = False) -> tuple[Manifest | None, list[str]]:
    """Every check; returns the manifest (if it loads) and a list of problems, each naming a file."""
    split_dir = Path(split_dir)
    try:
        manifest = Manifest.load(split_dir)
    except ManifestError as e:
        return None, [str(e)]
    problems: list[str] = []
    total = 0
    labels_ok = True
    for shard in manifest.shards:
        tar = split_dir / shard.tar
        problem = _tar_problem(split_dir, shard)
        if problem:
            problems.append(problem)
            continue
        if file_sha256(tar) != shard.sha256:
            problems.append(f"{tar}: sha256 does not match the manifest (corrupt or altered)")
            continue
        index = _check_index(split_dir, shard, manifest.video_ext, problems, manifest.format_version)
        if index is None:
            continue
        # The tar structure must agree with the index member by member.
        by_name = {name: (offset, size) for sample in index for _, offset, size, name in sample}
        try:
            with tarfile.open(tar) as tf:
                members = [m for m in tf.getmembers() if m.isfile()]
                for m in members:
                    if by_name.get(m.name) != (m.offset_data, m.size):
                        problems.append(f"{tar}: member {m.name} at {m.offset_data}+{m.size} disagrees with the index")
                if len(members) != len(by_name):
                    problems.append(f"{tar}: {len(members)} members, index lists {len(by_name)}")
                for sample in index:
                    comp = {ext: name for ext, _, _, name in sample}
                    label = int(np.frombuffer(tf.extractfile(comp["label.i32"]).read(), "<i4")[0])
                    if not 0 <= label < len(manifest.class_names):
                        problems.append(f"{tar}: {comp['label.i32']} = {label} outside the class list")
                        labels_ok = False
                    if KEYFRAMES in comp:
                        problem = _keyframes_problem(tf, comp[manifest.video_ext], comp[KEYFRAMES])
                        if problem:
                            problems.append(f"{tar}: {problem}")
                    if manifest.format_version >= 3 and manifest.video_ext == "ivf":
                        problem = _frames_problem(tf, comp[manifest.video_ext], comp.get(FRAMES))
                        if problem:
                            problems.append(f"{tar}: {problem}")
        except (tarfile.TarError, OSError, KeyError) as e:
            problems.append(f"{tar}: unreadable tar ({e})")
            continue
        total += shard.samples
    if not problems:
        problems += _total_problems(split_dir, manifest)
    if decode and not problems and labels_ok:
        problems += decode_check(split_dir, manifest)
    return manifest, problems


def _keyframes_problem(tf: tarfile.TarFile, video: str, keyframes: str) -> str | None:
    """The loader cuts clips where the keyframe table says: it must match the stream's bytes."""
    ext = video.rsplit(".", 1)[-1]
    try:
        data = tf.extractfile(video).read()
        table = annexb.keyframe_table(data, ext) if ext in annexb.EXTS else keyframe_table(data)
    except ValueError as e:
        return f"{video}: {e}"
    stored = np.frombuffer(tf.extractfile(keyframes).read(), "<i4")
    if stored.shape != (table.size,) or not np.array_equal(stored.reshape(-1, 2), table):
        return f"{keyframes} does not match the keyframes of {video}"
    return None


def _frames_problem(tf: tarfile.TarFile, video: str, offsets: str | None) -> str | None:
    """The loader ends each piece of a clip where the frame table says: it must match the stream."""
    if offsets is None:
        return f"{video}: no {FRAMES} member (format 3 stores one beside every IVF clip)"
    try:
        table = frame_offsets(tf.extractfile(video).read())
    except ValueError as e:
        return f"{video}: {e}"
    if not np.array_equal(np.frombuffer(tf.extractfile(offsets).read(), "<i4"), table):
        return f"{offsets} does not match the frames of {video}"
    return None


def decode_check(split_dir: Path, manifest: Manifest, batch_size: int = 4) -> list[str]:
    """Decode every clip with DALI (CPU when the codec allows) and compare frame counts."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    try:
        device = decode_device(manifest.codec, encoding=manifest.encoding)
    except DecodeDeviceError as e:
        return [f"{split_dir}: cannot decode-check: {e}"]
    paths = [str(split_dir / s.tar) for s in manifest.shards]
    index_paths = [str(split_dir / s.index) for s in manifest.shards]

    @pipeline_def(batch_size=batch_size, num_threads=2, device_id=None if device == "cpu" else 0,
                  prefetch_queue_depth=1)
    def pipe():
        video, nframes, meta = fn.readers.webdataset(
            paths=paths, index_paths=index_paths, ext=[manifest.video_ext, "nframes.i32", "meta.json"],
            dtypes=[types.UINT8, types.INT32, types.UINT8], missing_component_behavior="error",
            dont_use_mmap=True, name="reader")
        raw = {"build_index": False} if manifest.video_ext in annexb.EXTS else {}  # no timestamps
        frames = fn.decoders.video(video, device="cpu" if device == "cpu" else "mixed", **raw)
        return frames.shape(), nframes, meta

    p = pipe()
    p.build()
    problems, seen = [], 0
    while seen < manifest.num_samples:
        shapes, nframes, meta = p.run()
        shapes = shapes.as_cpu() if hasattr(shapes, "as_cpu") else shapes
        for i in range(len(shapes)):
            if seen >= manifest.num_samples:
                break
            got = int(np.array(shapes[i])[0])
            want = int(np.array(nframes[i])[0])
            if got != want:
                clip = json.loads(bytes(np.array(meta[i])).decode()).get("id", "?")
                problems.append(f"{split_dir}: clip {clip} decodes to {got} frames, nframes says {want}")
            seen += 1
    return problems
