"""The per-shard DALI index (`<shard>.idx`) and the shard records a manifest lists.

DALI's webdataset reader takes an index file per tar (format `v1.2 <samples>`, then one line per
sample of `ext offset size name` quadruples): with it DALI seeks straight to each member instead of
scanning the tar. The writer (`sharding/tarwriter.py`) produces it in the same pass as the tar;
the reader and `verify` parse it here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

INDEX_VERSION = "v1.2"


@dataclass(frozen=True)
class ShardInfo:
    tar: str
    index: str
    samples: int
    bytes: int
    sha256: str
    index_sha256: str


def index_text(sample_lines: list[str]) -> str:
    """The whole index file for samples whose member quadruples are already joined per line."""
    return f"{INDEX_VERSION} {len(sample_lines)}\n" + "".join(line + "\n" for line in sample_lines)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_index(path: Path) -> list[list[tuple[str, int, int, str]]]:
    """Parse a DALI v1.2 index: per sample, a list of (ext, data offset, size, member name)."""
    lines = Path(path).read_text().splitlines()
    if not lines:
        raise ValueError(f"{path}: empty index")
    head = lines[0].split()
    if len(head) != 2 or head[0] != INDEX_VERSION or not head[1].isdigit():
        raise ValueError(f"{path}: bad index header {lines[0]!r}")
    samples = []
    for n, line in enumerate(lines[1:], start=2):
        f = line.split()
        if not f or len(f) % 4:
            raise ValueError(f"{path}:{n}: malformed index line")
        samples.append([(f[i], int(f[i + 1]), int(f[i + 2]), f[i + 3]) for i in range(0, len(f), 4)])
    if len(samples) != int(head[1]):
        raise ValueError(f"{path}: header says {head[1]} samples, found {len(samples)}")
    return samples
