"""DALI pipeline outputs -> torch tensors, on the device where DALI left them.

A pipeline's outputs are `TensorListCPU` (reader outputs, CPU decoding) or `TensorListGPU` (the
mixed decoder and everything after it). `TensorListGPU` has no `as_array`, and `as_cpu()` would
send every batch GPU -> host -> GPU, so each output is copied once, with DALI's
`copy_to_external` (what `nvidia.dali.plugin.pytorch.feed_ndarray` and `DALIGenericIterator`
use), into a torch tensor of the same device: GPU outputs on torch's current CUDA stream of that
device, without a host sync (the copy is ordered after DALI's work on it and before whatever the
caller queues next on that stream). The copy is needed: `release_outputs` hands DALI's buffers
back for the next batch.

Only methods `TensorListCPU` and `TensorListGPU` both have are used besides `device_id` (GPU
only), and which branch runs is decided by the output's own device (`device_id`), so a test can
drive the GPU branch with an object exposing exactly `TensorListGPU`'s methods.
"""

from __future__ import annotations

import ctypes

import torch

_TORCH_DTYPES = None


def _torch_dtype(dali_dtype) -> torch.dtype:
    global _TORCH_DTYPES
    if _TORCH_DTYPES is None:
        from nvidia.dali.plugin.pytorch.torch_utils import to_torch_type

        _TORCH_DTYPES = to_torch_type
    return _TORCH_DTYPES[dali_dtype]


def _dense_shape(out) -> list[int]:
    """[batch, *sample shape] of a TensorList whose samples all have one shape."""
    shapes = out.shape()
    if not shapes:
        return [0]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"DALI output samples differ in shape ({shapes[0]} and others): cannot batch them")
    return [len(shapes), *shapes[0]]


def to_torch(out, *, pin_memory: bool = False, device: torch.device | None = None) -> torch.Tensor:
    """One DALI output (TensorListCPU or TensorListGPU) as a new torch tensor.

    GPU outputs land on `cuda:<out.device_id()>` (or `device`) via that device's current
    stream; CPU outputs in host memory, page-locked when `pin_memory` (so a later
    `.to("cuda", non_blocking=True)` is a true asynchronous copy).
    """
    shape, dtype = _dense_shape(out), _torch_dtype(out.dtype)
    on_gpu = hasattr(out, "device_id")  # TensorListGPU only; decides the copy, not isinstance
    if not on_gpu:
        arr = torch.empty(shape, dtype=dtype, pin_memory=pin_memory)
        if arr.numel():
            out.copy_to_external(ctypes.c_void_p(arr.data_ptr()))
        return arr
    device = device or torch.device("cuda", out.device_id())
    arr = torch.empty(shape, dtype=dtype, device=device)
    stream = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else None
    if arr.numel():
        out.copy_to_external(ctypes.c_void_p(arr.data_ptr()), stream, non_blocking=stream is not None)
    return arr


def use_device_in_thread(device_id: int | None) -> None:
    """Make `device_id` the current CUDA device of the calling thread (the prefetch thread):
    torch's current device is per thread, and tensors handed out there must be allocated and
    copied on the pipeline's device, not on cuda:0. No-op for CPU pipelines."""
    if device_id is not None and torch.cuda.is_available():
        torch.cuda.set_device(device_id)


def device_memory_in_use(device_id: int) -> int:
    """Bytes in use on GPU `device_id` as the driver counts them (total - free): torch's tensors
    and cache, DALI's decoder surfaces and buffers (which torch's `max_memory_allocated` leaves
    out: DALI allocates outside torch, and its dynamic executor keeps no per-operator memory
    statistics) and every CUDA context. Sample it once per step and keep the maximum for a peak
    that includes the loader; on a shared GPU it includes other processes too."""
    free, total = torch.cuda.mem_get_info(device_id)
    return int(total - free)
