"""Loader throughput: the DALI loader against the reference DataLoader + PyAV loader, per sampling mode.

One shard split (N rendered 3 s 320x240 clips -> VP9, short side 128, GOP 32, 30 fps) read by:

- `dali-reader`: the DALI loader with DALI's reader and CPU decoder (`workers` DALI threads),
  training mode: random sampling, TSN multi-scale crop, flip, normalise, 112x112 float32 NCTHW;
- `dali-seek`: the DALI loader with its seeking source (PyAV in `workers` DALI worker processes,
  the same DALI augmentation graph). The default is `dali-reader`; the ratios are the default's;
- `reference`: torch DataLoader with `workers` processes, webdataset + PyAV with keyframe
  seeking, the same sampling and augmentation;
- `torchcodec`: the reference loader with torchcodec's CPU `VideoDecoder` in place of PyAV
  (`torchcodec_loader.py`); skipped, with the reason recorded, where torchcodec cannot be used;
- `decode-only`: DALI reader + decoder at the same frame indices (from the same keyframe cut)
  and nothing else, the ceiling the full DALI pipeline can approach.

Per mode (segments 8x1, dense 8x1, dense 32x2): clips/s and frames/s, and CPU milliseconds per
clip (all threads and worker processes: robust to other load on a shared machine), median of
`repeats` timed epochs after a warm-up epoch, contenders alternated each repeat. Epochs are
whole, and each is timed until the process is idle again, so work a loader leaves running in
the background (the DALI loader builds the next epoch's pipeline in a thread) counts for it.
Also the resident memory of a
process running the DALI loader for 9 epochs (growth: the median of the last three epochs over
the median of epochs 2-4; a single epoch's figure swings by +-8 % on this machine). Writes
`benchmarks/results/loader.{json,md,png}`. Run: `synapt-fast bench loader [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchio import bar_chart, save_record

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MODES = {
    "segments 8x1": dict(mode="segments", num_frames=8),
    "dense 8x1": dict(mode="dense", num_frames=8, interval=1),
    "dense 32x2": dict(mode="dense", num_frames=32, interval=2),
}


def make_split(root: Path, clips: int) -> Path:
    from synapt_fast.synth.sampleclips import SampleSource
    from synapt_fast.sharding.pipeline import ShardOptions, shard_source
    from synapt_fast.sharding.transcode import EncodeOptions

    out = root / "bench" / "train"
    shard_source(SampleSource(6, clips // 6, 90, 320, 240), out, ShardOptions("bench", "train", workers=2),
                 EncodeOptions(short_side=128, gop=32))
    return out


def decode_only(split: Path, sampling, batch_size: int, workers: int):
    """A DALI pipeline of reader + decoder only, iterated like the loader (one epoch per call)."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def
    from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

    from synapt_fast.format.ivf import KEYFRAMES
    from synapt_fast.loader.dali_loader import DaliOps, _keyframe_cut
    from synapt_fast.loader.sampling import indices
    from synapt_fast.format.manifest import Manifest

    m = Manifest.load(split)
    cut = m.video_ext == "ivf"  # decode from the keyframe before each clip, as the loader does

    @pipeline_def(batch_size=batch_size, num_threads=workers, device_id=None, seed=0)
    def pipe():
        video, nframes, *keyframes = fn.readers.webdataset(
            paths=[str(split / s.tar) for s in m.shards], index_paths=[str(split / s.index) for s in m.shards],
            ext=[m.video_ext, "nframes.i32", *([KEYFRAMES] if cut else [])],
            dtypes=[types.UINT8, types.INT32, *([types.INT32] if cut else [])], random_shuffle=True,
            pad_last_batch=True, dont_use_mmap=True, name="reader")
        n = fn.cast(nframes, dtype=types.FLOAT)
        r = sampling.num_randoms(True)
        u = fn.random.uniform(range=[0.0, 1.0], shape=[r]) if r else None
        idx = fn.cast(indices(sampling, n, u, True, DaliOps), dtype=types.INT32)
        if cut:
            video, idx = _keyframe_cut(video, keyframes[0], idx)
        return fn.decoders.video(video, frames=idx, pad_mode="edge")

    p = pipe()
    p.build()
    it = DALIGenericIterator([p], ["video"], reader_name="reader", last_batch_policy=LastBatchPolicy.PARTIAL,
                             auto_reset=True)

    class Epochs:
        def __iter__(self):
            yield from it

    return Epochs()


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
    """CPU time (user + system) of this process and its live descendants (DataLoader workers).

    On a shared machine wall-clock rates swing with other load; CPU seconds per clip do not, and
    on an idle machine with c cores a loader's rate approaches c / (CPU seconds per clip).
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in [os.getpid(), *_descendants(os.getpid())]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / tick


def _ratio(a: float, b: float) -> float | None:
    """a / b to 3 places; None when b is 0 (a quick run's epoch can finish inside the warm-up's
    prefetch, leaving no CPU time to measure)."""
    return round(a / b, 3) if b else None


def _x(v: float | None) -> str:
    return f"{v:.2f}x" if v is not None else "n/a"


def _pct(v: float | None) -> str:
    return f"{v:.0%}" if v is not None else "n/a"


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


def time_epoch(loader) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, clips) of one epoch, including any background work it leaves."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    n = 0
    for b in loader:
        n += (b.label if hasattr(b, "label") else b[0]["video"]).shape[0]
    t1 = time.perf_counter()
    t_end = max(t1, settle())
    return t_end - t0, cpu_seconds() - c0, n


def rss_growth(split: Path, epochs: int = 9) -> dict:
    """Resident memory of a fresh process running the DALI loader for `epochs` epochs."""
    code = f"""
import json
from synapt_fast.loader import Sampling, Transform, make_loader
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
loader = make_loader({str(split)!r}, Sampling('segments', 8), Transform(size=112), train=True, batch_size=8)
out = []
for e in range({epochs}):
    for b in loader:
        pass
    out.append(rss())
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mib = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"rss_mib_per_epoch": [round(x, 1) for x in mib],
            # Medians of three epochs, not two single epochs: over 12 epochs one process's resident
            # memory moved between 368 and 453 MiB with no trend (dense 8x1, format 2 and 1 alike).
            "growth": round(statistics.median(mib[-3:]) / statistics.median(mib[1:4]) - 1, 4)
            if len(mib) >= 7 else None}


def run(clips: int = 240, repeats: int = 3, batch_size: int = 8, workers: int = 2, out_dir: Path = RESULTS,
        quick: bool = False) -> dict:
    from synapt_fast.loader import Sampling, Transform, make_loader
    from synapt_fast.engine.machine import machine_info

    import torchcodec_loader  # beside this file; spawned DataLoader workers import it by name

    if quick:
        clips, repeats = 12, 1
    modes = dict(list(MODES.items())[:1]) if quick else MODES
    skipped = {}
    if reason := torchcodec_loader.unavailable():
        skipped["torchcodec"] = reason
        print(f"torchcodec contender skipped: {reason}", flush=True)
    transform = Transform(size=112, layout="NCTHW")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        split = make_split(Path(tmp), clips)
        for name, spec in modes.items():
            sampling = Sampling(**spec)
            loaders = {
                "dali-reader": make_loader(split, sampling, transform, train=True, batch_size=batch_size,
                                           workers=workers, source="reader"),
                "dali-seek": make_loader(split, sampling, transform, train=True, batch_size=batch_size,
                                         workers=workers, source="seek"),
                "reference": make_loader(split, sampling, transform, train=True, batch_size=batch_size,
                                         backend="reference", workers=workers),
                "decode-only": decode_only(split, sampling, batch_size, workers),
            }
            if "torchcodec" not in skipped:
                loaders["torchcodec"] = torchcodec_loader.TorchCodecLoader(split, sampling, transform, train=True,
                                                                           batch_size=batch_size, workers=workers)
            for loader in loaders.values():
                time_epoch(loader)  # warm-up: pipeline build, worker start, page cache
            times = {k: [] for k in loaders}
            cpu = {k: [] for k in loaders}
            for r in range(repeats):
                for k in (list(loaders) if r % 2 == 0 else list(reversed(loaders))):
                    seconds, cpu_s, n = time_epoch(loaders[k])
                    times[k].append(n / seconds)
                    cpu[k].append(1000 * cpu_s / n)
                    print(f"{name:13s} repeat {r + 1}/{repeats} {k:11s} {n / seconds:8.1f} clips/s "
                          f"{1000 * cpu_s / n:7.2f} CPU ms/clip", flush=True)
            t = sampling.frames_per_clip()
            med = {k: statistics.median(v) for k, v in times.items()}
            cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
            default = "dali-" + make_loader(split, sampling, transform, train=True, batch_size=batch_size).source
            med["default"], cpu_med["default"] = med[default], cpu_med[default]
            results[name] = {
                "default_source": default,
                "clips_per_s": {k: round(v, 1) for k, v in med.items()},
                "frames_per_s": {k: round(v * t, 1) for k, v in med.items()},
                "cpu_ms_per_clip": {k: round(v, 2) for k, v in cpu_med.items()},
                "per_repeat_clips_per_s": {k: [round(x, 1) for x in v] for k, v in times.items()},
                "per_repeat_cpu_ms_per_clip": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
                "default_over_reference": _ratio(med["default"], med["reference"]),
                "default_over_reference_cpu": _ratio(cpu_med["reference"], cpu_med["default"]),
                "default_share_of_decode_ceiling": _ratio(med["default"], med["decode-only"]),
                "reader_share_of_decode_ceiling": _ratio(med["dali-reader"], med["decode-only"]),
            }
            if "torchcodec" in med:
                results[name]["default_over_torchcodec"] = _ratio(med["default"], med["torchcodec"])
                results[name]["default_over_torchcodec_cpu"] = _ratio(cpu_med["torchcodec"], cpu_med["default"])
            del loaders
        memory = rss_growth(split, epochs=9 if not quick else 2)
    record = {
        "benchmark": "loader",
        "machine": machine_info(),
        "params": {"clips": clips, "source": "3 s 320x240 rendered, 30 fps", "shards": "VP9 short side 128, GOP 32",
                   "output": "112x112 float32 NCTHW, train mode (multi-scale crop, flip)", "batch_size": batch_size,
                   "workers": workers, "repeats": repeats},
        "modes": results,
        "memory": memory,
        "skipped": skipped,
        "quick": quick,
    }
    print(save_record(out_dir, "loader_quick" if quick else "loader", record, plot, to_markdown))
    return record


def plot(r: dict, path: Path) -> str:
    """Clips/s per contender per mode, the decode-only ceiling as a dashed line."""
    groups = {name: {k: v for k, v in x["clips_per_s"].items() if k not in ("default", "decode-only")}
              for name, x in r["modes"].items()}
    ceiling = {name: x["clips_per_s"]["decode-only"] for name, x in r["modes"].items()}
    return bar_chart(path, "Loader throughput (median clips/s)", "clips/s", groups, lines=ceiling)


def to_markdown(r: dict) -> str:
    from synapt_fast.engine.machine import describe

    m, p = r["machine"], r["params"]
    lines = [
        "# Loader throughput", "",
        f"![clips/s per contender and mode]({r['plot']})", "",
        f"{p['clips']} clips ({p['source']}) in {p['shards']} shards -> {p['output']}; batch {p['batch_size']}, "
        f"{p['workers']} workers (DALI threads / DataLoader processes); median of {p['repeats']} epochs after a "
        "warm-up epoch, contenders alternated.", "",
        describe(m) + ".", "",
        "| mode | default source | dali-reader | dali-seek | reference | decode-only | default frames/s | "
        "default / reference | default / reference by CPU time | dali-reader / decode-only |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, x in r["modes"].items():
        c, f, u = x["clips_per_s"], x["frames_per_s"], x["cpu_ms_per_clip"]
        cell = lambda k: f"{c[k]:.1f} ({u[k]:.1f} ms)"  # noqa: E731
        lines.append(f"| {name} | {x['default_source']} | {cell('dali-reader')} | {cell('dali-seek')} | "
                     f"{cell('reference')} | {cell('decode-only')} | {f['default']:.0f} | "
                     f"{_x(x['default_over_reference'])} | {_x(x['default_over_reference_cpu'])} | "
                     f"{_pct(x['reader_share_of_decode_ceiling'])} |")
    lines += ["", "Cells: median clips/s (CPU milliseconds per clip, all threads and processes)."]
    if any("torchcodec" in x["clips_per_s"] for x in r["modes"].values()):
        lines += ["", "| mode | torchcodec (DataLoader + torchcodec) | default / torchcodec | "
                  "default / torchcodec by CPU time |", "|---|---|---|---|"]
        for name, x in r["modes"].items():
            c, u = x["clips_per_s"], x["cpu_ms_per_clip"]
            lines.append(f"| {name} | {c['torchcodec']:.1f} ({u['torchcodec']:.1f} ms) | "
                         f"{_x(x['default_over_torchcodec'])} | {_x(x['default_over_torchcodec_cpu'])} |")
    for k, why in r.get("skipped", {}).items():
        lines += ["", f"Skipped contender `{k}`: {why}"]
    mem = r["memory"]
    growth = mem["growth"]
    lines += ["", f"DALI loader resident memory per epoch (MiB): {mem['rss_mib_per_epoch']}; growth (median of the "
              "last 3 epochs over the median of epochs 2-4): " + (f"{growth:.1%}" if growth is not None else "n/a (quick)")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    run(a.clips, a.repeats, a.batch_size, a.workers, a.out_dir, a.quick)


if __name__ == "__main__":
    main(sys.argv[1:])
