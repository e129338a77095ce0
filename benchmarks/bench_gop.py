"""GOP and video length under the keyframe cut: what each costs the DALI loader, and in bytes.

DALI's reader decodes each clip from the last keyframe at or before its first sampled frame
(shard format 2, `synapt_fast/ivf.py`): a dense clip costs its span plus at most one GOP of
lead-in, where format 1 (the same VP9 streams in WebM) decoded it from frame 0. Per video length
(3 s and 10 s at 30 fps, rendered 320x240 -> VP9 short side 128) and GOP (8, 16, 32, 64):

- bytes per clip (the shard's size over its clips) and sharding clips/s (2 workers);
- the DALI loader in training (dense 8x1 and dense 32x2, 112² float32 NCTHW, multi-scale crop,
  batch 8, 2 workers): clips/s and CPU milliseconds per clip (all threads), median of `repeats`
  epochs after a warm-up epoch, all splits of one length alternated;
- at GOP 32, the same streams repacked as a format 1 split (WebM, no keyframe table), which the
  loader decodes from frame 0: the cut's gain, measured in the same run.

Writes `benchmarks/results/gop.{json,md,png}`. Run: `synapt-fast bench gop [--quick]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchio import bar_chart, save_record
from bench_loader import time_epoch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MODES = {"dense 8x1": dict(mode="dense", num_frames=8, interval=1),
         "dense 32x2": dict(mode="dense", num_frames=32, interval=2)}
FORMAT_1 = "GOP 32, format 1"


def as_format_1(split: Path, out: Path) -> Path:
    """The split as a format 1 writer left it: the same VP9 streams in WebM, no keyframe table."""
    import webdataset as wds

    from synapt_fast.format.manifest import MANIFEST, Manifest
    from synapt_fast.sharding.tarwriter import TarWriter
    from synapt_fast.sharding.transcode import remux

    m = Manifest.load(split)
    out.mkdir(parents=True)
    shards = []
    for shard in m.shards:
        writer = TarWriter(out / shard.tar)
        for s in wds.WebDataset([str(split / shard.tar)], shardshuffle=False):
            rest = [(ext, s[ext]) for ext in ("label.i32", "nframes.i32", "pos.i32", "meta.json")]
            writer.add(s["__key__"], [("webm", remux(s["ivf"], "webm")), *rest])
        shards.append(writer.close())
    Manifest(set=m.set, split=m.split, class_names=m.class_names, class_counts=m.class_counts,
             num_samples=m.num_samples, num_frames=m.num_frames, shards=shards, seed=m.seed,
             encoding=dict(m.encoding, container="webm", ext="webm"), format_version=1).save(out / MANIFEST)
    return out


def make_split(root: Path, clips: int, frames: int, gop: int) -> tuple[Path, float]:
    """(split, sharding clips/s) of about `clips` rendered clips (a whole number per each of 6
    classes, rounded up) of `frames` frames at this GOP."""
    from synapt_fast.synth.sampleclips import SampleSource
    from synapt_fast.sharding.pipeline import ShardOptions, shard_source
    from synapt_fast.format.manifest import Manifest
    from synapt_fast.sharding.transcode import EncodeOptions

    out = root / f"f{frames}_g{gop}" / "train"
    t0 = time.perf_counter()
    shard_source(SampleSource(6, -(-clips // 6), frames, 320, 240), out, ShardOptions("gop", "train", workers=2),
                 EncodeOptions(codec="vp9", short_side=128, gop=gop))
    seconds = time.perf_counter() - t0
    return out, Manifest.load(out).num_samples / seconds


def run(lengths_s: tuple[int, ...] = (3, 10), gops: tuple[int, ...] = (8, 16, 32, 64), clips: int = 160,
        repeats: int = 3, out_dir: Path = RESULTS, quick: bool = False) -> dict:
    from synapt_fast.loader import Sampling, Transform, make_loader
    from synapt_fast.engine.machine import machine_info
    from synapt_fast.format.manifest import Manifest

    if quick:
        lengths_s, gops, clips, repeats = (3,), (8, 32), 12, 1
    modes = dict(list(MODES.items())[:1]) if quick else MODES
    transform = Transform(size=112, layout="NCTHW")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in lengths_s:
            frames = 30 * seconds
            splits, info = {}, {}
            for gop in gops:
                split, rate = make_split(Path(tmp), clips, frames, gop)
                m = Manifest.load(split)
                splits[f"GOP {gop}"] = split
                # Format 3 now; dense clips are cut per clip, as in format 2.
                info[f"GOP {gop}"] = {"gop": gop, "format": m.format_version, "shard_clips_per_s": round(rate, 2),
                                      "kib_per_clip": round(sum(s.bytes for s in m.shards) / m.num_samples / 1024, 2)}
            if 32 in gops:
                splits[FORMAT_1] = as_format_1(splits["GOP 32"], Path(tmp) / f"f{frames}_v1" / "train")
                m = Manifest.load(splits[FORMAT_1])
                info[FORMAT_1] = {"gop": 32, "format": 1, "shard_clips_per_s": None,
                                  "kib_per_clip": round(sum(s.bytes for s in m.shards) / m.num_samples / 1024, 2)}
            for mode, spec in modes.items():
                loaders = {k: make_loader(s, Sampling(**spec), transform, train=True, batch_size=8, workers=2)
                           for k, s in splits.items()}
                for loader in loaders.values():
                    time_epoch(loader)  # warm-up
                rate, cpu = {k: [] for k in loaders}, {k: [] for k in loaders}
                for r in range(repeats):
                    for k in (list(loaders) if r % 2 == 0 else list(reversed(loaders))):
                        wall, cpu_s, n = time_epoch(loaders[k])
                        rate[k].append(round(n / wall, 1))
                        cpu[k].append(round(1000 * cpu_s / n, 2))
                        print(f"{seconds:3d} s {mode:11s} repeat {r + 1}/{repeats} {k:17s} {n / wall:7.1f} clips/s "
                              f"{1000 * cpu_s / n:6.2f} CPU ms/clip", flush=True)
                for k in loaders:
                    rows.append({"video_s": seconds, "frames": frames, "split": k, **info[k], "mode": mode,
                                 "clips_per_s": statistics.median(rate[k]),
                                 "cpu_ms_per_clip": statistics.median(cpu[k]),
                                 "per_repeat_clips_per_s": rate[k], "per_repeat_cpu_ms_per_clip": cpu[k]})
                del loaders
    record = {"benchmark": "gop", "machine": machine_info(),
              "params": {"clips": clips, "video_seconds": list(lengths_s), "gops": list(gops), "repeats": repeats,
                         "source": "rendered 320x240, 30 fps", "shards": "VP9 short side 128",
                         "loader": "DALI reader, training, 112x112 float32 NCTHW, multi-scale crop, batch 8, 2 workers"},
              "results": rows, "cut_over_frame_0": _gains(rows), "quick": quick}
    print(save_record(out_dir, "gop_quick" if quick else "gop", record, plot, to_markdown))
    return record


def _gains(rows: list[dict]) -> dict:
    """Per video length and mode: format 2 at GOP 32 over format 1, in clips/s and by CPU time."""
    by = {(r["video_s"], r["mode"], r["split"]): r for r in rows}
    out = {}
    for (s, mode, split), r in by.items():
        if split == FORMAT_1 and (s, mode, "GOP 32") in by:
            new = by[(s, mode, "GOP 32")]
            out[f"{s} s {mode}"] = {"clips_per_s": round(new["clips_per_s"] / r["clips_per_s"], 3),
                                    "cpu": round(r["cpu_ms_per_clip"] / new["cpu_ms_per_clip"], 3)}
    return out


def plot(r: dict, path: Path) -> str:
    groups = {}
    for row in r["results"]:
        groups.setdefault(f"{row['video_s']} s, {row['mode']}", {})[row["split"]] = row["clips_per_s"]
    return bar_chart(path, "DALI loader by GOP and video length (median clips/s)", "clips/s", groups)


def to_markdown(r: dict) -> str:
    from synapt_fast.engine.machine import describe

    p = r["params"]
    lines = ["# GOP and video length under the keyframe cut", "", f"![clips/s by GOP]({r['plot']})", "",
             f"{p['clips']} clips ({p['source']}) per split in {p['shards']} shards; {p['loader']}; median of "
             f"{p['repeats']} epochs after a warm-up epoch, the splits of one length alternated. Format 2 decodes "
             "each clip from the keyframe before it; format 1 (the GOP 32 streams repacked in WebM) from frame 0.", "",
             describe(r["machine"]) + ".", "",
             "| video | split | KiB / clip | sharding clips/s | mode | clips/s | CPU ms / clip |",
             "|---|---|---:|---:|---|---:|---:|"]
    for row in r["results"]:
        shard = f"{row['shard_clips_per_s']:.1f}" if row["shard_clips_per_s"] else "—"
        lines.append(f"| {row['video_s']} s | {row['split']} | {row['kib_per_clip']:.1f} | {shard} | {row['mode']} | "
                     f"{row['clips_per_s']:.1f} | {row['cpu_ms_per_clip']:.2f} |")
    if r["cut_over_frame_0"]:
        lines += ["", "Keyframe cut (format 2, GOP 32) over decoding from frame 0 (format 1), same streams:", "",
                  "| video, mode | clips/s | by CPU time |", "|---|---:|---:|"]
        lines += [f"| {k} | {v['clips_per_s']:.2f}x | {v['cpu']:.2f}x |" for k, v in r["cut_over_frame_0"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=160)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    run(clips=a.clips, repeats=a.repeats, quick=a.quick, out_dir=a.out_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
