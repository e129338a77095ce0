"""Set-up and entry point for a fresh machine: `python3 -m synapt_fast.bootstrap {demo,test}`.

It creates `.venv/` beside the project, installs torch (a CPU build where no NVIDIA GPU is
present, because a bare `torch` requirement resolves to a multi-GB CUDA build), installs the
project with its dev extra, and then runs the demo or the test suite inside that environment.
Standard library only: nothing else is installed when this runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("SYNAPT_VENV", ROOT / ".venv"))
TORCH_VERSION = os.environ.get("SYNAPT_TORCH", "2.13.0")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def has_nvidia_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    return subprocess.run([smi, "-L"], capture_output=True).returncode == 0


def _install_torch(pip: Path) -> None:
    if has_nvidia_gpu():
        _run(pip, "install", f"torch=={TORCH_VERSION}")
        return
    # The "+cpu" local version exists only as a CPU build: try the configured indexes first
    # (a local mirror or wheel cache), then PyTorch's CPU index.
    try:
        _run(pip, "install", f"torch=={TORCH_VERSION}+cpu")
    except subprocess.CalledProcessError:
        _run(pip, "install", f"torch=={TORCH_VERSION}", "--index-url", CPU_INDEX)


def ensure_env() -> None:
    """Create and fill the virtualenv once; re-run installs only when pyproject.toml changed."""
    stamp = VENV / ".synapt-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + TORCH_VERSION.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    if not _bin("python").exists():
        print(f"creating virtualenv {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = _bin("pip")
    _run(_bin("python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _install_torch(pip)
    _run(pip, "install", "--quiet", "-e", f"{ROOT}[dev]")
    stamp.write_text(want)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "env"):
        print("usage: python3 -m synapt_fast.bootstrap {demo|test|env} [args...]", file=sys.stderr)
        return 2
    what, rest = argv[0], argv[1:]
    ensure_env()
    os.chdir(ROOT)
    if what == "env":
        return 0
    if what == "demo":
        cmd = [str(_bin("synapt-fast")), "demo", *rest]
    else:
        cmd = [str(_bin("python")), "-m", "pytest", "-q", *rest]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
