"""What a benchmark ran on: CPU, cores, memory, GPU and library versions, for every results file."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _gpus() -> list[str]:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    out = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpus": _gpus(),
        "platform": platform.platform(),
        # Other work on the machine when the record was made: wall-clock figures depend on it.
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in ("synapt-fast", "torch", "nvidia-dali-cuda120", "nvidia-dali-cuda130",
                                              "av", "webdataset", "numpy", "torchcodec") if _version(d)},
    }


def describe(m: dict) -> str:
    """One markdown line naming the machine of a `machine_info()` record."""
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return (f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, GPUs: {m['gpus'] or 'none'}; "
            f"load average {m.get('load_average')}; Python {m['python']}; {versions}")
