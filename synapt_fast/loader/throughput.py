"""How fast a loader reads a split, and what holds it back: decode, augmentation or hand-over.

The loader benchmark (benchmarks/bench_loader.py) and `synapt-fast bench loader SPLIT_DIR
--recipe R` share this. Three stages of the DALI reader source are timed on the same epochs:

- `decode`: reader, frame indices, keyframe cuts and decoder, outputs dropped inside DALI (the
  decode-only ceiling at the loader's own frame indices);
- `graph`: the whole DALI graph (crop, resize, flip, normalise), outputs dropped inside DALI;
- `loader`: the loader as a trainer uses it, batches handed over as torch tensors.

Per-clip time differences between consecutive stages say where the time goes. CPU seconds
(all threads and child processes) are counted beside wall time: on a shared machine they move
far less with other load, and on an idle machine with c cores a loader's rate approaches
c / (CPU seconds per clip).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np


def _descendants(pid: int) -> list[int]:
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += [int(child), *_descendants(int(child))]
    except OSError:
        pass
    return out


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its live descendants (DataLoader workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in [os.getpid(), *_descendants(os.getpid())]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / tick


def settle(max_seconds: float = 3.0) -> float:
    """Wait until this process tree is idle; returns the time its work ended (perf_counter).

    Work a loader leaves running in the background after an epoch (the DALI loader builds and
    starts the next epoch's pipeline in a thread) counts for it, not for the contender timed next.
    """
    prev, t_prev = cpu_seconds(), time.perf_counter()
    deadline = t_prev + max_seconds
    while t_prev < deadline:
        time.sleep(0.05)
        now, t_now = cpu_seconds(), time.perf_counter()
        if now - prev < 0.005:  # under 10 % of one core over 50 ms: idle since t_prev
            return t_prev
        prev, t_prev = now, t_now
    return t_prev


def time_epoch(loader, limit: int | None = None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, clips) of one epoch (or its first `limit` clips or more),
    including any background work it leaves.

    `loader`: anything iterable per epoch whose items have `.label` (a `Batch`), are DALI
    iterator outputs, or are clip counts (`Stage`)."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    n = 0
    for b in loader:
        n += b if isinstance(b, int) else (b.label if hasattr(b, "label") else b[0]["video"]).shape[0]
        if limit is not None and n >= limit:
            break
    t1 = time.perf_counter()
    t_end = max(t1, settle())
    return t_end - t0, cpu_seconds() - c0, n


def _decode_graph():
    import nvidia.dali.fn  # noqa: F401  (DALI's operators register on import)
    from nvidia.dali import pipeline_def

    from .dali_graph import _reader_input

    @pipeline_def(enable_conditionals=False)
    def decode_pipeline(transform, train: bool, reader: dict | None = None, seek_source=None):
        """Reader, frame indices, keyframe cuts and decoder: the decode-only ceiling."""
        frames, label, pos = _reader_input(train=train, **reader)
        return frames, label

    return decode_pipeline


class Stage:
    """Epochs of a DALI loader's reader pipelines run up to `stage` ("decode" or "graph"),
    outputs dropped inside DALI (no copy to torch). Iterating yields each batch's clip count.
    Same lanes, threads, queue depths, seeds and epochs as the loader itself."""

    def __init__(self, loader, stage: str):
        if stage not in ("decode", "graph"):
            raise ValueError(f"stage must be 'decode' or 'graph', got {stage!r}")
        self.loader, self.graph = loader, _decode_graph() if stage == "decode" else None
        self.epoch = 0

    def __iter__(self):
        run = self.loader._open(self.epoch, self.graph)
        self.epoch += 1
        for i in range(max(run.lane_batches, default=0)):  # the lanes take turns, as in `ReaderEpoch`
            for j, pipe in enumerate(run.pipes):
                if i >= run.lane_batches[j]:
                    continue
                pipe.share_outputs()
                pipe.release_outputs()
                if run.scheduled[j] < run.lane_batches[j]:
                    pipe.schedule_run()
                    run.scheduled[j] += 1
                yield min(run.batch_size, run.counts[j] - i * run.batch_size)
        del run
        from .dali_loader import _free

        _free()


def measure(contenders: dict, repeats: int, log=None, limit: int | None = None) -> dict:
    """Median clips/s and CPU ms per clip of each contender (name -> epoch iterable), after one
    warm-up epoch each; contenders alternate, reversed every other repeat, so that load from
    elsewhere falls on all of them alike. Returns {name: {clips_per_s, cpu_ms_per_clip, runs}}."""
    for c in contenders.values():
        time_epoch(c, limit)  # pipeline build, worker start, page cache
    runs = {k: [] for k in contenders}
    for r in range(repeats):
        for k in (list(contenders) if r % 2 == 0 else list(reversed(contenders))):
            wall, cpu, n = time_epoch(contenders[k], limit)
            runs[k].append((n / wall, 1000 * cpu / n))
            if log:
                log(f"repeat {r + 1}/{repeats} {k:22s} {n / wall:8.1f} clips/s {1000 * cpu / n:7.2f} CPU ms/clip")
    return {k: {"clips_per_s": round(statistics.median(x for x, _ in v), 1),
                "cpu_ms_per_clip": round(statistics.median(y for _, y in v), 2),
                "runs": [[round(x, 1), round(y, 2)] for x, y in v]} for k, v in runs.items()}


def paired_ratio(res: dict, a: str, b: str, cpu: bool = False) -> float | None:
    """How `a` compares with `b` in `measure`'s results: the median over repeats of the ratio of
    their runs in the same repeat, clips/s of `a` over `b`, or with `cpu` CPU per clip of `b`
    over `a` (above 1: `a` is faster). Both run within seconds of each other in every repeat, so
    a slow spell on the machine (the same work moved by up to 15 % between repeats here) falls on
    both; a ratio of the two medians can pair one contender's slow repeat with the other's fast one."""
    i = 1 if cpu else 0
    runs = zip(res[a]["runs"], res[b]["runs"])
    pairs = [(y[i], x[i]) if cpu else (x[i], y[i]) for x, y in runs]
    ratios = [num / den for num, den in pairs if den]
    return round(statistics.median(ratios), 3) if ratios else None


def frames_decoded(split_dir: Path, sampling, cut: str, train: bool = True, gop: int | None = None,
                   max_clips: int = 64, seed: int = 0) -> dict:
    """Frames the decoder goes through per clip under `cut` ("frame", "clip" or "none"), on up to
    `max_clips` clips of the split at their training indices, against the frames sampled. With
    `gop`, as if the clips had a keyframe every `gop` frames (what re-sharding would give)."""
    from synapt_fast.format.ivf import KEYFRAMES, frame_pieces
    from synapt_fast.format.manifest import Manifest
    from synapt_fast.format.index import read_index
    from .sampling import numpy_indices

    m = Manifest.load(split_dir)
    rng = np.random.default_rng(seed)
    decoded, sampled, clips = 0, 0, 0
    for shard in m.shards:
        with open(Path(split_dir) / shard.tar, "rb") as f:
            for sample in read_index(Path(split_dir) / shard.index):
                where = {ext: (off, size) for ext, off, size, _ in sample}
                f.seek(where["nframes.i32"][0])
                n = int(np.frombuffer(f.read(4), "<i4")[0])
                if gop is not None:
                    keys = np.arange(0, n, gop)
                elif KEYFRAMES in where:
                    f.seek(where[KEYFRAMES][0])
                    keys = np.frombuffer(f.read(where[KEYFRAMES][1]), "<i4").reshape(-1, 2)[:, 0]
                else:
                    keys = np.array([0])
                idx = numpy_indices(sampling, n, train, rng).reshape(-1)
                if cut == "frame":
                    pieces, _ = frame_pieces(keys, idx)
                    decoded += sum(b - a + 1 for a, b in pieces)
                else:
                    first = int(keys[keys <= idx.min()].max()) if cut == "clip" else 0
                    decoded += int(idx.max()) - first + 1
                sampled += len(idx)
                clips += 1
                if clips >= max_clips:
                    break
        if clips >= max_clips:
            break
    return {"clips": clips, "decoded_per_clip": round(decoded / clips, 1), "sampled_per_clip": sampled / clips}


def _layout(model_name: str) -> str:
    from ..models import create_model

    return create_model(model_name, num_classes=2).input_layout


def diagnose(split_dir: Path, recipe_path: Path, overrides: list[str] = (), repeats: int = 3, log=print,
             max_clips: int = 400) -> dict:
    """Measure a user's own split with their recipe's sampling, crop and batch: the loader's
    clips/s, the decode-only ceiling and the graph without hand-over, what limits it, and what a
    shard setting (GOP, short side, format) would change. Each timed epoch stops after about
    `max_clips` clips (a large split's epoch would take hours). Returns the record; `log` prints."""
    from synapt_fast.loader import Transform, make_loader
    from synapt_fast.engine.recipe import load_recipe
    from synapt_fast.engine.build import build_sampling


    r = load_recipe(recipe_path, list(overrides))
    d = r.data
    sampling = build_sampling(r)
    transform = Transform(size=d.image_size, train_crop=d.train_crop, flip=d.flip, eval_crops=r.eval.crops,
                          resize_ratio=d.resize_ratio, layout=_layout(r.model.name))
    loader = make_loader(split_dir, sampling, transform, train=True, batch_size=d.batch_size, backend="dali",
                         decode=d.decode, workers=d.workers, prefetch=d.prefetch, shuffle_buffer=d.shuffle_buffer,
                         seed=r.seed)
    m = loader.manifest
    log(f"{split_dir}: {m.num_samples} clips, {m.codec} in {m.video_ext}, shard format {m.format_version}, "
        f"GOP {m.encoding.get('gop')}, short side {m.encoding.get('short_side')}; recipe {Path(recipe_path).stem}: "
        f"{sampling.mode} x{sampling.frames_per_clip()}, {d.train_crop} crop to {d.image_size}, batch {d.batch_size}, "
        f"{d.workers} workers, decoding on {loader.device} ({loader.cut} cuts)")
    stages = {"decode": Stage(loader, "decode"), "graph": Stage(loader, "graph"), "loader": loader}
    res = measure(stages, repeats, log=log, limit=max_clips)
    per_clip = {k: 1000.0 / v["clips_per_s"] for k, v in res.items()}  # wall ms per clip
    shares = {"decode": per_clip["decode"], "augmentation": max(0.0, per_clip["graph"] - per_clip["decode"]),
              "hand-over": max(0.0, per_clip["loader"] - per_clip["graph"])}
    total = sum(shares.values()) or 1.0
    limit = max(shares, key=shares.get)
    work = frames_decoded(split_dir, sampling, loader.cut)
    record = {"split": str(split_dir), "recipe": str(recipe_path), "cut": loader.cut, "device": loader.device,
              "stages": res, "wall_ms_per_clip": {k: round(v, 2) for k, v in shares.items()},
              "limited_by": limit, "share_of_decode_ceiling": paired_ratio(res, "loader", "decode"),
              "frames": work, "suggestions": []}
    log(f"loader {res['loader']['clips_per_s']:.1f} clips/s ({res['loader']['cpu_ms_per_clip']:.1f} CPU ms/clip); "
        f"decode-only ceiling {res['decode']['clips_per_s']:.1f} clips/s; graph without hand-over "
        f"{res['graph']['clips_per_s']:.1f} clips/s; {record['share_of_decode_ceiling']:.0%} of the ceiling")
    log("per clip: " + ", ".join(f"{k} {v:.1f} ms ({v / total:.0%})" for k, v in shares.items())
        + f"; limited by {limit}")
    log(f"decoder works through {work['decoded_per_clip']:.0f} frames per clip for {work['sampled_per_clip']:.0f} "
        f"sampled")
    record["suggestions"] = _suggestions(split_dir, m, sampling, transform, loader, work, limit)
    for s in record["suggestions"]:
        log("suggestion: " + s)
    if not record["suggestions"]:
        log("no shard setting stands out: the split suits this recipe")
    return record


def _suggestions(split_dir, m, sampling, transform, loader, work, limit) -> list[str]:
    out = []
    enc = m.encoding
    if m.video_ext == "ivf" and m.format_version < 3 and sampling.mode in ("segments", "uniform"):
        out.append(f"shard format {m.format_version} cannot be cut per sampled frame; re-shard with this version "
                   f"(format 3) so that {sampling.mode} sampling decodes from each frame's own keyframe")
    if m.codec != "mjpeg" and work["decoded_per_clip"] > 1.5 * work["sampled_per_clip"]:
        out.append(f"{m.codec}: the decoder goes through {work['decoded_per_clip']:.0f} frames per clip for "
                   f"{work['sampled_per_clip']:.0f} sampled; shards of the default codec (`synapt-fast shard`, MJPEG: "
                   f"every frame a keyframe) leave it only the sampled frames, for more bytes "
                   f"(benchmarks/results/loader.md has both)")
    gop = enc.get("gop") or 0
    if loader.cut in ("frame", "clip") and gop > 8 and work["decoded_per_clip"] > 2 * work["sampled_per_clip"]:
        cut = loader.cut
        options = {g: frames_decoded(split_dir, sampling, cut, gop=g)["decoded_per_clip"] for g in (8, 16) if g < gop}
        best = min(options, key=options.get) if options else None
        if best is not None and options[best] < 0.8 * work["decoded_per_clip"]:
            out.append(f"GOP {gop}: the decoder goes through {work['decoded_per_clip']:.0f} frames per clip; with "
                       f"`synapt-fast shard --gop {best}` it would be about {options[best]:.0f} "
                       f"(keyframes cost more to decode and store: measure, see benchmarks/results/gop.md)")
    side = enc.get("short_side") or 0
    need = max(transform.eval_short_side, transform.size)
    if side and side > 1.2 * need and limit == "decode":
        out.append(f"short side {side}: the recipe needs about {need}; `synapt-fast shard --short-side {need}` "
                   f"decodes {(need / side) ** 2:.0%} of the pixels")
    elif side == 0:
        out.append(f"the split keeps the source size; the recipe needs a short side of about {need} "
                   f"(`synapt-fast shard --short-side {need}`)")
    if limit == "hand-over":
        out.append("copying batches out of DALI into torch tensors limits it, not the shards: no shard setting helps")
    return out
