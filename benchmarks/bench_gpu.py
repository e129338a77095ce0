"""The GPU suite: what this project cannot measure on a CPU, in one command of under ten minutes.

1. `nvdec`: DALI's GPU ("mixed") decoder, frames/s per codec (MJPEG, VP9, H.264, HEVC) at short side
   128 and 256 (HEVC: 144, NVDEC's smallest HEVC picture, instead of 128), on shards made on the
   fly (`shard_source` with `EncodeOptions(codec=...)` from rendered clips); decode only, dense
   32x2 indices.
2. `loader`: the DALI loader with `decode="gpu"` per sampling mode (segments 8x1, dense 8x1,
   dense 32x2) on the default (MJPEG) short-side-128 shards: clips/s with the GPU defaults (lanes
   x decoder threads, `dali_loader.GPU_LANES`) against the earlier one lane of two threads; and
   TSN segments on 10 s clips (the length of Kinetics clips), MJPEG and VP9 GOP 32, the same
   per-frame streams the CPU decoder gets.
3. `train`: bf16 autocast forward + backward clips/s per full-size model (`bench_model.bench_one`).
4. `data_wait`: a bf16 training loop of each full-size model fed by the real GPU loader: the share
   of the step spent waiting for the next batch.

Refuses, before doing anything, when no CUDA device is visible to torch or DALI's GPU backend
cannot run (`gpu_unavailable()`). The plan (what runs, with which parameters) is `plan()`, and
is written into `gpu.json` beside the figures, after each step (a run stopped by its time
budget keeps what it measured). Run: `synapt-fast bench gpu`.

On the lent GPU machine torch is installed but DALI is not and no package registry is reachable:
`benchmarks/gpu_fetch.py` here and `benchmarks/gpu_run.py` there carry, install and run it
(benchmarks/README.md, "The GPU run").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchio import bar_chart, write_atomic

RESULTS = Path(__file__).resolve().parent / "results"
CODECS = ("mjpeg", "vp9", "h264", "hevc")
SHORT_SIDES = (128, 256)
MODES = {
    "segments 8x1": dict(mode="segments", num_frames=8),
    "dense 8x1": dict(mode="dense", num_frames=8, interval=1),
    "dense 32x2": dict(mode="dense", num_frames=32, interval=2),
}
LONG_CODECS = ("mjpeg", "vp9")  # the default shards and the smaller VP9 ones
FULL_MODELS = ("tsn_r50", "i3d_r50", "r2plus1d_r50", "timesformer_b16")
# The GPU loader's defaults against the single lane of two threads it had before.
LOADER_CONFIGS = {"default": {}, "1 lane x 2 threads": {"lanes": 1, "workers": 2}}


def short_side_for(codec: str, side: int) -> int:
    """`side`, raised to NVDEC's smallest picture for `codec` (HEVC: 144)."""
    from synapt_fast.format.codecs import NVDEC_MIN_SIZE

    return max(side, *NVDEC_MIN_SIZE.get(codec, (0, 0)))


def plan(clips: int = 96, batch: int = 16, model_batch: int = 8, repeats: int = 3) -> dict:
    """Every step the suite runs, with its parameters (also the record's `plan`)."""
    return {
        "nvdec": {"codecs": list(CODECS), "short_sides": list(SHORT_SIDES), "clips": clips,
                  "source": "rendered 3 s 320x240 -> 30 fps, GOP 32", "indices": "dense 32x2",
                  "batch": batch, "repeats": repeats},
        "loader": {"modes": list(MODES), "codec": "mjpeg", "short_side": 128, "clips": clips, "batch": batch,
                   "long": {"mode": "segments 8x1", "seconds": 10, "codecs": list(LONG_CODECS)},
                   "output": "112x112 float32 NCTHW, train mode", "decode": "gpu", "repeats": repeats,
                   "configs": {name: cfg for name, cfg in LOADER_CONFIGS.items()}},
        "train": {"models": list(FULL_MODELS), "precision": "bf16", "batch": model_batch, "warmup": 3,
                  "repeats": 10},
        "data_wait": {"models": list(FULL_MODELS), "precision": "bf16", "batch": model_batch, "steps": 20,
                      "loader": "DALI decode=gpu, MJPEG short side 256, 224x224, the model's sampling"},
        "budget_s": 600,
    }


def gpu_unavailable() -> str | None:
    """None when a CUDA device and DALI's GPU backend are there; else why the suite cannot run."""
    try:
        import torch
    except ImportError as exc:
        return f"torch is not importable ({exc})"
    if not torch.cuda.is_available():
        return "no CUDA device visible to torch (torch.cuda.is_available() is False)"
    try:
        from nvidia.dali.backend import GetCUDADeviceCount
    except ImportError as exc:
        return (f"DALI is not installed ({exc}); carry the nvidia-dali-cuda120 wheel to this machine and "
                "pip install it")
    if int(GetCUDADeviceCount()) < 1:
        return "DALI sees no CUDA device (driver or CUDA runtime missing)"
    return None


def make_split(root: Path, codec: str, short_side: int, clips: int, frames: int = 90) -> Path:
    from synapt_fast.synth.sampleclips import SampleSource
    from synapt_fast.sharding.pipeline import ShardOptions, shard_source
    from synapt_fast.sharding.transcode import EncodeOptions

    out = root / f"{codec}_{short_side}_{frames}" / "train"
    shard_source(SampleSource(6, max(1, clips // 6), frames, 320, 240), out, ShardOptions("gpu", "train", workers=4),
                 EncodeOptions(codec=codec, short_side=short_side, gop=32))
    return out


def nvdec_rate(split: Path, batch: int, repeats: int) -> list[float]:
    """Frames/s of DALI's mixed decoder over one epoch of `split`, per repeat (after a warm-up)."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def
    from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

    from synapt_fast.loader.dali_graph import DaliOps
    from synapt_fast.loader.sampling import Sampling, indices
    from synapt_fast.format.manifest import Manifest

    m = Manifest.load(split)
    sampling = Sampling(**MODES["dense 32x2"])

    @pipeline_def(batch_size=batch, num_threads=4, device_id=0, seed=0)
    def pipe():
        video, nframes = fn.readers.webdataset(
            paths=[str(split / s.tar) for s in m.shards], index_paths=[str(split / s.index) for s in m.shards],
            ext=[m.video_ext, "nframes.i32"], dtypes=[types.UINT8, types.INT32], pad_last_batch=True, name="reader")
        n = fn.cast(nframes, dtype=types.FLOAT)
        u = fn.random.uniform(range=[0.0, 1.0], shape=[sampling.num_randoms(True)])
        idx = fn.cast(indices(sampling, n, u, True, DaliOps), dtype=types.INT32)
        return fn.decoders.video(video, frames=idx, pad_mode="edge", device="mixed")

    p = pipe()
    p.build()
    it = DALIGenericIterator([p], ["video"], reader_name="reader", last_batch_policy=LastBatchPolicy.PARTIAL,
                             auto_reset=True)
    rates = []
    for r in range(repeats + 1):
        import torch

        t0, frames = time.perf_counter(), 0
        for b in it:
            frames += b[0]["video"].shape[0] * b[0]["video"].shape[1]
        torch.cuda.synchronize()
        if r:  # repeat 0 is the warm-up
            rates.append(frames / (time.perf_counter() - t0))
    return rates


def loader_rate(split: Path, spec: dict, batch: int, repeats: int, **config) -> list[float]:
    import torch

    from synapt_fast.loader import Sampling, Transform, make_loader

    loader = make_loader(split, Sampling(**spec), Transform(size=112), train=True, batch_size=batch, decode="gpu",
                         **{"workers": 4, **config})
    rates = []
    for r in range(repeats + 1):
        t0, n = time.perf_counter(), 0
        for b in loader:
            n += b.label.shape[0]
        torch.cuda.synchronize()
        if r:
            rates.append(n / (time.perf_counter() - t0))
    return rates


def data_wait(model_name: str, split: Path, batch: int, steps: int) -> dict:
    """Share of a bf16 training loop fed by the GPU loader spent waiting for batches."""
    import torch
    import torch.nn.functional as F

    from synapt_fast.loader import Sampling, Transform, make_loader
    from synapt_fast.models import create_model

    model = create_model(model_name, num_classes=150).cuda().train()
    sampling = {"tsn": Sampling("segments", 8), "timesformer": Sampling("uniform", 8)}.get(
        model.family, Sampling("dense", 8, interval=8))
    layout = model.input_layout
    loader = make_loader(split, sampling, Transform(size=224, layout=layout), train=True, batch_size=batch,
                         decode="gpu", workers=4)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    wait = total = 0.0
    done = 0
    while done < steps:
        it = iter(loader)
        t_prev = time.perf_counter()
        for b in it:
            t_got = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(b.video.cuda(non_blocking=True)), b.label.cuda() % 150)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            torch.cuda.synchronize()
            t_end = time.perf_counter()
            if done >= 2:  # the first steps warm up kernels and the pipeline
                wait += t_got - t_prev
                total += t_end - t_prev
            t_prev, done = t_end, done + 1
            if done >= steps:
                break
    return {"data_wait": wait / total if total else None, "steps": steps, "batch": batch}


def run(*, out_dir: Path = RESULTS, clips: int = 96, log=print) -> dict:
    if reason := gpu_unavailable():
        raise SystemExit(f"bench gpu needs a CUDA GPU with DALI's GPU backend: {reason}")
    import bench_model

    import torch

    from synapt_fast.engine.machine import machine_info

    p = plan(clips=clips)
    record = {"benchmark": "gpu", "machine": machine_info() | {"gpu": torch.cuda.get_device_name(0)}, "plan": p,
              "nvdec": {}, "loader": {}, "train": {}, "data_wait": {}}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record["plot"] = None
    with tempfile.TemporaryDirectory() as tmp:
        splits = {(c, s): make_split(Path(tmp), c, short_side_for(c, s), clips) for c in CODECS for s in SHORT_SIDES}
        for (codec, side), split in splits.items():
            rates = nvdec_rate(split, p["nvdec"]["batch"], p["nvdec"]["repeats"])
            record["nvdec"][f"{codec} {short_side_for(codec, side)}"] = {
                "per_repeat_frames_per_s": rates, "frames_per_s": statistics.median(rates)}
            log(f"nvdec {codec} short side {short_side_for(codec, side)}: {statistics.median(rates):.0f} frames/s")
        _save(record, out_dir)
        for name, spec in MODES.items():
            row = {}
            for r in range(p["loader"]["repeats"]):  # configurations alternated, one epoch each per round
                for cfg, kw in LOADER_CONFIGS.items():
                    row.setdefault(cfg, []).extend(loader_rate(splits[("mjpeg", 128)], spec, p["loader"]["batch"], 1,
                                                               **kw))
            record["loader"][name] = {"per_repeat_clips_per_s": row["default"],
                                      "clips_per_s": statistics.median(row["default"]),
                                      "configs": {cfg: {"per_repeat_clips_per_s": v,
                                                        "clips_per_s": statistics.median(v)} for cfg, v in row.items()}}
            log(f"GPU loader {name}: " + ", ".join(f"{cfg} {statistics.median(v):.0f}" for cfg, v in row.items())
                + " clips/s")
        for codec in LONG_CODECS:  # TSN segments over 10 s clips: the per-frame cuts on NVDEC
            long_split = make_split(Path(tmp), codec, 128, clips, frames=300)
            rates = loader_rate(long_split, MODES["segments 8x1"], p["loader"]["batch"], p["loader"]["repeats"])
            record["loader"][f"segments 8x1, 10 s, {codec}"] = {"per_repeat_clips_per_s": rates,
                                                                "clips_per_s": statistics.median(rates)}
            log(f"GPU loader segments 8x1 on 10 s {codec} clips: {statistics.median(rates):.0f} clips/s")
        _save(record, out_dir)
        dev = torch.device("cuda")
        for m in FULL_MODELS:
            t = p["train"]
            row = bench_model.bench_one(m, bench_model.Variant("bf16"), batch_size=t["batch"], warmup=t["warmup"],
                                        repeats=t["repeats"], device=dev)
            record["train"][m] = row
            log(f"bf16 train {m}: {row['clips_per_s']:.1f} clips/s")
            record["data_wait"][m] = data_wait(m, splits[("mjpeg", 256)], p["data_wait"]["batch"],
                                               p["data_wait"]["steps"])
            log(f"data wait {m}: {record['data_wait'][m]['data_wait']:.1%}")
            _save(record, out_dir)
    try:  # the GPU machine may lack matplotlib (no registry there): the figures matter more
        record["plot"] = bar_chart(out_dir / "gpu.png", "NVDEC decode (median frames/s)", "frames/s",
                                   {k: {"frames/s": v["frames_per_s"]} for k, v in record["nvdec"].items()})
    except ImportError:
        record["plot"] = None
    write_atomic(out_dir / "gpu.json", json.dumps(record, indent=1) + "\n")
    write_atomic(out_dir / "gpu.md", to_markdown(record))
    return record


def _save(record: dict, out_dir: Path) -> None:
    """gpu.json / gpu.md as measured so far (a run stopped by a time limit keeps them)."""
    write_atomic(out_dir / "gpu.json", json.dumps(record, indent=1) + "\n")
    write_atomic(out_dir / "gpu.md", to_markdown(record))


def to_markdown(r: dict) -> str:
    from synapt_fast.engine.machine import describe

    lines = ["# GPU suite", ""] + ([f"![NVDEC frames/s]({r['plot']})", ""] if r["plot"] else []) + [
             describe(r["machine"]) + ".", "",
             "| NVDEC codec, short side | frames/s |", "|---|---:|"]
    lines += [f"| {k} | {v['frames_per_s']:.0f} |" for k, v in r["nvdec"].items()]
    cfgs = list(LOADER_CONFIGS)
    lines += ["", "| GPU loader mode | " + " | ".join(f"{c} clips/s" for c in cfgs) + " |",
              "|---|" + "---:|" * len(cfgs)]
    lines += [f"| {k} | " + " | ".join(f"{v['configs'][c]['clips_per_s']:.0f}" if c in v.get("configs", {})
                                      else f"{v['clips_per_s']:.0f}" if c == "default" else "-"
                                      for c in cfgs) + " |" for k, v in r["loader"].items()]
    lines += ["", "| model | bf16 train clips/s | data wait |", "|---|---:|---:|"]
    lines += [f"| {m} | {r['train'][m]['clips_per_s']:.1f} | "
              + (f"{r['data_wait'][m]['data_wait']:.1%}" if r["data_wait"].get(m, {}).get("data_wait") is not None
                 else "-") + " |" for m in r["train"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=96)
    ap.add_argument("--plan", action="store_true", help="print the plan as JSON and exit")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    if a.plan:
        print(json.dumps(plan(clips=a.clips), indent=1))
        return
    run(out_dir=a.out_dir, clips=a.clips)


if __name__ == "__main__":
    main(sys.argv[1:])
