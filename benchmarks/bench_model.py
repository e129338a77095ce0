"""Model throughput: forward + backward clips/s per model and precision.

One training step = zero_grad, forward (optionally under bf16 autocast), cross-entropy, backward
(no optimizer step: its cost does not depend on the input pipeline or precision choice we study).
After warm-up steps the median of several timed steps is reported, a model's variants alternating
step by step (order reversed every repeat); on a GPU each step ends with a synchronisation so the
time is the device's, not the launch queue's.

Variants: fp32 and bf16 autocast for every model; channels-last memory format for the CNNs;
`torch.compile` when asked (its compile time is reported separately). A variant is reported with
its speed-up over the same model's fp32 eager run, so "where it helps" is read off the table.

    python benchmarks/bench_model.py            # full run: tiny and full-size models
    python benchmarks/bench_model.py --quick    # a few seconds: tiny models, fp32 + bf16
    synapt-fast bench model [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from benchio import bar_chart, save_record
from synapt_fast.models import create_model

RESULTS = Path(__file__).resolve().parent / "results"
TINY_MODELS = ("tsn_tiny", "i3d_tiny", "r2plus1d_tiny", "timesformer_tiny")
FULL_MODELS = ("tsn_r50", "i3d_r50", "r2plus1d_r50", "timesformer_b16")


@dataclass
class Variant:
    precision: str = "fp32"  # "fp32" | "bf16" (autocast)
    channels_last: bool = False
    compile: bool = False
    threads: int | None = None  # intra-op threads; None: the run's default

    @property
    def label(self) -> str:
        parts = [self.precision] + ["channels_last"] * self.channels_last + ["compile"] * self.compile
        return "+".join(parts + ([f"{self.threads}threads"] if self.threads else []))


def machine_info(device: torch.device) -> dict:
    from synapt_fast.engine.machine import machine_info as common

    # The common record (CPU, cores, memory, GPUs + driver, versions) plus this run's torch set-up.
    info = common() | {"cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                       "torch": torch.__version__, "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # time the kernels, not their launch


def bench_one(name: str, variant: Variant, *, batch_size: int, warmup: int, repeats: int,
              device: torch.device) -> dict:
    """Median forward+backward time of `name` under `variant` alone; returns one result row."""
    return bench_models(name, [variant], batch_size=batch_size, warmup=warmup, repeats=repeats, device=device)[0]


class _Step:
    """One model under one variant: a timed training step (without the optimizer step)."""

    def __init__(self, name: str, variant: Variant, batch_size: int, device: torch.device):
        torch.manual_seed(0)
        self.variant, self.device = variant, device
        self.model = model = create_model(name, num_classes=87).to(device).train()
        self.clips = torch.randn(model.input_shape(batch_size), device=device)
        self.labels = torch.randint(0, 87, (batch_size,), device=device)
        if variant.channels_last:
            fmt = torch.channels_last_3d if model.input_layout == "NCTHW" else torch.channels_last
            self.model = model = model.to(memory_format=fmt)
            if self.clips.dim() == 5 and model.input_layout == "NCTHW":
                self.clips = self.clips.contiguous(memory_format=torch.channels_last_3d)
        self.step_model = torch.compile(model) if variant.compile else model
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=variant.precision == "bf16")

    def __call__(self) -> float:
        default_threads = torch.get_num_threads()
        if self.variant.threads:
            torch.set_num_threads(self.variant.threads)
        try:
            start = time.perf_counter()
            self.model.zero_grad(set_to_none=True)
            with self.autocast:
                loss = F.cross_entropy(self.step_model(self.clips), self.labels)
            loss.backward()
            _sync(self.device)
            return time.perf_counter() - start
        finally:
            torch.set_num_threads(default_threads)


def bench_models(name: str, variants: list[Variant], *, batch_size: int, warmup: int, repeats: int,
                 device: torch.device) -> list[dict]:
    """One row per variant of `name`; the variants' timed steps alternate (order reversed every
    repeat) so load drift on a shared machine hits all of them alike."""
    steps, rows = {}, {}
    for v in variants:
        try:
            steps[v.label] = _Step(name, v, batch_size, device)
            first = steps[v.label]()  # includes compilation when compiling
            for _ in range(max(warmup - 1, 0)):
                steps[v.label]()
            rows[v.label] = {"first_step_s": first}
        except Exception as exc:  # a variant the backend cannot run is a result, not a crash
            steps.pop(v.label, None)
            rows[v.label] = {"model": name, "variant": v.label, **asdict(v), "batch_size": batch_size,
                             "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for r in range(repeats):
        for k in (list(steps) if r % 2 == 0 else list(reversed(steps))):
            times[k].append(steps[k]())
    for k, step in steps.items():
        model, t = step.model, times[k]
        median = statistics.median(t)
        rows[k] = {"model": name, "variant": k, **asdict(step.variant), "batch_size": batch_size,
                   "frames": model.num_frames, "image_size": model.image_size, "layout": model.input_layout,
                   "params": sum(p.numel() for p in model.parameters()),
                   "step_s_median": median, "step_s_min": min(t), "step_s_max": max(t),
                   "first_step_s": rows[k]["first_step_s"], "repeats": repeats, "step_s": t,
                   "threads": step.variant.threads or torch.get_num_threads(), "clips_per_s": batch_size / median}
    return [rows[v.label] for v in variants]


def variants_for(name: str, *, quick: bool, try_compile: bool) -> list[Variant]:
    out = [Variant("fp32"), Variant("bf16")]
    if quick:
        return out
    if not name.startswith("timesformer"):  # memory format is about convolutions
        out += [Variant("fp32", channels_last=True), Variant("bf16", channels_last=True)]
    if try_compile:  # compiling takes a minute or more per model on a small CPU: fp32 only
        out += [Variant("fp32", compile=True)]
    if "tiny" in name and torch.get_num_threads() == 1 and (os.cpu_count() or 1) > 1:
        out += [Variant("fp32", threads=os.cpu_count())]  # show what all cores do on a shared CPU
    return out


def run(*, quick: bool = False, models: list[str] | None = None, tiny_batch: int = 8,
        full_batch: int = 2, warmup: int = 2, repeats: int = 5, full_repeats: int = 3,
        compile_models: list[str] | None = None, threads: int | None = None,
        out_dir: Path = RESULTS, device: str | None = None, log=print) -> dict:
    """Run the benchmark and write `model.json` + `model.md` under `out_dir`; returns the record.

    `threads` defaults to 1 on a CPU: on a shared 2-core machine two OpenMP threads, one of them
    fighting another process for its core, made a tiny model's step ~250x slower (2 s vs 8 ms)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    caller_threads = torch.get_num_threads()
    torch.set_num_threads(threads or (1 if dev.type == "cpu" else caller_threads))
    try:
        return _run(quick=quick, models=models, tiny_batch=tiny_batch, full_batch=full_batch,
                    warmup=warmup, repeats=repeats, full_repeats=full_repeats,
                    compile_models=compile_models, out_dir=out_dir, dev=dev, log=log)
    finally:
        torch.set_num_threads(caller_threads)


def _run(*, quick, models, tiny_batch, full_batch, warmup, repeats, full_repeats, compile_models,
         out_dir, dev, log) -> dict:
    if quick:
        models = models or list(TINY_MODELS)
        tiny_batch, warmup, repeats = 2, 1, 3
    models = models or list(TINY_MODELS + FULL_MODELS)
    compile_models = [] if quick else (compile_models if compile_models is not None else list(TINY_MODELS))
    record = {"machine": machine_info(dev), "quick": quick, "warmup": warmup, "repeats": repeats,
              "full_repeats": full_repeats, "results": []}
    for name in models:
        tiny = "tiny" in name
        batch = tiny_batch if tiny else full_batch
        # Full-size models take seconds per step on a CPU: fewer repeats, one warm-up.
        n_rep, n_warm = (repeats, warmup) if tiny or dev.type == "cuda" else (full_repeats, 1)
        variants = variants_for(name, quick=quick, try_compile=name in compile_models)
        for row in bench_models(name, variants, batch_size=batch, warmup=n_warm, repeats=n_rep, device=dev):
            record["results"].append(row)
            log(format_row(row))
    add_speedups(record["results"])
    save_record(out_dir, "model", record, plot, to_markdown)
    return record


def plot(record: dict, path: Path) -> str:
    """Clips/s per model (groups) and variant (bars), log scale: tiny and full size differ 1000x."""
    groups: dict[str, dict[str, float]] = {}
    for r in record["results"]:
        if "clips_per_s" in r:
            groups.setdefault(r["model"], {})[r["variant"]] = r["clips_per_s"]
    return bar_chart(path, "Forward + backward clips/s per model and precision", "clips/s", groups, log=True)


def add_speedups(rows: list[dict]) -> None:
    base = {r["model"]: r["clips_per_s"] for r in rows if r["variant"] == "fp32" and "clips_per_s" in r}
    for r in rows:
        if "clips_per_s" in r and r["model"] in base:
            r["speedup_vs_fp32"] = r["clips_per_s"] / base[r["model"]]


def format_row(r: dict) -> str:
    if "error" in r:
        return f"{r['model']:<18} {r['variant']:<22} error: {r['error']}"
    return (f"{r['model']:<18} {r['variant']:<22} batch {r['batch_size']:>2}  "
            f"{r['clips_per_s']:8.2f} clips/s  (median step {r['step_s_median'] * 1e3:8.1f} ms)")


def to_markdown(record: dict) -> str:
    m = record["machine"]
    hw = m.get("gpu") or f"{m['cpu']}, {m['cpu_cores']} cores, {m['torch_threads']} torch threads"
    lines = [
        "# Model throughput: forward + backward",
        "",
        f"![clips/s per model and variant]({record['plot']})",
        "",
        f"Machine: {hw}; torch {m['torch']}, Python {m['python']}, device `{m['device']}`.",
        f"Median of {record['repeats']} timed steps after {record['warmup']} warm-up steps (full-size "
        f"models on a CPU: {record['full_repeats']} after 1), a model's variants alternated; one step = "
        "zero_grad + forward + cross-entropy + backward, 87 classes, random clips."
        + (" Quick mode (tiny models only)." if record["quick"] else ""),
        "",
        "| model | params | clip (T×H×W) | batch | variant | clips/s | vs fp32 | median step ms | first step s |",
        "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in record["results"]:
        if "error" in r:
            lines.append(f"| {r['model']} | | | {r['batch_size']} | {r['variant']} | error: {r['error']} | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['frames']}×{r['image_size']}² | {r['batch_size']} | "
            f"{r['variant']} | {r['clips_per_s']:.2f} | {r.get('speedup_vs_fp32', float('nan')):.2f}× | "
            f"{r['step_s_median'] * 1e3:.1f} | {r['first_step_s']:.2f} |")
    lines += ["", "Where each option helps (speed-up over the same model's fp32 eager row, >1.05× counts):", ""]
    for option in sorted({r["variant"] for r in record["results"]} - {"fp32"}):
        rows = [r for r in record["results"] if r["variant"] == option and "speedup_vs_fp32" in r]
        helped = [f"{r['model']} {r['speedup_vs_fp32']:.2f}×" for r in rows if r["speedup_vs_fp32"] > 1.05]
        rest = [f"{r['model']} {r['speedup_vs_fp32']:.2f}×" for r in rows if r["speedup_vs_fp32"] <= 1.05]
        lines.append(f"- `{option}`: helps {', '.join(helped) or 'none'}; not {', '.join(rest) or 'n/a'}.")
    lines += ["", "Notes:", "",
              "- The machine is shared with other work, so figures are noisy; compare rows of one run, "
              "and read min/max in `model.json` for the spread.",
              "- `first step s` includes `torch.compile` compilation for compiled variants.",
              "- CPU runs use 1 intra-op thread unless a row says otherwise: with 2 threads on this "
              "shared 2-core machine a step waits for whichever core another process holds (OpenMP "
              "oversubscription); the `Nthreads` rows show that cost.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny models, fp32 + bf16, a few seconds")
    p.add_argument("--models", nargs="*", help="registered model names (default: 4 tiny + 4 full)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--compile", nargs="*", default=None, metavar="MODEL",
                   help="models to also try with torch.compile (default: the tiny ones; none with --quick)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU default: 1)")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    run(quick=args.quick, models=args.models, repeats=args.repeats, compile_models=args.compile,
        threads=args.threads, out_dir=args.out_dir)


if __name__ == "__main__":
    main()
