"""Write a synthetic source as plain video files, for users who want files rather than shards.

Layout: `<out_dir>/<class>/<split>_<index>.<ext>` -- a folder per class, which
`synapt_fast.sharding.sources.FolderSource` (and so `synapt-fast shard`) reads back -- plus
`classes.txt` in label order. Clips are encoded with the shard writer's encoder (VP9 .ivf by
default), rendered and encoded in worker processes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

from synapt_fast.sharding.sources import SourceItem


def _encode(job: tuple[SourceItem, object]) -> tuple[str, bytes, str]:
    from synapt_fast.sharding.transcode import encode_item

    item, opts = job
    enc = encode_item(item, opts)
    return item.id, enc.data, enc.ext


def write_files(source, out_dir: Path, *, encode=None, workers: int = 1,
                on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Render and encode every clip of `source` into `out_dir`; returns a small summary.
    Existing files are overwritten (the output is deterministic, so a rerun is harmless)."""
    from synapt_fast.sharding.transcode import EncodeOptions

    encode = encode or EncodeOptions(codec="vp9", short_side=0)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "classes.txt").write_text("".join(f"{n}\n" for n in source.class_names), encoding="utf-8")
    items = list(source.items())
    jobs = [(it, encode) for it in items]
    total_bytes = 0
    if workers > 1 and len(jobs) > 1:
        # spawn, not fork: the parent may hold threads (torch, DALI) that must not be forked.
        pool = multiprocessing.get_context("spawn").Pool(workers)
        results = pool.imap(_encode, jobs, chunksize=4)
    else:
        pool, results = None, map(_encode, jobs)
    try:
        for done, (item_id, data, ext) in enumerate(results, start=1):
            path = out_dir / f"{item_id}{ext if ext.startswith('.') else '.' + ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            total_bytes += len(data)
            if on_progress:
                on_progress(done, len(jobs))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return {"out_dir": str(out_dir), "clips": len(jobs), "classes": len(source.class_names),
            "bytes": total_bytes}
