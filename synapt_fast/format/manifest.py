"""`manifest.json`: the per-split record of a shard set (format contract: SHARD_FORMAT.md)."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from synapt_fast.atomic import write_atomic

from .index import ShardInfo

FORMAT = "synapt-fast-shards"
# 3: IVF clips (VP9; MJPEG, fourcc MJPG, from this version's later writers, Matroska before)
# also carry a frame offset table, and H.264 clips are Annex-B streams with a keyframe table
# (HEVC stays in MP4); 2: VP9 clips in IVF with a keyframe table, H.264 / HEVC in
# MP4 decoded from frame 0; 1: VP9 in WebM. All three are read.
FORMAT_VERSION = 3
READ_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"


class ManifestError(ValueError):
    pass


@dataclass
class Manifest:
    set: str
    split: str
    class_names: list[str]
    class_counts: dict[str, int]
    num_samples: int
    num_frames: int
    shards: list[ShardInfo]
    encoding: dict
    skipped: list[dict] = field(default_factory=list)  # {"id": ..., "reason": ...}
    seed: int = 0
    part: dict | None = None  # {"index": p, "count": P} for one slice of a job array
    split_from: dict | None = None  # the list file that chose the clips: {"file", "sha256", ...}; None: a folder
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def codec(self) -> str:
        return self.encoding["codec"]

    @property
    def video_ext(self) -> str:
        return self.encoding["ext"]

    def to_json(self) -> str:
        d = asdict(self)
        return json.dumps(d, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self, path: Path) -> None:
        write_atomic(Path(path), self.to_json(), durable=True)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ManifestError(f"{path}: no manifest (is this a shard split folder?)") from None
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}: not valid JSON ({e})") from None
        if d.get("format") != FORMAT:
            raise ManifestError(f"{path}: not a {FORMAT} manifest")
        if d.get("format_version") not in READ_VERSIONS:
            raise ManifestError(
                f"{path}: format_version {d.get('format_version')} is not supported (this is {FORMAT_VERSION})"
            )
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        missing = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING} - set(d)
        if unknown or missing:
            raise ManifestError(f"{path}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        try:
            d["shards"] = [ShardInfo(**s) for s in d["shards"]]
        except TypeError as e:
            raise ManifestError(f"{path}: bad shard entry ({e})") from None
        return cls(**d)
