"""On the development machine: fetch what the lent GPU machine lacks, in parts that fit a transfer.

The GPU machine (H200, Python 3.12, torch 2.11 on CUDA 13) has no DALI, PyAV, webdataset or
package index. This resolves the wheels it needs for CPython 3.12 on manylinux x86_64 (DALI's
CUDA 13 build, PyAV, webdataset, the CLI's typer and rich, pytest, and their dependencies; not
torch, which is there), downloads each one once into `.parts/wheels/` (git-ignored; a wheel
already there is not fetched again), packs them into one tar and splits it into parts of
`gpu_parts.PART_MIB` MiB under `.parts/send/` with `parts.json`. Then, per part, one transfer to
the GPU machine, and there `benchmarks/gpu_run.py` joins, installs, tests and benchmarks
(benchmarks/README.md, "The GPU run").

    python benchmarks/gpu_fetch.py            # resolve, download, pack, split; prints the transfers
    python benchmarks/gpu_fetch.py --dry-run  # resolve only (metadata), print what would be fetched
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import gpu_parts

ROOT = Path(__file__).resolve().parent.parent
PARTS = ROOT / ".parts"
# What the GPU machine's Python 3.12 needs beyond its torch; pip adds the dependencies.
REQUIREMENTS = ("nvidia-dali-cuda130", "av", "webdataset", "typer", "rich", "pytest")
TARGET = ("--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312",
          "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
          "--platform", "manylinux2014_x86_64")
BUNDLE = "wheels.tar"


def resolve(requirements=REQUIREMENTS, pip=(sys.executable, "-m", "pip")) -> list[dict]:
    """[{name, version, filename, url}] of every wheel the target needs, from pip's resolver
    (`install --dry-run --report`: metadata only, no wheel is downloaded where PyPI serves it)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [*pip, "install", "--dry-run", "--ignore-installed", "--quiet", *TARGET, "--target", str(Path(tmp) / "t"),
               "--report", str(report), *requirements]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        data = json.loads(report.read_text())
    return [{"name": i["metadata"]["name"], "version": i["metadata"]["version"],
             "filename": i["download_info"]["url"].rsplit("/", 1)[-1], "url": i["download_info"]["url"]}
            for i in data["install"]]


def download(wheels: list[dict], dest: Path, pip=(sys.executable, "-m", "pip"), log=print) -> list[Path]:
    """Each wheel into `dest`, skipping those already there (so the 199 MB DALI wheel is fetched once)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for w in wheels:
        path = dest / w["filename"]
        if not path.is_file():
            log(f"downloading {w['filename']}")
            subprocess.run([*pip, "download", "--no-deps", "--quiet", *TARGET, "-d", str(dest),
                            f"{w['name']}=={w['version']}"], check=True)
        if not path.is_file():
            raise SystemExit(f"pip did not write {path}")
        out.append(path)
    return out


def pack(wheels: list[Path], bundle: Path, requirements=REQUIREMENTS) -> Path:
    """One uncompressed tar of the wheels (they are zip files already) and `requirements.txt`."""
    bundle.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("\n".join(requirements) + "\n")
        with tarfile.open(bundle, "w") as tf:
            tf.add(req, arcname="requirements.txt")
            for w in sorted(wheels):
                tf.add(w, arcname=f"wheels/{w.name}")
    return bundle


def transfers(parts: list[Path], root: Path = ROOT) -> list[str]:
    """The transfers, in order: each carries one part (plus `parts.json` with the first)."""
    rel = [str(p.relative_to(root)) for p in parts]
    manifest = str((parts[0].parent / gpu_parts.MANIFEST).relative_to(root))
    steps = [f"transfer {i + 1}/{len(rel)}: carry {r}" + (f" and {manifest}" if i == 0 else "")
             for i, r in enumerate(rel)]
    steps.append(f"then, on the GPU machine: python3 benchmarks/gpu_run.py --parts {Path(rel[0]).parent} "
                 "--out <output folder>")
    return steps


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="resolve and print the plan; download nothing")
    ap.add_argument("--parts-dir", type=Path, default=PARTS)
    ap.add_argument("--part-mib", type=int, default=gpu_parts.PART_MIB)
    a = ap.parse_args(argv)
    wheels = resolve()
    have = {p.name for p in (a.parts_dir / "wheels").glob("*.whl")}
    for w in wheels:
        print(f"{w['name']}=={w['version']}  {w['filename']}" + ("  (already here)" if w["filename"] in have else ""))
    if a.dry_run:
        print(f"dry run: {len(wheels)} wheels, {len(wheels) - len(have & {w['filename'] for w in wheels})} to download "
              f"into {a.parts_dir / 'wheels'}; nothing written")
        return
    paths = download(wheels, a.parts_dir / "wheels")
    bundle = pack(paths, a.parts_dir / BUNDLE)
    parts = gpu_parts.split(bundle, a.parts_dir / "send", a.part_mib << 20)
    bundle.unlink()
    print(f"{sum(p.stat().st_size for p in parts) / 2**20:.0f} MiB in {len(parts)} parts:")
    for line in transfers(parts):
        print("  " + line)


if __name__ == "__main__":
    main(sys.argv[1:])
