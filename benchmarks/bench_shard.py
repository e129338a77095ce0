"""Sharding throughput: `synapt-fast shard` against Debian's `ffmpeg` CLI doing the same transcode.

Reference set: N generated 3 s 320x240 H.264 clips (25 fps, 4 classes) -> VP9, short side 128,
30 fps, GOP 32, the encoder settings of `EncodeOptions(codec="vp9")`. Contenders, alternated within each
repeat so machine drift hits all of them:

- `shard-1w` / `shard-2w`: the sharder with 1 and 2 worker processes (decode check, resample,
  resize, encode, tar + index + sha256 + manifest);
- `ffmpeg-1p` / `ffmpeg-2p`: one `ffmpeg` process per clip, 1 or 2 at a time, writing .webm files
  (no packing, no manifest), with the same filters and encoder options, single-threaded.

Prints and writes `benchmarks/results/shard.{json,md}` with the median of the repeats and the
ratios the targets refer to (>= 1.0x ffmpeg per core; >= 1.8x from 1 to 2 workers).
Run: `synapt-fast bench shard [--clips 200 --repeats 3]`, or `--quick` for a seconds-long check.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchio import bar_chart, save_record
from synapt_fast.engine.machine import describe, machine_info
from synapt_fast.synth.sampleclips import render, write_clip
from synapt_fast.sharding.pipeline import ShardOptions, shard_source
from synapt_fast.sharding.sources import FolderSource
from synapt_fast.sharding.transcode import EncodeOptions, target_size

RESULTS = Path(__file__).resolve().parent / "results"


def make_reference_set(root: Path, clips: int) -> Path:
    for i in range(clips):
        label = i % 4
        write_clip(root / f"class_{label}" / f"clip_{i:04d}.mp4", render(label, i, 75, 320, 240), fps=25.0)
    return root


def ffmpeg_command(src: Path, dst: Path, opts: EncodeOptions) -> list[str]:
    w, h = target_size(320, 240, opts.short_side)
    return ["ffmpeg", "-nostdin", "-v", "error", "-y", "-threads", "1", "-i", str(src),
            "-vf", f"fps={opts.fps:g},scale={w}:{h}:flags=area", "-pix_fmt", "yuv420p",
            "-c:v", "libvpx-vp9", "-crf", "32", "-b:v", "0", "-g", str(opts.gop), "-deadline", "realtime",
            "-cpu-used", "8", "-row-mt", "0", "-lag-in-frames", "0", "-threads", "1", "-an", str(dst)]


def run_ffmpeg(files: list[Path], out: Path, processes: int, opts: EncodeOptions) -> float:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(processes) as pool:
        codes = list(pool.map(lambda f: subprocess.run(ffmpeg_command(f, out / (f.stem + ".webm"), opts)).returncode,
                              files))
    seconds = time.perf_counter() - t0
    if any(codes):
        raise RuntimeError(f"ffmpeg failed on {sum(1 for c in codes if c)} clips")
    return seconds


def run_shard(src: Path, out: Path, workers: int, opts: EncodeOptions) -> float:
    t0 = time.perf_counter()
    summary = shard_source(FolderSource(src), out, ShardOptions("bench", "train", workers=workers), opts,
                           overwrite=True)
    seconds = time.perf_counter() - t0
    if summary.skipped:
        raise RuntimeError(f"sharder skipped {summary.skipped} clips: {summary.skipped_items[:3]}")
    return seconds


def run(clips: int = 200, repeats: int = 3, out_dir: Path = RESULTS, quick: bool = False) -> dict:
    if quick:
        clips, repeats = 6, 1
    if not shutil.which("ffmpeg"):
        raise SystemExit("ffmpeg not found: install Debian's ffmpeg (apt install ffmpeg) for the peer baseline")
    opts = EncodeOptions(codec="vp9")  # the ffmpeg peer runs the same VP9 encoder settings
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    contenders = {
        "shard-1w": lambda src, out: run_shard(src, out, 1, opts),
        "ffmpeg-1p": lambda src, out: run_ffmpeg(files, out, 1, opts),
        "shard-2w": lambda src, out: run_shard(src, out, 2, opts),
        "ffmpeg-2p": lambda src, out: run_ffmpeg(files, out, 2, opts),
    }
    times: dict[str, list[float]] = {k: [] for k in contenders}
    with tempfile.TemporaryDirectory() as tmp:
        src = make_reference_set(Path(tmp) / "src", clips)
        files = sorted(src.rglob("*.mp4"))
        run_shard(src, Path(tmp) / "warm", 1, opts) if not quick else None  # warm caches and imports
        for r in range(repeats):
            # Alternate the order each repeat so drift does not favour one contender.
            order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
            for name in order:
                out = Path(tmp) / f"{name}-{r}"
                times[name].append(contenders[name](src, out))
                shutil.rmtree(out)
                print(f"repeat {r + 1}/{repeats} {name:10s} {clips / times[name][-1]:7.1f} clips/s", flush=True)
    median = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: clips / s for k, s in median.items()}
    record = {
        "benchmark": "shard",
        "machine": machine_info() | {"ffmpeg": version},
        "params": {"clips": clips, "source": "3 s 320x240 H.264 25 fps", "repeats": repeats,
                   "encode": opts.to_dict()},
        "seconds": times,
        "median_clips_per_s": {k: round(v, 2) for k, v in rate.items()},
        "ratios": {
            "shard_1w_over_ffmpeg_1p": round(rate["shard-1w"] / rate["ffmpeg-1p"], 3),
            "shard_2w_over_shard_1w": round(rate["shard-2w"] / rate["shard-1w"], 3),
            "shard_2w_over_ffmpeg_2p": round(rate["shard-2w"] / rate["ffmpeg-2p"], 3),
            "ffmpeg_2p_over_ffmpeg_1p": round(rate["ffmpeg-2p"] / rate["ffmpeg-1p"], 3),
        },
        "quick": quick,
    }
    plot = lambda r, path: bar_chart(path, "Sharding throughput (median clips/s)", "clips/s",  # noqa: E731
                                     {"clips/s": r["median_clips_per_s"]})
    print(save_record(out_dir, "shard_quick" if quick else "shard", record, plot, to_markdown))
    return record


def to_markdown(r: dict) -> str:
    m, p = r["machine"], r["params"]
    lines = [
        "# Sharding throughput", "", f"![clips/s per contender]({r['plot']})", "",
        f"{p['clips']} clips ({p['source']}) -> VP9 short side {p['encode']['short_side']}, "
        f"{p['encode']['fps']:g} fps, GOP {p['encode']['gop']}; median of {p['repeats']} repeats, "
        "contenders alternated.", "",
        f"{describe(m)}; {m['ffmpeg']}.", "",
        "| contender | clips/s (median) | per-repeat seconds |", "|---|---|---|",
    ]
    for k, v in r["median_clips_per_s"].items():
        lines.append(f"| {k} | {v:.1f} | {', '.join(f'{s:.1f}' for s in r['seconds'][k])} |")
    lines += ["", "| ratio | value | target |", "|---|---|---|"]
    targets = {"shard_1w_over_ffmpeg_1p": ">= 1.0", "shard_2w_over_shard_1w": ">= 1.8"}
    for k, v in r["ratios"].items():
        lines.append(f"| {k} | {v:.2f}x | {targets.get(k, '')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    run(a.clips, a.repeats, a.out_dir, a.quick)


if __name__ == "__main__":
    main(sys.argv[1:])
