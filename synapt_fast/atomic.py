"""Files that appear whole or not at all: every writer of a result, manifest or checkpoint uses this.

A reader (a resumed run, `verify`, `report`) must never meet half a file under its final name, so
each file is written beside its final path (`<name>.partial`, same folder and so same file system)
and renamed over it; `os.replace` is atomic on POSIX.

`durable` says whether the bytes must also survive a power cut or a killed machine, not only a
killed process: it fsyncs the file before the rename and the folder after it. Checkpoints, shards,
manifests and journals need that (a resume trusts them); reports and benchmark records, which are
cheap to rebuild, do not pay for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

PARTIAL = ".partial"


def partial_path(path: Path, *, keep_suffix: bool = False) -> Path:
    """Where `path` is written before it is renamed into place: `<name>.partial`, which no glob
    for the final files (`*.tar`, `*.json`) matches. `keep_suffix` gives `<stem>.partial<suffix>`
    instead, for writers that pick a format from the suffix (matplotlib, numpy)."""
    path = Path(path)
    if keep_suffix and path.suffix:
        return path.with_name(path.stem + PARTIAL + path.suffix)
    return path.with_name(path.name + PARTIAL)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, path: Path, *, durable: bool) -> None:
    """Rename a finished `tmp` over `path` (fsync first when `durable`)."""
    if durable:
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(Path(path).parent)


@contextmanager
def atomic_file(path: Path, *, durable: bool) -> Iterator[BinaryIO]:
    """An open binary file whose contents replace `path` when the block ends without an error; on
    an error the partial file is removed and `path` is untouched."""
    path = Path(path)
    tmp = partial_path(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes, *, durable: bool) -> None:
    """Replace `path` with `data` (text is written as UTF-8)."""
    with atomic_file(path, durable=durable) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def save_atomic_with(path: Path, save: Callable[[Path], object], *, durable: bool) -> None:
    """Replace `path` with what `save(tmp_path)` writes, for writers that want a path of their own
    (`savefig`, `np.savez`)."""
    path = Path(path)
    tmp = partial_path(path, keep_suffix=True)
    try:
        save(tmp)
        commit(tmp, path, durable=durable)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
