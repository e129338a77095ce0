"""Benchmark the synthetic generator: clips/s per core rendering 32 frames at 112 x 112, in one
process and in two, plus render + VP9 encode, and memory. Median of several repeats.

    python benchmarks/bench_synth.py [--clips 48] [--repeats 5] [--sheet]

Writes benchmarks/results/synth.json and synth.md (and, with --sheet, the contact sheet
synth_contact_sheet.png used by synth_report.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np

from synapt_fast.synth.motions import pretrain_class_names
from synapt_fast.synth.render import render_clip

RESULTS = Path(__file__).resolve().parent / "results"
FRAMES, SIZE = 32, 112


def _render_batch(args: tuple[int, int]) -> tuple[int, float]:
    """Render clips [start, start + count) of the pre-training classes, round robin; returns
    the count and the CPU seconds this process spent on them."""
    start, count = args
    names = pretrain_class_names()
    cpu0 = time.process_time()
    for i in range(start, start + count):
        render_clip(names[i % len(names)], 0, 0, i, FRAMES, SIZE)
    return count, time.process_time() - cpu0


def time_one_process(clips: int, repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock clips/s and clips per CPU-second, one per repeat."""
    _render_batch((0, 4))  # warm-up: imports, first allocations
    rates, cpu_rates = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        n, cpu = _render_batch((r * clips, clips))
        rates.append(n / (time.perf_counter() - t0))
        cpu_rates.append(n / cpu)
    return rates, cpu_rates


def time_processes(procs: int, clips: int, repeats: int) -> tuple[list[float], list[float]]:
    """Aggregate wall-clock clips/s of `procs` worker processes, each rendering `clips`
    clips, and their clips per CPU-second."""
    ctx = multiprocessing.get_context("spawn")
    rates, cpu_rates = [], []
    with ctx.Pool(procs) as pool:
        pool.map(_render_batch, [(0, 4)] * procs)  # warm the workers up
        for r in range(repeats):
            jobs = [((r * procs + p) * clips, clips) for p in range(procs)]
            t0 = time.perf_counter()
            done = pool.map(_render_batch, jobs, chunksize=1)
            rates.append(procs * clips / (time.perf_counter() - t0))
            cpu_rates.append(sum(n for n, _ in done) / sum(c for _, c in done))
    return rates, cpu_rates


def time_render_encode(clips: int, repeats: int) -> list[float] | None:
    """Render + VP9 encode (the shard writer's encoder, one thread) in one process."""
    try:
        from synapt_fast.sharding.sources import Frames
        from synapt_fast.sharding.transcode import EncodeOptions, _encode_frames
    except ImportError:
        return None
    names = pretrain_class_names()
    opts = EncodeOptions(codec="vp9", short_side=0)
    rates = []
    for r in range(repeats):
        t0 = time.perf_counter()
        for i in range(r * clips, (r + 1) * clips):
            _encode_frames(Frames(render_clip(names[i % len(names)], 0, 0, i, FRAMES, SIZE), 30.0), opts)
        rates.append(clips / (time.perf_counter() - t0))
    return rates


def memory_per_clip() -> dict:
    tracemalloc.start()
    render_clip(pretrain_class_names()[0], 0, 0, 0, FRAMES, SIZE)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"peak_traced_mb_per_clip": round(peak / 1e6, 2),
            "clip_bytes_mb": round(FRAMES * SIZE * SIZE * 3 / 1e6, 2),
            "process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    import av

    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "av": av.__version__,
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}


def summarise(rates: list[float] | None, cores: int, cpu_rates: list[float] | None = None) -> dict | None:
    if not rates:
        return None
    out = {"clips_per_s": round(statistics.median(rates), 1),
           "clips_per_s_per_core": round(statistics.median(rates) / cores, 1),
           "min": round(min(rates), 1), "max": round(max(rates), 1), "repeats": len(rates)}
    if cpu_rates:
        # Clips per CPU-second of the rendering processes: what one core delivers when it is
        # not shared, so less sensitive to other load on the machine than wall-clock rates.
        out["clips_per_cpu_s"] = round(statistics.median(cpu_rates), 1)
    return out


def bias_probe(biases=(0.0, 0.25, 0.5, 0.75, 1.0), classes: int = 10, per_class: int = 16) -> dict:
    """Still-frame probe accuracy (12 clips per class fit, 4 test) per downstream bias, and on
    the pre-training set (scene independent of the label) for reference."""
    from synapt_fast.synth.probe import probe_source
    from synapt_fast.synth.sources import DownstreamSource, SynthSource

    small = dict(frames=4, size=64)
    out = {f"downstream bias {b}": round(probe_source(
        DownstreamSource(classes, per_class, bias=b, **small), per_class - 4), 3) for b in biases}
    out["pretrain"] = round(probe_source(SynthSource(classes, per_class, **small), per_class - 4), 3)
    out["chance"] = round(1 / classes, 3)
    return out


def write_sheet(path: Path) -> None:
    """Several pre-training classes (varied actors, cameras, backgrounds) and one downstream
    class at bias 0 and 1, six frames each."""
    from synapt_fast.sharding.contact_sheet import contact_sheet, write_png
    from synapt_fast.synth.sources import DownstreamSource

    names = pretrain_class_names()
    clips, labels = [], []
    for i, name in enumerate(names[::29][:8]):  # spread over the class list
        clips.append(render_clip(name, 0, 0, i, FRAMES, SIZE))
        labels.append(f"pretrain {name}")
    # Two downstream classes, two clips each, at bias 0 (random scene contexts) and bias 1
    # (each class always in its own context): same actors and motions, different scenes.
    for bias in (0.0, 1.0):
        src = DownstreamSource(6, 2, bias=bias, frames=FRAMES, size=SIZE)
        for item in [it for it in src.items() if it.label in (0, 1)]:
            clips.append(item.render().array)
            labels.append(f"down b={bias:.0f} {item.class_name} ctx={item.meta['context']}")
    write_png(path, contact_sheet(clips, labels, frames_per_clip=6))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=48, help="clips per timed repeat (per process)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sheet", action="store_true", help="also write the contact sheet PNG")
    args = ap.parse_args()

    info = machine()
    one, one_cpu = time_one_process(args.clips, args.repeats)
    two, two_cpu = time_processes(2, args.clips, args.repeats)
    enc = time_render_encode(max(args.clips // 4, 4), args.repeats)
    result = {
        "benchmark": "synth generation", "frames": FRAMES, "size": SIZE,
        "clips_per_repeat": args.clips, "machine": info,
        "render_1_process": summarise(one, 1, one_cpu),
        "render_2_processes": summarise(two, 2, two_cpu),
        "render_vp9_encode_1_process": summarise(enc, 1),
        "memory": memory_per_clip(),
        "still_frame_probe_accuracy": bias_probe(),
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "note": "shared machine: other work ran concurrently, so rates are noisy (see min/max)",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "synth.json").write_text(json.dumps(result, indent=1) + "\n")

    def row(label, s):
        if not s:
            return f"| {label} | n/a | n/a | n/a | n/a |"
        return (f"| {label} | {s['clips_per_s']} | {s['clips_per_s_per_core']} | "
                f"{s.get('clips_per_cpu_s', 'n/a')} | {s['min']}-{s['max']} |")

    md = [
        f"# Synthetic generation speed ({FRAMES} frames at {SIZE}x{SIZE})", "",
        f"CPU: {info['cpu']} ({info['logical_cpus']} logical CPUs); Python {info['python']}, "
        f"numpy {info['numpy']}, PyAV {info['av']}. Median of {args.repeats} repeats of "
        f"{args.clips} clips per process. Load average at start {info['load_avg_at_start']}, "
        f"at end {result['load_avg_at_end']}: the machine is shared, so figures are noisy.", "",
        "| what | clips/s (wall) | clips/s per core (wall) | clips per CPU-second | range (clips/s, wall) |",
        "| --- | --- | --- | --- | --- |",
        row("render, 1 process", result["render_1_process"]),
        row("render, 2 processes", result["render_2_processes"]),
        row("render + VP9 encode, 1 process", result["render_vp9_encode_1_process"]),
        "", f"Memory: peak traced allocation while rendering one clip "
        f"{result['memory']['peak_traced_mb_per_clip']} MB (the clip itself is "
        f"{result['memory']['clip_bytes_mb']} MB of uint8); benchmark process max RSS "
        f"{result['memory']['process_max_rss_mb']} MB.", "",
        "Target: >= 20 clips/s per core for rendering.", "",
        "Still-frame probe (nearest centroid on one frame's 8x8 chromaticity thumbnail; 10 classes, "
        "12 clips per class fit, 4 test, 64x64):", "",
        "| set | accuracy |", "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in result["still_frame_probe_accuracy"].items()], "",
    ]
    (RESULTS / "synth.md").write_text("\n".join(md))
    print("\n".join(md))
    if args.sheet:
        write_sheet(RESULTS / "synth_contact_sheet.png")
        print(f"contact sheet: {(RESULTS / 'synth_contact_sheet.png').stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
