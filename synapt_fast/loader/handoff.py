"""DALI pipeline outputs -> torch tensors, on the device where DALI left them.

A pipeline's outputs are `TensorListCPU` (reader outputs, CPU decoding) or `TensorListGPU` (the
mixed decoder and everything after it). `TensorListGPU` has no `as_array`, and `as_cpu()` would
send every batch GPU -> host -> GPU. GPU outputs are handed over as `DALIGenericIterator` does:
with DALI's dynamic executor (the default), zero-copy through DLPack (`as_tensor()`, a dense view,
then `torch.from_dlpack` under the output's device, which orders torch's current stream after
DALI's work; the DLPack capsule keeps DALI's buffer alive after `release_outputs`); with the
legacy executor, whose buffers are reused once released, a copy on torch's current stream with
`copy_to_external` (what `feed_ndarray` does). Host outputs are handed over the same way: DLPack
views of DALI's buffers with the dynamic executor, copies with the legacy one, and copies into
page-locked memory when asked (DALI's host buffers are pageable).

Which branch runs is decided by the output's own device (`device_id`, which only
`TensorListGPU` has), not by `isinstance`, so a test can drive the GPU branch with an object
exposing exactly `TensorListGPU`'s methods.
"""

from __future__ import annotations

import contextlib
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


def to_torch(out, *, pin_memory: bool = False, zero_copy: bool = True, device: torch.device | None = None
             ) -> torch.Tensor:
    """One DALI output (TensorListCPU or TensorListGPU) as a torch tensor.

    GPU outputs are on `cuda:<out.device_id()>` (or `device`): a DLPack view when `zero_copy`
    (the pipeline's `exec_dynamic`), else a copy on that device's current stream. CPU outputs
    are DLPack views too when `zero_copy`, else copies into host memory, page-locked when
    `pin_memory` (so that a later `.to("cuda", non_blocking=True)` is truly asynchronous).
    """
    if not hasattr(out, "device_id"):  # TensorListCPU
        if zero_copy and not pin_memory and len(out) and out.is_dense_tensor():
            # DALI's own buffer, kept alive by the DLPack capsule: a fresh 38 MB torch buffer per
            # batch (dense 32x2 at 112, float32) cost more in first-touch page faults than DALI's
            # whole crop / resize / normalise (one-off checks, note 19 of benchmarks/README.md).
            return torch.from_dlpack(out.as_tensor())
        arr = torch.empty(_dense_shape(out), dtype=_torch_dtype(out.dtype), pin_memory=pin_memory)
        if arr.numel():
            out.copy_to_external(ctypes.c_void_p(arr.data_ptr()))
        return arr
    device = device or torch.device("cuda", out.device_id())
    on_cuda = device.type == "cuda"
    if zero_copy:
        with torch.cuda.device(device) if on_cuda else contextlib.nullcontext():
            return torch.from_dlpack(out.as_tensor())
    arr = torch.empty(_dense_shape(out), dtype=_torch_dtype(out.dtype), device=device)
    # A ctypes pointer, as `feed_ndarray` passes it: DALI orders the copy after its own work on
    # the output and before what torch queues next on this stream.
    stream = ctypes.c_void_p(torch.cuda.current_stream(device).cuda_stream) if on_cuda else None
    if arr.numel():
        out.copy_to_external(ctypes.c_void_p(arr.data_ptr()), stream, non_blocking=on_cuda)
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
