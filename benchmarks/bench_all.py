"""The whole suite in sequence (shard, loader, gop, model, train, shapes), then an index of headlines.

Each benchmark writes its own JSON, markdown and PNG as when run alone; this writes
`summary.{json,md}` beside them: the machine, and per benchmark its result files and headline
figures read back from its record (or the reason it did not run). `--index-only` rebuilds the
summary from the records already there without running anything. `--quick` runs every quick mode into `--out-dir` (a
minute or so on 2 cores: what CI runs); without it the full runs take tens of minutes.
Run: `synapt-fast bench all [--quick] [--out-dir DIR]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from benchio import write_atomic

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = ("shard", "loader", "gop", "model", "train", "shapes")


def _stem(name: str, quick: bool) -> str:
    # shard, loader, gop and shapes keep a quick run apart from the committed full results; model
    # and train always write under their own name.
    return f"{name}_quick" if quick and name in ("shard", "loader", "gop", "shapes") else name


def headline(name: str, r: dict) -> dict:
    """The few figures of one benchmark record that the summary shows."""
    if name == "shard":
        return {"shard_1w_clips_per_s": r["median_clips_per_s"]["shard-1w"],
                "shard_1w_over_ffmpeg_1p": r["ratios"]["shard_1w_over_ffmpeg_1p"],
                "shard_2w_over_shard_1w": r["ratios"]["shard_2w_over_shard_1w"]}
    if name == "loader":
        out = {}
        for length, modes in r["lengths"].items():
            for mode, x in modes.items():
                out[f"{length} {mode}"] = {
                    "default_clips_per_s": x["clips_per_s"][x["default"]],
                    "default_over_best_peer": x["default_over_best_peer"],
                    "default_over_best_peer_cpu": x["default_over_best_peer_cpu"],
                    "share_of_decode_ceiling": x["share_of_decode_ceiling"]}
        return out
    if name == "gop":
        best = {}
        for row in r["results"]:
            key = f"{row['video_s']} s {row['mode']}"
            if row["format"] >= 2 and row["cpu_ms_per_clip"] < best.get(key, (None, float("inf")))[1]:
                best[key] = (row["gop"], row["cpu_ms_per_clip"])
        return {"cut_over_frame_0": r["cut_over_frame_0"],
                "cheapest_gop_by_cpu": {k: v[0] for k, v in best.items()}}
    if name == "model":
        return {row["model"]: round(row["clips_per_s"], 3) for row in r["results"]
                if row.get("variant") == "fp32" and "clips_per_s" in row}
    if name == "train":
        return {row["model"]: {"overhead": round(row["overhead"], 4), "data_wait": round(row["data_wait"], 4)}
                for row in r["results"]}
    if name == "shapes":
        b = r["params"]["batch"]
        return {k: {"train_clips_per_s": round(b / s["median_s"]["train"], 4),
                    "train_clips_per_cpu_s": round(b / s["median_cpu_s"]["train"], 4),
                    "eval_videos_per_s": round(1 / s["median_s"]["eval"], 4),
                    "eval_videos_per_cpu_s": round(1 / s["median_cpu_s"]["eval"], 4)} for k, s in r["shapes"].items()}
    raise ValueError(f"no headline for benchmark {name!r}")


def run_one(name: str, quick: bool, out_dir: Path) -> dict:
    import importlib

    bench = importlib.import_module(f"bench_{name}")  # beside this file
    if name == "shard" and not shutil.which("ffmpeg"):
        raise SystemExit("ffmpeg not found (the peer baseline): apt install ffmpeg")
    return bench.run(quick=quick, out_dir=out_dir)


def entry(name: str, quick: bool, out_dir: Path) -> dict:
    """One benchmark's summary entry from the record it left in `out_dir`."""
    stem = _stem(name, quick)
    path = out_dir / f"{stem}.json"
    if not path.exists():
        return {"skipped": f"no {path.name} in {out_dir}"}
    record = json.loads(path.read_text())
    m = record["machine"]
    return {"files": [f"{stem}.{ext}" for ext in ("json", "md", "png") if (out_dir / f"{stem}.{ext}").exists()],
            # each record names its own machine and load: runs made at different times differ
            "load_average": m.get("load_average"), "headline": headline(name, record)}


def run(*, quick: bool = False, out_dir: Path = RESULTS, only: list[str] | None = None, index_only: bool = False,
        log=print) -> dict:
    """Run the benchmarks (unless `index_only`), then index their records in summary.{json,md}."""
    from synapt_fast.engine.machine import machine_info

    names = [n for n in ORDER if not only or n in only]
    out_dir = Path(out_dir)
    summary = {"benchmark": "all", "quick": quick, "machine": machine_info(), "benchmarks": {}}
    for name in names:
        seconds = None
        if not index_only:
            log(f"== bench {name}{' --quick' if quick else ''}")
            t0 = time.perf_counter()
            try:
                run_one(name, quick, out_dir)
            except SystemExit as exc:  # a benchmark that cannot run here says why; the rest still run
                summary["benchmarks"][name] = {"skipped": str(exc)}
                continue
            seconds = round(time.perf_counter() - t0, 1)
        summary["benchmarks"][name] = entry(name, quick, out_dir) | ({"seconds": seconds} if seconds else {})
    write_atomic(out_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    write_atomic(out_dir / "summary.md", to_markdown(summary))
    log(f"summary -> {out_dir / 'summary.md'}")
    return summary


def _fmt(v) -> str:
    if isinstance(v, dict):
        return "; ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def to_markdown(s: dict) -> str:
    from synapt_fast.engine.machine import describe

    lines = ["# Benchmark suite summary" + (" (quick mode: smoke figures, not results)" if s["quick"] else ""), "",
             describe(s["machine"]) + ".", "",
             "| benchmark | files | seconds | load average | headline |", "|---|---|---:|---|---|"]
    for name, b in s["benchmarks"].items():
        if "skipped" in b:
            lines.append(f"| {name} | — | — | — | skipped: {b['skipped']} |")
            continue
        files = ", ".join(f"[{f}]({f})" for f in b["files"])
        head = "<br>".join(f"{k}: {_fmt(v)}" for k, v in b["headline"].items())
        seconds = f"{b['seconds']:.0f}" if "seconds" in b else "—"
        lines.append(f"| {name} | {files} | {seconds} | {b.get('load_average') or '—'} | {head} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", action="append", choices=ORDER)
    ap.add_argument("--index-only", action="store_true", help="only rebuild summary.* from the records there")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    run(quick=a.quick, out_dir=a.out_dir, only=a.only, index_only=a.index_only)


if __name__ == "__main__":
    main(sys.argv[1:])
