"""On the lent GPU machine: join the wheel parts, install them, run the `gpu` tests and
`synapt-fast bench gpu`, all inside one time budget (default 8 minutes), results into `--out`.

    python3 benchmarks/gpu_run.py --parts .parts/send --out "$OUT"            # the run
    python3 benchmarks/gpu_run.py --parts .parts/send --out "$OUT" --dry-run  # the plan only

Writes into `--out`: `gpu.json` / `gpu.md` (the benchmark, `bench_gpu.py`), `gpu_tests.txt` and
`gpu_tests.xml` (pytest's report of every `gpu`-marked test), `install.txt`, and `gpu_run.json`
(each step's command, exit status, seconds and whether it ran out of time). A step that fails
does not stop the later ones unless they need it (nothing runs without the install). Standard
library only until the install: the machine has Python 3.12 and torch, nothing else of ours.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import gpu_parts

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 480  # eight minutes: the machine is lent for fifteen, its start included
# Seconds each step may take at most, in order; the benchmark gets what is left (at least its floor).
INSTALL_S, TESTS_S, BENCH_FLOOR_S = 180, 170, 120


def plan(parts: Path, out: Path, budget_s: float = BUDGET_S, clips: int = 48, python: str = sys.executable) -> list[dict]:
    """The steps, each {name, cmd, timeout_s}; timeouts add up to at most `budget_s`."""
    install_dir = parts.parent / "install"
    wheels, req = install_dir / "wheels", install_dir / "requirements.txt"
    tests = min(TESTS_S, max(30.0, budget_s - INSTALL_S - BENCH_FLOOR_S))
    bench = max(30.0, budget_s - INSTALL_S - tests - 10)
    return [
        {"name": "join", "cmd": ["join", str(parts), str(install_dir)], "timeout_s": 60},
        {"name": "install", "cmd": [python, "-m", "pip", "install", "--no-index", "--find-links", str(wheels),
                                     "-r", str(req)], "timeout_s": INSTALL_S - 60, "log": "install.txt"},
        {"name": "gpu tests", "cmd": [python, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider",
                                       "--junitxml", str(out / "gpu_tests.xml"), "tests"],
         "timeout_s": tests, "log": "gpu_tests.txt"},
        {"name": "bench gpu", "cmd": [python, "-m", "synapt_fast.cli", "bench", "gpu", "--clips", str(clips),
                                       "--out-dir", str(out)], "timeout_s": bench, "log": "bench_gpu.txt"},
    ]


def join_and_extract(parts: Path, install_dir: Path) -> Path:
    """The joined bundle, extracted into `install_dir` (wheels/ and requirements.txt)."""
    bundle = gpu_parts.join(parts, parts.parent / "wheels.tar")
    install_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(bundle) as tf:
        for m in tf.getmembers():  # our own bundle, but never write outside install_dir
            if m.name.startswith(("/", "..")) or ".." in Path(m.name).parts:
                raise gpu_parts.PartsError(f"{bundle}: member {m.name} points outside the install folder")
        tf.extractall(install_dir)
    bundle.unlink()
    return install_dir


def run_step(step: dict, out: Path, env: dict) -> dict:
    t0 = time.perf_counter()
    rec = {"name": step["name"], "cmd": step["cmd"], "timeout_s": step["timeout_s"]}
    if step["cmd"][0] == "join":
        try:
            join_and_extract(Path(step["cmd"][1]), Path(step["cmd"][2]))
            rec["rc"] = 0
        except (gpu_parts.PartsError, OSError, tarfile.TarError) as e:
            rec.update(rc=1, error=str(e))
    else:
        log = out / step["log"]
        with open(log, "w") as f:
            try:
                rec["rc"] = subprocess.run(step["cmd"], cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                           timeout=step["timeout_s"]).returncode
            except subprocess.TimeoutExpired:
                rec.update(rc=None, timed_out=True)
                f.write(f"\n[gpu_run] stopped after {step['timeout_s']:.0f} s (time budget)\n")
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=Path, required=True, help="folder with the parts and parts.json")
    ap.add_argument("--out", type=Path, required=True, help="where results go")
    ap.add_argument("--budget-s", type=float, default=BUDGET_S)
    ap.add_argument("--clips", type=int, default=48, help="clips per benchmark split (bench gpu --clips)")
    ap.add_argument("--dry-run", action="store_true", help="print the steps and their time limits; run nothing")
    a = ap.parse_args(argv)
    parts, out = a.parts.resolve(), a.out.resolve()
    steps = plan(parts, out, a.budget_s, a.clips)
    if a.dry_run:
        manifest = parts / gpu_parts.MANIFEST
        have = "present" if manifest.is_file() else "MISSING"
        print(f"parts: {parts} ({gpu_parts.MANIFEST} {have}); results: {out}; budget {a.budget_s:.0f} s")
        for s in steps:
            print(f"  {s['name']:<10} <= {s['timeout_s']:>4.0f} s  {' '.join(map(str, s['cmd']))}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "4"))
    record, t0 = {"budget_s": a.budget_s, "steps": []}, time.perf_counter()
    for step in steps:
        rec = run_step(step, out, env)
        record["steps"].append(rec)
        print(f"{rec['name']}: rc {rec.get('rc')} in {rec['seconds']} s" + (" (timed out)" if rec.get("timed_out") else ""),
              flush=True)
        if step["name"] in ("join", "install") and rec.get("rc") != 0:
            break  # nothing else can run without the packages
    record["seconds"] = round(time.perf_counter() - t0, 1)
    record["results"] = sorted(p.name for p in out.iterdir())
    (out / "gpu_run.json").write_text(json.dumps(record, indent=1) + "\n")
    return 0 if all(s.get("rc") == 0 for s in record["steps"]) and len(record["steps"]) == len(steps) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
