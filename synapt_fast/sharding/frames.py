"""Clips on disk as researchers hold them: video files and folders of frames, found by walking
a class folder or by resolving a list line's path, with the traps of real trees handled.

A frame folder is a folder holding image files (`00001.jpg`, `img_00001.jpg`, ...): the layout of
mmaction2's rawframes, IBM/action-recognition-pytorch and SynAPT's `vid_to_frame.py`. It is one
clip, its frames in natural order (`img_2` before `img_10`).

What walking and resolving report instead of stopping: a symlink loop, a name that is not UTF-8
(the manifest is UTF-8 JSON; the name is given with its bad bytes escaped), an image lying where
a clip should be, a list name that could mean several clips.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Tried, in any letter case, where a list names a clip without its extension.
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp",
                    ".ogv")


class FrameFolderError(ValueError):
    """A frame folder that cannot be a clip; the message is the reason recorded."""


def natural_key(name: str) -> list:
    """`img_2.jpg` before `img_10.jpg`: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def is_frame_folder(folder: Path) -> bool:
    try:
        return any(_is_image(e.name) and e.is_file() for e in os.scandir(folder))
    except OSError:
        return False


def frame_files(folder: Path) -> list[Path]:
    """The frames of a frame folder in order. One naming pattern (`img_#.jpg`); beside optical
    flow (`flow_x_#.jpg`, mmaction2) the `img` frames are the clip. Numbered frames must be
    consecutive: a gap would silently speed the clip up."""
    names = [e.name for e in os.scandir(folder) if _is_image(e.name) and e.is_file()]
    if not names:
        raise FrameFolderError("frame folder holds no images")
    patterns: dict[str, list[str]] = {}
    for name in names:
        patterns.setdefault(re.sub(r"\d+", "#", name), []).append(name)
    if len(patterns) > 1:
        imgs = [p for p in patterns if p.lower().startswith("img")]
        if len(imgs) != 1:
            raise FrameFolderError(f"frame folder mixes frame names {sorted(patterns)[:4]}")
        patterns = {imgs[0]: patterns[imgs[0]]}
    (pattern, chosen), = patterns.items()
    chosen.sort(key=natural_key)
    if pattern.count("#") == 1:
        numbers = [int(re.search(r"\d+", n)[0]) for n in chosen]
        missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
        if missing:
            raise FrameFolderError(f"frame folder misses frame number(s) {missing[:5]} of {numbers[0]}..{numbers[-1]}")
    return [Path(folder) / n for n in chosen]


def printable(name: str) -> str:
    """`name` as UTF-8-safe text: bytes that are not UTF-8 (kept by Python as surrogates) escaped."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def not_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def folder_id(folder: Path) -> tuple[int, int]:
    st = Path(folder).stat()
    return st.st_dev, st.st_ino


def walk_clips(class_dir: Path, seen: set[tuple[int, int]] | None = None) -> Iterator[tuple[Path, str | None]]:
    """Every clip under a class folder, sorted: (video file or frame folder, None), or (path, reason)
    for what cannot be a clip. Symlinked folders are followed, each real folder once: `seen` (shared
    by a whole tree, holding its root) makes a link back up the tree a recorded loop, not a second
    walk of other classes' clips."""
    seen = set() if seen is None else seen

    def visit(folder: Path, top: bool) -> Iterator[tuple[Path, str | None]]:
        try:
            st = folder.stat()
        except OSError as e:  # a symlink loop raises ELOOP here
            yield folder, f"cannot open folder: {e.strerror}"
            return
        if (st.st_dev, st.st_ino) in seen:
            yield folder, "symlink loop: a folder already walked"
            return
        seen.add((st.st_dev, st.st_ino))
        if not top and is_frame_folder(folder):
            yield folder, None
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            yield folder, f"cannot list folder: {e.strerror}"
            return
        for e in entries:
            if e.name.startswith("."):
                continue
            path = Path(e.path)
            try:
                is_dir = e.is_dir()  # follows symlinks; False for a loop or a dangling link
            except OSError:
                is_dir = False
            if is_dir:
                yield from visit(path, False)
            elif _is_image(e.name):
                yield path, "an image where a clip should be (frame folders are <class>/<video>/<frames>)"
            else:
                yield path, None  # a loop or dangling link fails its read: "cannot read file"

    yield from visit(Path(class_dir), True)


class Resolver:
    """What a list line's path names under `root`: the file itself, a frame folder, or, for a
    path without its extension (`ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01`), the one video
    `<path>.<ext>` or frame folder `<path>` there is. A path with a video extension whose file
    is absent also finds the frame folder of its stem (a tree of rawframes)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._listings: dict[Path, dict[str, list[str]]] = {}

    def _listing(self, folder: Path) -> dict[str, list[str]]:
        if folder not in self._listings:
            by_lower: dict[str, list[str]] = {}
            try:
                for name in os.listdir(folder):
                    by_lower.setdefault(name.lower(), []).append(name)
            except OSError:
                pass
            self._listings[folder] = by_lower
        return self._listings[folder]

    def resolve(self, rel: str) -> tuple[Path | None, str | None]:
        """(path, None), or (None, reason)."""
        path = self.root / rel
        if path.is_file():
            return path, None
        if path.is_dir():
            if is_frame_folder(path):
                return path, None
            return None, f"{path} is a folder without frames"
        listing = self._listing(path.parent)
        candidates = [path.parent / n for ext in VIDEO_EXTENSIONS for n in listing.get(path.name.lower() + ext, [])]
        stem, ext = os.path.splitext(path.name)
        if ext.lower() in VIDEO_EXTENSIONS:
            candidates.append(path.parent / stem)
        candidates = [c for c in candidates if c.is_file() or (c.is_dir() and is_frame_folder(c))]
        if len(candidates) == 1:
            return candidates[0], None
        if candidates:
            return None, f"ambiguous: {rel} could be {', '.join(sorted(c.name for c in candidates))}"
        return None, f"missing file {path} (nor {path.name}.<video extension> or a frame folder)"


def content_size(path: Path) -> int:
    """Bytes of a clip: the file, or every frame of a frame folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in frame_files(path))
    return path.stat().st_size


def content_sha256(path: Path) -> str:
    h = hashlib.sha256()
    for p in frame_files(path) if path.is_dir() else [path]:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
