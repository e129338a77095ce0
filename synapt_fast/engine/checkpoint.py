"""Training checkpoints: written atomically, read back as data.

A checkpoint is a dict in the IBM/SynAPT layout (`epoch`, `arch`, `state_dict`, `best_top1`,
`optimizer`, `scheduler`) plus what an exact resume needs (`step`, `batch`: the loader position
inside `epoch`, `scaler`, `rng`). So `synapt_fast.models.load_checkpoint(model, path)` reads our
files as it reads SynAPT's released ones, and downstream recipes name them as `model.init`.

Files in a run folder: `checkpoint.pth.tar` (the last state, every epoch and every N minutes)
and `model_best.pth.tar` (the state with the best validation top-1 so far). Each is written to a
temporary file in the same folder, flushed to disk, then renamed over the old one: a crash at any
moment leaves the previous complete file.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from synapt_fast.atomic import atomic_file

LAST = "checkpoint.pth.tar"
BEST = "model_best.pth.tar"
FORMAT = "synapt-fast-checkpoint"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or read; the message names the file."""


def save_atomic(obj: dict, path: str | os.PathLike) -> None:
    """`torch.save` that replaces `path` whole and durably (a resume trusts it after a crash).

    A failed write (a full disk shows up as torch's opaque "unexpected pos") leaves the previous
    file in place and raises `CheckpointError` naming the path.
    """
    try:
        with atomic_file(Path(path), durable=True) as f:
            torch.save(obj, f)
    except (OSError, RuntimeError) as e:
        raise CheckpointError(f"could not write {path} ({e}); is its disk full? The previous checkpoint is "
                              f"unchanged: free space, then continue with --resume") from e


def load(path: str | os.PathLike, *, mmap: bool = False) -> dict:
    """A checkpoint as data (`weights_only=True`: loading never runs code from the file);
    `mmap` reads tensors only when touched (for reading a checkpoint's bookkeeping)."""
    import pickle

    try:
        return torch.load(os.fspath(path), map_location="cpu", weights_only=True, mmap=mmap)
    except EOFError:
        raise CheckpointError(f"{path} is empty or cut short") from None
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as e:
        raise CheckpointError(f"{path} cannot be read ({e})") from None


def rng_state() -> dict:
    """Python, numpy and torch (CPU and CUDA) generator states, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": list(random.getstate()[1]), "python_version": random.getstate()[0],
             "numpy": torch.from_numpy(keys.astype(np.int64)), "numpy_pos": int(pos),
             "numpy_gauss": [int(has_gauss), float(cached)], "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        # Only this process's GPU: a resume may see fewer GPUs (one per process instead of all).
        state["cuda_device"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate((state["python_version"], tuple(state["python"]), None))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"],
                         int(state["numpy_gauss"][0]), float(state["numpy_gauss"][1])))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        if "cuda_device" in state:
            torch.cuda.set_rng_state(state["cuda_device"])
        elif state.get("cuda"):  # older checkpoints: every visible GPU's state
            torch.cuda.set_rng_state(state["cuda"][min(torch.cuda.current_device(), len(state["cuda"]) - 1)])
