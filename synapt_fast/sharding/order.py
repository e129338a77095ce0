"""The order a split's inputs are packed in: sorted by id, duplicates (the same id, the same file,
the same bytes under another name) turned into recorded skips, then permuted with the seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .frames import content_sha256, content_size
from .sources import Source, SourceItem


def _problem(it: SourceItem, problem: str) -> SourceItem:
    return SourceItem(it.id, None, None, problem=problem)


def _resolved(path: Path) -> Path | str:
    try:
        return Path(path).resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a symlink loop so
        return "symlink loop"
    except OSError as e:
        return f"cannot read file: {e.strerror}"


def order_items(source: Source, seed: int) -> list[SourceItem]:
    """Sorted by id, duplicates turned into problems, then permuted with the seed."""
    items = sorted(source.items(), key=lambda it: it.id)
    seen_ids: dict[str, str] = {}
    seen_paths: dict[Path, str] = {}
    out = []
    for it in items:
        if it.problem is None:
            resolved = _resolved(it.path) if it.path is not None else None
            if it.id in seen_ids:
                it = _problem(it, f"duplicate of {seen_ids[it.id]}")
            elif isinstance(resolved, str):
                it = _problem(it, resolved)
            elif resolved is not None and resolved in seen_paths:
                it = _problem(it, f"duplicate path of {seen_paths[resolved]}")
            else:
                seen_ids[it.id] = it.id
                if resolved is not None:
                    seen_paths[resolved] = it.id
        out.append(it)
    out = _same_bytes(out)
    perm = np.random.default_rng(seed).permutation(len(out))
    return [out[i] for i in perm]


def _same_bytes(items: list[SourceItem]) -> list[SourceItem]:
    """Clips byte-identical to an earlier one (by id) under another name become skipped
    duplicates. Only clips of equal size are hashed, so a tree without duplicates is read once."""
    by_size: dict[int, list[int]] = {}
    for i, it in enumerate(items):
        if it.problem is None and it.path is not None:
            try:
                by_size.setdefault(content_size(Path(it.path)), []).append(i)
            except (OSError, ValueError):
                pass  # unreadable: encoding records why
    items = list(items)
    for group in by_size.values():
        first_of: dict[str, str] = {}
        for i in group if len(group) > 1 else ():
            try:
                digest = content_sha256(Path(items[i].path))
            except (OSError, ValueError):
                continue
            if digest in first_of:
                items[i] = _problem(items[i], f"duplicate: the same bytes as {first_of[digest]}")
            else:
                first_of[digest] = items[i].id
    return items
