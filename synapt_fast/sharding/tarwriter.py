"""One WebDataset tar and its DALI index, written in a single pass.

The writer knows every member's offset as it writes, so the `.idx` file DALI needs comes for
free (no second read of the tar, no `wds2idx`). Output goes to `*.partial` files first and gets
its final name only once complete, so a killed process never leaves a half-written shard under
a final name. Tar headers are fixed (mtime 0, uid/gid 0, mode 0644, USTAR) so identical inputs
give identical bytes.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from synapt_fast.atomic import commit, partial_path
from synapt_fast.format.index import ShardInfo, index_text

class _HashingFile(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, f):
        self.f, self.sha, self.pos = f, hashlib.sha256(), 0

    def writable(self):
        return True

    def write(self, b):
        self.f.write(b)
        self.sha.update(b)
        self.pos += len(b)
        return len(b)

    def tell(self):
        return self.pos


class TarWriter:
    """Writes one shard: `<name>.tar` and `<name>.idx`, under `.partial` names until `close`."""

    def __init__(self, tar_path: Path):
        self.tar_path = Path(tar_path)
        self.idx_path = self.tar_path.with_suffix(".idx")
        self._tmp_tar, self._tmp_idx = partial_path(self.tar_path), partial_path(self.idx_path)
        self._file = open(self._tmp_tar, "wb")
        self._hashing = _HashingFile(self._file)
        self._tar = tarfile.open(fileobj=self._hashing, mode="w", format=tarfile.USTAR_FORMAT)
        self._index_lines: list[str] = []
        self.samples = 0

    def size_if_added(self, members: list[tuple[str, bytes]]) -> int:
        """The finished tar's size if these members were added now (headers, padding, end blocks)."""
        size = self._tar.offset + sum(512 + -(-len(d) // 512) * 512 for _, d in members) + 2 * 512
        return -(-size // tarfile.RECORDSIZE) * tarfile.RECORDSIZE

    def add(self, key: str, members: list[tuple[str, bytes]]) -> None:
        """Append one sample: `members` are (extension, bytes); member names are `key.extension`."""
        if "." in key or "/" in key:
            raise ValueError(f"sample key {key!r} must contain no dots or slashes")
        parts = []
        for ext, data in members:
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            header_at = self._tar.offset
            self._tar.addfile(info, io.BytesIO(data))
            # USTAR with short names: exactly one 512-byte header before the data.
            data_at = header_at + tarfile.BLOCKSIZE
            assert self._tar.offset == data_at + -(-len(data) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            parts.append(f"{ext} {data_at} {len(data)} {info.name}")
        self._index_lines.append(" ".join(parts))
        self.samples += 1

    def close(self) -> ShardInfo:
        """Finish the tar and index and move both to their final names."""
        self._tar.close()
        self._file.close()
        index = index_text(self._index_lines)
        self._tmp_idx.write_text(index)
        # The index goes first: a final-named tar always has its index beside it.
        commit(self._tmp_idx, self.idx_path, durable=True)
        commit(self._tmp_tar, self.tar_path, durable=True)
        return ShardInfo(
            tar=self.tar_path.name,
            index=self.idx_path.name,
            samples=self.samples,
            bytes=self._hashing.pos,
            sha256=self._hashing.sha.hexdigest(),
            index_sha256=hashlib.sha256(index.encode()).hexdigest(),
        )

    def abort(self) -> None:
        self._file.close()
        for p in (self._tmp_tar, self._tmp_idx):
            p.unlink(missing_ok=True)
