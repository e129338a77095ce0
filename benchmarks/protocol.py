"""The SynAPT protocol end to end, in miniature and offline, through the user's own commands.

    python benchmarks/protocol.py [--out benchmarks/protocol] [--work runs/protocol] [--quick]

Every step is a `synapt-fast` command or a `torchrun -m synapt_fast.train` job, as a user would
type it; the report at the end is `synapt-fast report` on the finished runs.

1. Data (`synapt-fast synth`): two pre-training sets over the same 8 motion classes -- `synthetic8`,
   whose scenes are independent of the label (the paper's synthetic data), and `scenic8`, where each
   class has its own scene 90 % of the time (the stand-in for a real set such as Kinetics, whose
   classes come with telling objects and places) -- and three downstream tasks with classes neither
   set contains: `down_b000` (only motion tells classes apart: low representation bias),
   `down_b090` (the scene gives the label away: high bias) and `down_ramp` (12 classes whose
   scene bias rises from 0 to 1: the material for the paper's Figure 2).
2. Subsets (`synapt-fast subset`): 4 of the 8 classes (`synthetic4`, `scenic4`) and 30 and 60 of
   the 120 clips per class (`synthetic8_s30` ⊂ `synthetic8_s60`, ...), nested and seeded (Figures 3
   and 4).
3. Pre-training: tiny TSN on each of the six sets (torchrun, 2 processes, gloo).
4. Transfer (Table 1): fine-tuning through `synapt-fast sweep` over two learning rates (the report
   takes each sweep's chosen cell), linear probing, and scratch baselines, on `down_b000` and
   `down_b090`; linear probes of the subset models (Figures 3 and 4).
5. Representation bias (`synapt-fast bias`, Table 2): a linear probe on frozen 2D frame features.
   No ImageNet weights exist offline, so the frozen representation is a randomly initialised tiny
   2D ResNet (its features carry colour and texture statistics, i.e. static cues only); pass
   `--weights resnet50.pth --arch tsn_r50` to use the paper's ImageNet ResNet-50 instead.
6. Bias-ranked subsets (`synapt-fast subset --bias-ranked`, Figure 2): windows of 4 `down_ramp`
   classes from the least to the most biased, each probed with both pre-trained models and
   scored with `synapt-fast bias`.
7. `synapt-fast report` renders Tables 1-2 and Figures 2-4 into --out, with throughput beside
   every accuracy. Re-running skips every finished step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
PRETRAIN = "tsn_tiny_8x1_demosynth_pretrain"
TEMPLATES = {"finetune": "tsn_tiny_8x1_demosynth_ft-down_b000", "linear_probe": "tsn_tiny_8x1_demosynth_lp-down_b000",
             "scratch": "tsn_tiny_8x1_scratch-down_b000"}
FAMILIES = ("synthetic", "scenic")
TASKS = ("down_b000", "down_b090")


class Protocol:
    def __init__(self, work: Path, out: Path, *, nproc: int, workers: int, quick: bool, weights: Path | None,
                 arch: str):
        self.work, self.out = work, out
        self.shards, self.runs = work / "shards", work / "runs"
        self.nproc, self.workers, self.quick = nproc, workers, quick
        self.weights, self.arch = weights, arch
        self.log: list[dict] = []
        self.env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="160")

    # --- plumbing ------------------------------------------------------------------------------

    def sh(self, *args: str, step: str) -> None:
        """One command, echoed and timed; a failure stops the protocol naming the command."""
        cmd = [str(a) for a in args]
        shown = " ".join(cmd).replace(sys.executable + " -m synapt_fast.cli", "synapt-fast").replace(
            sys.executable, "python").replace(f"{ROOT}/", "")
        print(f"\n$ {shown}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=self.env, cwd=ROOT)
        self.log.append({"step": step, "command": shown, "seconds": round(time.perf_counter() - t0, 1),
                         "exit": proc.returncode})
        if proc.returncode != 0:
            raise SystemExit(f"protocol step {step!r} failed (exit {proc.returncode}): {shown}")

    def cli(self, *args, step: str) -> None:
        self.sh(sys.executable, "-m", "synapt_fast.cli", *args, step=step)

    def split(self, name: str, split: str) -> Path:
        return self.shards / name / split

    def train(self, template: str, name: str, data: str, *, init: Path | None = None, extra=()) -> Path:
        run = self.runs / name
        if (run / "result.json").exists():
            print(f"{name}: finished, skipped")
            return run
        overrides = [f"data.train={self.split(data, 'train')}", f"data.val={self.split(data, 'val')}",
                     f"output.dir={self.runs}", f"output.name={name}", *extra]
        if init is not None:
            overrides.append(f"model.init={init}")
        resume = ["--resume"] if (run / "checkpoint.pth.tar").exists() else []
        self.sh(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", self.nproc,
                "-m", "synapt_fast.train", "--recipe", RECIPES / f"{template}.toml", *resume, *overrides,
                step=f"train {name}")
        return run

    # --- the steps -----------------------------------------------------------------------------

    def data(self) -> None:
        per, val, down, down_val = (40, 8, 16, 8) if self.quick else (120, 16, 40, 12)
        common = ["--frames", "32", "--size", "64", "--variation", "0.2", "--workers", self.workers, "--seed", "0"]
        if not (self.shards / "synthetic8" / "val" / "manifest.json").exists() or \
                not (self.shards / "down_ramp" / "val" / "manifest.json").exists():
            self.cli("synth", self.shards, "--classes", 8, "--clips-per-class", per, "--val-clips-per-class", val,
                     "--name", "synthetic8", "--downstream-classes", 5, "--downstream-clips-per-class", down,
                     "--downstream-val-clips-per-class", down_val, "--bias", "0.0,0.9", "--ramp-classes", 12,
                     *common, step="data: synthetic8 + downstream tasks")
        if not (self.shards / "scenic8" / "val" / "manifest.json").exists():
            self.cli("synth", self.shards, "--classes", 8, "--clips-per-class", per, "--val-clips-per-class", val,
                     "--name", "scenic8", "--pretrain-bias", 0.9, "--downstream-classes", 0, *common,
                     step="data: scenic8")
        for family in FAMILIES:
            subsets = [(f"{family}4", ["--classes", 4])] + [(f"{family}8_s{k}", ["--per-class", k]) for k in (per // 4, per // 2)]
            for name, option in subsets:
                train, val_dir = self.split(name, "train"), self.split(name, "val")
                if not (train / "manifest.json").exists():
                    self.cli("subset", self.split(f"{family}8", "train"), train, *option, "--seed", 0,
                             step=f"subset {name}")
                if not (val_dir / "manifest.json").exists():
                    self.cli("subset", self.split(f"{family}8", "val"), val_dir, "--classes-from",
                             train / "subset.json", step=f"subset {name} val")
        for d in sorted(self.shards.glob("*/*/manifest.json")):
            self.cli("verify", d.parent, step=f"verify {d.parent.parent.name}/{d.parent.name}")

    def pretrain(self) -> dict[str, Path]:
        inits = {}
        for d in sorted(p.parent for p in self.shards.glob("*/train/manifest.json")):
            name = d.parent.name
            if name.startswith(FAMILIES):
                extra = ["optim.epochs=4"] if self.quick else []
                run = self.train(PRETRAIN, f"pretrain/{name}", name, extra=extra)
                inits[name] = run / "model_best.pth.tar"
        return inits

    def transfer(self, inits: dict[str, Path]) -> None:
        epochs = ["optim.epochs=4", "eval.every_epochs=2"] if self.quick else []
        for task in TASKS:
            for family in FAMILIES:
                init = inits[f"{family}8"]
                self.sweep_ft(task, family, init, epochs)
                self.train(TEMPLATES["linear_probe"], f"lp/{family}8-{task}", task, init=init, extra=epochs)
                for name in inits:
                    if name.startswith(family) and name != f"{family}8":  # Figures 3 and 4
                        self.train(TEMPLATES["linear_probe"], f"lp/{name}-{task}", task, init=inits[name], extra=epochs)
            self.train(TEMPLATES["scratch"], f"scratch/{task}", task, extra=epochs)

    def sweep_ft(self, task: str, family: str, init: Path, epochs: list[str]) -> None:
        name = f"{family}8-{task}"
        overrides = [f"data.train={self.split(task, 'train')}", f"data.val={self.split(task, 'val')}",
                     f"output.dir={self.runs / 'ft'}", f"output.name={name}", f"model.init={init}", *epochs]
        self.cli("sweep", RECIPES / f"{TEMPLATES['finetune']}.toml", *overrides, "--grid", "optim.lr=0.005,0.02",
                 "--nproc", self.nproc, step=f"sweep ft {name}")

    def phi(self) -> tuple[Path, str]:
        """The frozen frame representation of the bias probe."""
        if self.weights:
            return self.weights, self.arch
        path = self.work / "phi_tsn_tiny_random.pth"
        if not path.exists():
            import torch

            from synapt_fast.models import create_model

            torch.manual_seed(0)
            model = create_model("tsn_tiny", num_classes=1000, num_frames=8, image_size=48)
            torch.save(model.state_dict(), path)
        return path, "tsn_tiny"

    def bias(self, name: str) -> Path:
        out = self.runs / "bias" / f"{name}.json"
        if not out.exists():
            weights, arch = self.phi()
            size = ["--size", 224] if self.weights else ["--size", 48]
            self.cli("bias", self.split(name, "train"), self.split(name, "val"), "--weights", weights, "--arch", arch,
                     "--frames", 8, *size, "--workers", self.workers, "--cache-dir", self.work / "features",
                     "--out", out, step=f"bias {name}")
        return out

    def bias_ranked(self, inits: dict[str, Path]) -> None:
        ramp = self.bias("down_ramp")
        windows = sorted(self.shards.glob("down_ramp_w*/train/manifest.json"))
        if len(windows) < 4:
            self.cli("subset", self.split("down_ramp", "train"), self.split("down_ramp", "train"), "--bias-ranked",
                     ramp, "--k", 4, "--count", 4, "--overwrite", step="bias-ranked windows (train)")
            self.cli("subset", self.split("down_ramp", "val"), self.split("down_ramp", "val"), "--bias-ranked",
                     ramp, "--k", 4, "--count", 4, "--overwrite", step="bias-ranked windows (val)")
        epochs = ["optim.epochs=4", "eval.every_epochs=2"] if self.quick else []
        for w in sorted(p.parent.parent.name for p in self.shards.glob("down_ramp_w*/train/manifest.json")):
            self.bias(w)
            for family in FAMILIES:
                self.train(TEMPLATES["linear_probe"], f"lp/{family}8-{w}", w, init=inits[f"{family}8"], extra=epochs)

    def run(self) -> None:
        t0 = time.perf_counter()
        self.data()
        inits = self.pretrain()
        self.transfer(inits)
        for name in ("synthetic8", "scenic8", *TASKS):
            self.bias(name)
        self.bias_ranked(inits)
        self.out.mkdir(parents=True, exist_ok=True)
        self.cli("report", self.runs, "--out", self.out, step="report")
        bias_out = self.out / "bias"
        bias_out.mkdir(exist_ok=True)
        for f in sorted((self.runs / "bias").glob("*.json")):
            shutil.copy(f, bias_out / f.name)
        record = {"seconds": round(time.perf_counter() - t0, 1), "quick": self.quick, "nproc": self.nproc,
                  "steps": self.log}
        (self.out / "protocol.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"\nprotocol finished in {record['seconds']:.0f} s; report: {self.out / 'report.md'}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "protocol", help="report folder")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "protocol", help="shards, runs and caches (git-ignored)")
    p.add_argument("--nproc", type=int, default=2, help="training processes per run")
    p.add_argument("--workers", type=int, default=2, help="rendering / DALI workers")
    p.add_argument("--quick", action="store_true", help="a third of the clips and epochs: a smoke run")
    p.add_argument("--weights", type=Path, default=None, help="torchvision ImageNet ResNet-50 file for the bias probe")
    p.add_argument("--arch", default="tsn_r50", help="bias backbone with --weights")
    a = p.parse_args(argv)
    # Paths inside the repository are kept relative to it (commands run there), so the committed
    # report and records name no machine's folders.
    a.work, a.out = (Path(os.path.relpath(x.resolve(), ROOT)) if x.resolve().is_relative_to(ROOT) else x
                     for x in (a.work, a.out))
    os.chdir(ROOT)
    Protocol(a.work, a.out, nproc=a.nproc, workers=a.workers, quick=a.quick, weights=a.weights, arch=a.arch).run()


if __name__ == "__main__":
    main()
