"""Loader throughput on the conditions users have: 3 s and 10 s clips of camera-like content, the
DALI loader against the loaders a user writes over their own H.264 mp4 shards, per sampling mode.

Content: `sampleclips.camera` clips (a hand-held pan over a 1/f-textured scene, two moving
textured objects, exposure drift and fresh sensor noise in every frame), 320x240 at 30 fps,
written as a download would be: H.264 (x264 veryfast, CRF 20), x264's default long GOP
(keyframes up to 250 frames apart) and B-frames. No real footage is used (none on this machine).

Splits made from those files:
- `default`: `synapt-fast shard` defaults (MJPEG in IVF, every frame a keyframe, short side 128,
  shard format 3);
- `vp9`, `vp9 GOP 8`: the same in VP9 (`--codec vp9`), GOP 32 and GOP 8 (`--sampling segments`);
- `mp4 long GOP`: the downloaded files packed as they are (`--codec h264 --short-side 0 --copy`);
- `mp4 GOP 32`: the files re-encoded as a careful user would (H.264, short side 128, GOP 32, no
  B-frames).

Contenders, training mode (random sampling, TSN multi-scale crop, flip, normalise, 112x112 float32):
- `default`: `make_loader` with its defaults (reader source, CPU decoder, 2 single-thread lanes,
  the cut it picks for the split and mode) on the default split;
- `vp9 GOP 32`, `vp9 GOP 8`: the same loader on the VP9 splits;
- `decode-only`: the default's reader, frame indices, cuts and decoder, nothing else (the
  ceiling at the same indices);
- `pyav <split>`: torch DataLoader with 2 worker processes, webdataset + PyAV with keyframe
  seeking, torch crop / flip / normalise (the reference loader) over each mp4 split;
- `torchcodec <split>`: the same DataLoader with torchcodec's CPU decoder (`torchcodec_loader`).

Per contender: median clips/s and CPU milliseconds per clip (all threads and processes) of
`repeats` whole epochs after a warm-up epoch, contenders alternated. Each sample is packed
`copies` times, so that an epoch is long enough for a pipeline's start and end to weigh about
as little as in training. Also frames the decoder goes through per clip in each split, each
split's bytes per second of video and PSNR against the source, and the default loader's
resident memory over 40 epochs.
Writes `benchmarks/results/loader.{json,md,png}`. Run: `synapt-fast bench loader [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchio import bar_chart, save_record

from synapt_fast.loader.throughput import (  # noqa: F401 (Stage, time_epoch: bench_gop)
    Stage, frames_decoded, measure, paired_ratio, time_epoch)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LENGTHS = {"3 s": 3.0, "10 s": 10.0}
MODES = {
    "segments 8": dict(mode="segments", num_frames=8),
    "dense 8x1": dict(mode="dense", num_frames=8, interval=1),
    "dense 32x2": dict(mode="dense", num_frames=32, interval=2),
    "uniform 8": dict(mode="uniform", num_frames=8),
}
PEER_SPLITS = {"mp4 long GOP": "mp4long", "mp4 GOP 32": "mp4gop32"}
DALI_SPLITS = {"vp9 GOP 32": "vp9", "vp9 GOP 8": "vp9gop8"}  # beside the default split


def make_splits(root: Path, seconds: float, classes: int, per_class: int, copies: int) -> tuple[dict[str, Path], Path]:
    """The downloaded-like H.264 files, the splits made from them, each sample packed `copies`
    times (epochs long enough that a pipeline's start and end weigh as little as in training,
    without encoding more clips: each copy gets its own random frame indices and crop)."""
    from synapt_fast.synth.sampleclips import make_camera_folder
    from synapt_fast.sharding.pipeline import ShardOptions, shard_source
    from synapt_fast.sharding.sources import FolderSource
    from synapt_fast.sharding.subsets import Selection, read_split, write_subset
    from synapt_fast.sharding.encoder import EncodeOptions, gop_for

    folder = make_camera_folder(root / "src", classes, per_class, seconds)
    encodings = {"default": EncodeOptions(),  # the shard defaults
                 "vp9": EncodeOptions(codec="vp9"),
                 "vp9gop8": EncodeOptions(codec="vp9", gop=gop_for("segments"), sampling="segments"),
                 "mp4long": EncodeOptions(codec="h264", short_side=0, gop=250, copy=True, mp4=True),
                 "mp4gop32": EncodeOptions(codec="h264", short_side=128, gop=32, mp4=True)}
    out = {}
    for name, enc in encodings.items():
        once = root / "once" / name / "train"
        shard_source(FolderSource(folder), once, ShardOptions(name, "train", workers=2), enc)
        m, samples = read_split(once)
        sel = Selection(m.class_names, {i: i for i in range(len(m.class_names))}, samples * copies)
        out[name] = root / name / "train"
        write_subset(once, out[name], m, sel, seed=0, info={"copies": copies})
    return out, folder


def storage(splits: dict[str, Path], folder: Path, max_clips: int = 6) -> dict:
    """Per split: bytes per second of video, and PSNR (dB) of its first clips against the source
    files scaled to the same size (RGB, area interpolation, as `shard` scales them)."""
    import numpy as np
    import webdataset as wds

    import av
    from synapt_fast.format.manifest import Manifest
    from synapt_fast.sharding.transcode import decode_all

    out = {}
    for name, split in splits.items():
        m = Manifest.load(split)
        seconds = m.num_frames / m.encoding["fps"]
        row = {"bytes_per_s": round(sum(s.bytes for s in m.shards) / seconds)}
        if name != "mp4long":  # the source files themselves
            errs = []
            for sample in wds.WebDataset([str(split / s.tar) for s in m.shards], shardshuffle=False):
                meta = json.loads(sample["meta.json"])
                got = decode_all(sample[m.video_ext]).astype(np.float64)
                with av.open(str(folder / meta["id"])) as c:
                    ref = np.stack([f.reformat(width=got.shape[2], height=got.shape[1], format="rgb24",
                                               interpolation="AREA").to_ndarray() for f in c.decode(video=0)])
                errs.append(((got - ref[:len(got)]) ** 2).mean())
                if len(errs) >= max_clips:
                    break
            row["psnr_db"] = round(float(10 * np.log10(255 ** 2 / np.mean(errs))), 2)
        out[name] = row
    return out


def rss_growth(split: Path, epochs: int = 10) -> dict:
    """Resident memory of a fresh process running the default DALI loader for `epochs` epochs:
    the heap and other private memory (`RssAnon`, where a leak shows) and all of it (`VmRSS`,
    which also counts the pages of the mapped tars the reader has touched: page cache, shared
    and dropped with each epoch's pipeline)."""
    code = f"""
import json
from synapt_fast.loader import Sampling, Transform, make_loader
from synapt_fast.loader.throughput import settle
def rss():
    settle()  # after the next epoch's pipeline, built in the background, has started
    got = {{}}
    for line in open('/proc/self/status'):
        if line.startswith(('VmRSS', 'RssAnon')):
            got[line.split(':')[0]] = int(line.split()[1]) / 1024
    return got
loader = make_loader({str(split)!r}, Sampling('segments', 8), Transform(size=112), train=True, batch_size=8)
out = []
for e in range({epochs}):
    for b in loader:
        pass
    out.append(rss())
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    per_epoch = json.loads(proc.stdout.strip().splitlines()[-1])
    anon = [x["RssAnon"] for x in per_epoch]
    return {"rss_anon_mib_per_epoch": [round(x, 1) for x in anon],
            "rss_mib_per_epoch": [round(x["VmRSS"], 1) for x in per_epoch],
            # One process's resident memory swings by up to +-10 % from one epoch to the next, so
            # the judgement is the trend fitted over all epochs after the first (least squares),
            # as growth per 10 epochs over the mean; two medians of 3 epochs could not tell 5 %
            # from the swing (10.0 % and 0.1 % in two runs of the same code, notes 19-20).
            "growth": _fitted_growth(anon[1:], 10) if len(anon) >= 7 else None,
            "median_growth": round(statistics.median(anon[-3:]) / statistics.median(anon[1:4]) - 1, 4)
            if len(anon) >= 7 else None}


def _fitted_growth(values: list[float], span: int) -> float:
    """The least-squares slope of `values` per `span` steps, over their mean."""
    slope = statistics.linear_regression(range(len(values)), values).slope
    return round(slope * span / statistics.fmean(values), 4)


def contenders(splits: dict[str, Path], sampling, transform, batch_size: int, workers: int,
               skipped: dict) -> dict:
    from synapt_fast.loader import make_loader

    import torchcodec_loader  # beside this file; spawned DataLoader workers import it by name

    common = dict(train=True, batch_size=batch_size, workers=workers)
    out = {"default": make_loader(splits["default"], sampling, transform, **common)}
    out["decode-only"] = Stage(out["default"], "decode")
    for label, name in DALI_SPLITS.items():
        out[label] = make_loader(splits[name], sampling, transform, **common)
    for label, name in PEER_SPLITS.items():
        out[f"pyav {label}"] = make_loader(splits[name], sampling, transform, backend="reference", **common)
        if "torchcodec" not in skipped:
            out[f"torchcodec {label}"] = torchcodec_loader.TorchCodecLoader(splits[name], sampling, transform,
                                                                             **common)
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def summarise(res: dict, work: dict) -> dict:
    """Figures of one length and mode; `default` is the default loader on the default shards."""
    rate = {k: v["clips_per_s"] for k, v in res.items()}
    cpu = {k: v["cpu_ms_per_clip"] for k, v in res.items()}
    peers = [k for k in res if k.startswith(("pyav", "torchcodec"))]
    by_rate = max(peers, key=rate.get)
    by_cpu = min(peers, key=cpu.get)
    # Each ratio: the default against whom, by CPU per clip or by clips/s (above 1: the default is
    # faster). Reported as the median of each repeat's ratio (`paired_ratio`), with the ratio of
    # the two medians beside it.
    against = {"default_over_best_peer": (by_rate, False), "default_over_best_peer_cpu": (by_cpu, True),
               "share_of_decode_ceiling": ("decode-only", False), "share_of_decode_ceiling_cpu": ("decode-only", True)}
    of_medians = {k: _ratio(cpu[b], cpu["default"]) if c else _ratio(rate["default"], rate[b])
                  for k, (b, c) in against.items()}
    return {
        "default": "default",
        "clips_per_s": rate, "cpu_ms_per_clip": cpu, "runs": {k: v["runs"] for k, v in res.items()},
        "best_peer_by_rate": by_rate, "best_peer_by_cpu": by_cpu,
        **{k: paired_ratio(res, "default", b, cpu=c) for k, (b, c) in against.items()},
        "ratio_of_medians": of_medians,
        "frames_decoded_per_clip": work,
    }


def run(clips: int = 24, repeats: int = 3, batch_size: int = 8, workers: int = 2, out_dir: Path = RESULTS,
        quick: bool = False, lengths: list[str] | None = None, modes: list[str] | None = None,
        copies: int = 12) -> dict:
    from synapt_fast.loader import Sampling, Transform
    from synapt_fast.engine.machine import machine_info
    import torchcodec_loader

    lengths = {k: v for k, v in LENGTHS.items() if not lengths or k in lengths}
    modes = {k: v for k, v in MODES.items() if not modes or k in modes}
    if quick:
        clips, repeats, copies = 8, 1, 1
        lengths, modes = {"3 s": 3.0}, dict(list(MODES.items())[:1])
    classes = 4
    per_class = -(-clips // classes)
    copies = 1 if quick else copies
    skipped = {}
    if reason := torchcodec_loader.unavailable():
        skipped["torchcodec"] = reason
        print(f"torchcodec contenders skipped: {reason}", flush=True)
    transform = Transform(size=112, layout="NCTHW")
    results, memory, stored = {}, None, {}
    with tempfile.TemporaryDirectory() as tmp:
        for length, seconds in lengths.items():
            splits, folder = make_splits(Path(tmp) / length.replace(" ", ""), seconds, classes, per_class, copies)
            stored[length] = storage(splits, folder)
            print(f"{length} storage: {stored[length]}", flush=True)
            results[length] = {}
            for name, spec in modes.items():
                sampling = Sampling(**spec)
                loaders = contenders(splits, sampling, transform, batch_size, workers, skipped)
                res = measure(loaders, repeats, log=lambda s: print(f"{length:4s} {name:10s} {s}", flush=True))
                work = {label: frames_decoded(splits[split], sampling, loaders[label].cut)["decoded_per_clip"]
                        for label, split in {"default": "default", **DALI_SPLITS}.items()}
                work["sampled"] = sampling.frames_per_clip()
                results[length][name] = summarise(res, work)
                del loaders
            if length == "10 s" or quick:
                memory = dict(rss_growth(splits["default"], epochs=40 if not quick else 2), length=length)
    targets = check_targets(results, memory)
    record = {
        "benchmark": "loader",
        "machine": machine_info(),
        "params": {"clips_per_length": classes * per_class, "copies": copies, "classes": classes,
                   "source": "sampleclips.camera: 320x240, 30 fps, H.264 CRF 20 long GOP with B-frames",
                   "default": "synapt-fast shard defaults: MJPEG in IVF (every frame a keyframe), short side 128, "
                              "format 3",
                   "vp9": "`synapt-fast shard --codec vp9`: VP9/IVF, short side 128, GOP 32, format 3",
                   "vp9gop8": "the same with GOP 8 (`--codec vp9 --sampling segments`)",
                   "mp4 long GOP": "the H.264 files as they are (x264 default keyint 250, B-frames), 320x240",
                   "mp4 GOP 32": "H.264 re-encoded: short side 128, GOP 32, no B-frames",
                   "output": "112x112 float32 NCTHW, train mode (multi-scale crop, flip)", "batch_size": batch_size,
                   "workers": workers, "repeats": repeats},
        "lengths": results,
        "storage": stored,
        "memory": memory,
        "targets": targets,
        "skipped": skipped,
        "quick": quick,
    }
    print(save_record(out_dir, "loader_quick" if quick else "loader", record, plot, to_markdown))
    return record


def check_targets(results: dict, memory: dict | None) -> dict:
    """The issue's targets, each with the figures it was judged on."""
    out = {}
    beat = {f"{length} {mode}": (x["default_over_best_peer"], x["default_over_best_peer_cpu"])
            for length, modes in results.items() for mode, x in modes.items()}
    out["default >= 1.2x the best user-made peer by clips/s and by CPU per clip, every mode and length"] = {
        "met": all(a is not None and b is not None and a >= 1.2 and b >= 1.2 for a, b in beat.values()),
        "figures": beat}
    if {"3 s", "10 s"} <= set(results) and "segments 8" in results["3 s"]:
        s3, s10 = results["3 s"]["segments 8"], results["10 s"]["segments 8"]
        cost = _ratio(s10["cpu_ms_per_clip"]["default"], s3["cpu_ms_per_clip"]["default"])
        wall = _ratio(s3["clips_per_s"]["default"], s10["clips_per_s"]["default"])
        out["segments at 10 s cost <= 1.5x segments at 3 s per clip"] = {
            "met": cost is not None and cost <= 1.5 and wall is not None and wall <= 1.5,
            "figures": {"cpu_ms_ratio": cost, "wall_ratio": wall}}
    share = {f"{length} {mode}": x["share_of_decode_ceiling"] for length, modes in results.items()
             for mode, x in modes.items()}
    out[">= 80 % of the decode-only ceiling"] = {"met": all(v is not None and v >= 0.8 for v in share.values()),
                                                 "figures": share}
    if memory and memory.get("growth") is not None:
        out["resident memory flat over 10 epochs (private memory, RssAnon, trend fitted over 40 epochs: growth per 10 epochs under 5 %)"] = {
            "met": memory["growth"] < 0.05, "figures": memory}
    return out


def plot(r: dict, path: Path) -> str:
    """Clips/s per contender per length and mode, the decode-only ceiling as a dashed line."""
    groups, ceiling = {}, {}
    for length, modes in r["lengths"].items():
        for mode, x in modes.items():
            key = f"{length} {mode}"
            groups[key] = {k: v for k, v in x["clips_per_s"].items() if k != "decode-only"}
            ceiling[key] = x["clips_per_s"]["decode-only"]
    return bar_chart(path, "Loader throughput (median clips/s)", "clips/s", groups, lines=ceiling)


def _x(v: float | None) -> str:
    return f"{v:.2f}x" if v is not None else "n/a"


def to_markdown(r: dict) -> str:
    from synapt_fast.engine.machine import describe

    p = r["params"]
    lines = [
        "# Loader throughput", "",
        f"![clips/s per contender, length and mode]({r['plot']})", "",
        f"{p['clips_per_length']} distinct clips per length, each packed {p['copies']} times ({p['source']}); "
        f"shards: default = {p['default']}; vp9 GOP 32 = {p['vp9']}; vp9 GOP 8 = {p['vp9gop8']}; "
        f"mp4 long GOP = {p['mp4 long GOP']}; mp4 GOP 32 = {p['mp4 GOP 32']}. Output {p['output']}; batch "
        f"{p['batch_size']}, {p['workers']} workers (DALI lanes / DataLoader processes); median of {p['repeats']} "
        "epochs after a warm-up epoch, contenders alternated. Load from other work moves clips/s (the load "
        "average is on the machine line); CPU ms per clip moves much less. Ratios are medians of the ratios "
        "within each repeat (the contenders of a repeat run within seconds of each other); the ratio of the "
        "two medians follows in brackets.", "",
        describe(r["machine"]) + ".", "",
    ]
    for length, modes in r["lengths"].items():
        names = list(dict.fromkeys(k for x in modes.values() for k in x["clips_per_s"]))
        lines += [f"## {length} clips", "", "| mode | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for mode, x in modes.items():
            c, u = x["clips_per_s"], x["cpu_ms_per_clip"]
            cells = [f"{c[k]:.1f} ({u[k]:.1f} ms)" if k in c else "" for k in names]
            lines.append(f"| {mode} | " + " | ".join(cells) + " |")
        lines += ["", "Cells: median clips/s (CPU milliseconds per clip).", "",
                  "| mode | default / best peer (clips/s) | best peer by clips/s | default / best peer (CPU per clip) "
                  "| best peer by CPU | default / decode-only (clips/s) | (CPU) | frames decoded per clip: "
                  "default / vp9 GOP 32 / vp9 GOP 8 / sampled |", "|---|---|---|---|---|---|---|---|"]
        for mode, x in modes.items():
            w, m = x["frames_decoded_per_clip"], x.get("ratio_of_medians", {})

            def both(key, fmt):
                return fmt(x[key]) + (f" ({fmt(m[key])})" if m.get(key) is not None else "")

            pct = "{:.0%}".format
            lines.append(f"| {mode} | {both('default_over_best_peer', _x)} | {x['best_peer_by_rate']} | "
                         f"{both('default_over_best_peer_cpu', _x)} | {x['best_peer_by_cpu']} | "
                         f"{both('share_of_decode_ceiling', pct)} | {both('share_of_decode_ceiling_cpu', pct)} | "
                         f"{w['default']:.0f} / {w['vp9 GOP 32']:.0f} / {w['vp9 GOP 8']:.0f} / {w['sampled']} |")
        lines.append("")
        st = r.get("storage", {}).get(length)
        if st:
            lines += ["| split | kB per second of video | PSNR vs the source (dB) |", "|---|---|---|"]
            lines += [f"| {k} | {v['bytes_per_s'] / 1000:.1f} | "
                      + (f"{v['psnr_db']:.1f}" if "psnr_db" in v else "(the source)") + " |" for k, v in st.items()]
            lines.append("")
    for k, why in r.get("skipped", {}).items():
        lines += [f"Skipped contenders `{k}`: {why}", ""]
    mem = r["memory"] or {}
    if mem:
        g = mem.get("growth")
        lines += [f"Default DALI loader ({mem['length']} clips, segments 8) private resident memory (RssAnon) per "
                  f"epoch (MiB): {mem['rss_anon_mib_per_epoch']}; growth per 10 epochs (least-squares trend over "
                  "epochs 2 on, over their mean): " + (f"{g:.1%}" if g is not None else "n/a (quick)")
                  + ("; median of the last 3 epochs over that of epochs 2-4: "
                     f"{mem['median_growth']:.1%}" if mem.get("median_growth") is not None else "")
                  + f". All resident memory (VmRSS, with the touched pages of the mapped tars): "
                  f"{mem['rss_mib_per_epoch']}", ""]
    lines += ["## Targets", ""]
    for target, t in r["targets"].items():
        lines.append(f"- {'met' if t['met'] else 'NOT met'}: {target}: {json.dumps(t['figures'])}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=24, help="distinct clips per length")
    ap.add_argument("--copies", type=int, default=12, help="times each clip is packed")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--lengths", nargs="*", choices=list(LENGTHS), help="a subset of the lengths")
    ap.add_argument("--modes", nargs="*", choices=list(MODES), help="a subset of the modes")
    a = ap.parse_args(argv)
    run(a.clips, a.repeats, a.batch_size, a.workers, a.out_dir, a.quick, a.lengths, a.modes, a.copies)


if __name__ == "__main__":
    main(sys.argv[1:])
