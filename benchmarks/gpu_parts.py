"""Split a file into numbered parts that each fit one transfer, and join them back, byte-exact.

The lent GPU machine receives files in transfers of at most 64 MiB (the working tree included),
so the wheel bundle goes over in parts of `PART_MIB` MiB. `parts.json` beside the parts lists
each part's size and sha256 and the whole file's; `join` refuses a missing, extra-size or
corrupted part, naming it. Standard library only: it runs on the GPU machine before anything is
installed there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

PART_MIB = 60  # < 64 MiB: leaves room for the working tree in the same transfer
MANIFEST = "parts.json"
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def split(path: Path, out_dir: Path, part_bytes: int = PART_MIB << 20) -> list[Path]:
    """`path` as `out_dir/<name>.partNNN` files of at most `part_bytes`, and `out_dir/parts.json`."""
    if part_bytes < 1:
        raise ValueError(f"part size must be positive, got {part_bytes}")
    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(f"{path.name}.part*"):
        old.unlink()
    parts, whole = [], hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            data = f.read(part_bytes)
            if not data and parts:
                break
            whole.update(data)
            part = out_dir / f"{path.name}.part{len(parts):03d}"
            part.write_bytes(data)
            parts.append({"name": part.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
            if len(data) < part_bytes:
                break
    record = {"file": path.name, "bytes": path.stat().st_size, "sha256": whole.hexdigest(), "parts": parts}
    (out_dir / MANIFEST).write_text(json.dumps(record, indent=1) + "\n")
    return [out_dir / p["name"] for p in parts]


class PartsError(ValueError):
    """A part is missing or damaged; the message names it."""


def join(parts_dir: Path, out_path: Path | None = None) -> Path:
    """The file `parts_dir/parts.json` describes, rebuilt from its parts and checked."""
    parts_dir = Path(parts_dir)
    manifest = parts_dir / MANIFEST
    if not manifest.is_file():
        raise PartsError(f"{manifest}: not found (split the file with gpu_parts.split first)")
    record = json.loads(manifest.read_text())
    out_path = Path(out_path) if out_path else parts_dir / record["file"]
    for p in record["parts"]:
        part = parts_dir / p["name"]
        if not part.is_file():
            raise PartsError(f"{part}: missing ({len(record['parts'])} parts expected)")
        if part.stat().st_size != p["bytes"]:
            raise PartsError(f"{part}: {part.stat().st_size} bytes, expected {p['bytes']} (incomplete transfer?)")
        if _sha256(part) != p["sha256"]:
            raise PartsError(f"{part}: sha256 differs from {MANIFEST} (damaged in transfer)")
    tmp = out_path.with_name(out_path.name + ".partial")
    with open(tmp, "wb") as out:
        for p in record["parts"]:
            with open(parts_dir / p["name"], "rb") as f:
                while block := f.read(_CHUNK):
                    out.write(block)
    if _sha256(tmp) != record["sha256"]:
        tmp.unlink()
        raise PartsError(f"{out_path}: joined file's sha256 differs from {MANIFEST}")
    tmp.replace(out_path)
    return out_path
