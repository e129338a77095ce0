"""The hand-off of DALI outputs to torch (`loader.handoff`): real CPU outputs, an object with
exactly `TensorListGPU`'s methods (which has no `as_array`), and real GPU outputs on a GPU."""

from __future__ import annotations

import ctypes
import inspect
import threading

import numpy as np
import nvidia.dali.backend as backend
import nvidia.dali.fn as fn
import nvidia.dali.types as types
import pytest
import torch
from nvidia.dali import pipeline_def

from synapt_fast.format.codecs import cuda_device_count
from synapt_fast.loader.handoff import to_torch
from synapt_fast.loader.prefetch import Prefetched

GPU_NAMES = sorted(n for n in dir(backend.TensorListGPU) if not n.startswith("__"))


@pipeline_def(batch_size=3, num_threads=1, seed=5)
def _outputs(device: str = "cpu"):
    x = fn.random.uniform(range=[0.0, 255.0], shape=[2, 4, 5])
    if device == "gpu":
        x = x.gpu()
    return fn.cast(x, dtype=types.UINT8), fn.cast(x, dtype=types.FLOAT16), fn.cast(x, dtype=types.INT32)


def _run_into_torch(pipe):
    pipe.schedule_run()
    outs = pipe.share_outputs()
    try:
        ptrs = [o.data_ptr() for o in outs]
        return ptrs, [to_torch(o, zero_copy=pipe.exec_dynamic) for o in outs], \
            [np.array(o.as_array()) for o in outs]
    finally:
        pipe.release_outputs()


@pytest.mark.parametrize("exec_dynamic", [True, False], ids=["dynamic-views", "legacy-copies"])
def test_cpu_outputs_stay_what_dali_computed_while_later_batches_run(exec_dynamic):
    # The dynamic executor's host buffers are handed over as DLPack views (no copy: a fresh torch
    # buffer per batch cost first-touch page faults); the legacy executor reuses its buffers, so
    # those are copied. Either way a batch held by the trainer must not change under later runs.
    pipe = _outputs(device_id=None, prefetch_queue_depth=2, exec_dynamic=exec_dynamic)
    pipe.build()
    held = []
    for _ in range(5):
        ptrs, tensors, expected = _run_into_torch(pipe)
        views = [t.data_ptr() == p for t, p in zip(tensors, ptrs)]
        assert views == [exec_dynamic] * 3
        held.append((tensors, expected))
    assert [t.dtype for t in held[0][0]] == [torch.uint8, torch.float16, torch.int32]
    for tensors, expected in held:
        for t, e in zip(tensors, expected):
            assert t.device.type == "cpu" and tuple(t.shape) == (3, 2, 4, 5) and np.array_equal(t.numpy(), e)
    assert not torch.equal(held[0][0][0], held[1][0][0])


def test_page_locked_cpu_outputs_are_copies():
    if not torch.cuda.is_available():
        pytest.skip("page-locked memory needs CUDA")
    pipe = _outputs(device_id=None, prefetch_queue_depth=1)
    pipe.build()
    pipe.schedule_run()
    outs = pipe.share_outputs()
    try:
        t = to_torch(outs[0], pin_memory=True)
        assert t.is_pinned() and t.data_ptr() != outs[0].data_ptr()
    finally:
        pipe.release_outputs()




def _gpu_like(array: np.ndarray, dali_dtype, device_id: int = 0):
    """An object with exactly TensorListGPU's public names: those a GPU hand-off needs work on
    `array`, every other one fails the test if called; nothing else exists on it."""
    calls = []
    impl = {
        "shape": lambda self: [tuple(a.shape) for a in array],
        "dtype": property(lambda self: dali_dtype),
        "device_id": lambda self: device_id,
        "copy_to_external": lambda self, ptr, cuda_stream=None, non_blocking=False, use_copy_kernel=False: (
            calls.append(("copy", cuda_stream, non_blocking)),
            ctypes.memmove(ptr, np.ascontiguousarray(array).ctypes.data, array.nbytes))[0],
        # A dense view with DLPack, as TensorGPU is (here on the host: no CUDA on this machine).
        "as_tensor": lambda self: (calls.append(("as_tensor",)), torch.from_numpy(array))[1],
    }

    def unexpected(name):
        def f(self, *a, **k):
            raise AssertionError(f"the hand-off called TensorListGPU.{name}")
        return f

    attrs = {n: impl.get(n, unexpected(n)) for n in GPU_NAMES}
    attrs["__slots__"] = ()
    cls = type("TensorListGPULike", (), attrs)
    return cls(), calls


@pytest.mark.parametrize("zero_copy", [True, False], ids=["dlpack", "copy"])
def test_a_gpu_output_is_handed_over_with_tensorlistgpus_methods_only(zero_copy):
    assert "as_array" not in GPU_NAMES  # the method whose use crashed the first GPU batch
    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    fake, calls = _gpu_like(data, types.FLOAT)
    assert not hasattr(fake, "as_array") and not hasattr(fake, "__dict__")
    # Here (no CUDA) the destination is host memory; on a GPU it is cuda:<device_id>.
    t = to_torch(fake, device=torch.device("cpu"), zero_copy=zero_copy)
    assert t.dtype == torch.float32 and tuple(t.shape) == (2, 3, 4) and np.array_equal(t.numpy(), data)
    assert calls == ([("as_tensor",)] if zero_copy else [("copy", None, False)])


def test_the_hand_off_calls_copy_to_external_as_dali_declares_it():
    # The GPU branch passes (ptr, cuda_stream, non_blocking=...): those names must exist in the
    # installed DALI's signature, or the keyword call fails on the first GPU batch.
    doc = backend.TensorListGPU.copy_to_external.__doc__
    assert "cuda_stream" in doc and "non_blocking" in doc
    assert "__dlpack__" in dir(backend.TensorGPU)  # what as_tensor() returns, for torch.from_dlpack
    src = inspect.getsource(to_torch)
    assert "as_array" not in src and "as_cpu" not in src


def test_a_ragged_output_is_refused_with_the_shapes():
    fake, _ = _gpu_like(np.zeros((2, 3), np.float32), types.FLOAT)
    type(fake).shape = lambda self: [(3,), (4,)]
    with pytest.raises(ValueError, match="differ in shape"):
        to_torch(fake, device=torch.device("cpu"), zero_copy=False)


needs_gpu = pytest.mark.skipif(cuda_device_count() < 1 or not torch.cuda.is_available(),
                               reason="needs a CUDA GPU visible to DALI and torch")


@pytest.mark.gpu
@needs_gpu
def test_gpu_outputs_land_on_the_pipelines_device_and_stream():
    dev = torch.cuda.device_count() - 1  # the last GPU: not torch's default device when there are several
    for exec_dynamic in (True, False):  # DLPack views; copies with the legacy executor
        pipe = _outputs(device="gpu", device_id=dev, prefetch_queue_depth=2, exec_dynamic=exec_dynamic)
        pipe.build()
        first = None
        for _ in range(3):  # later runs must not overwrite what an earlier batch handed out
            pipe.schedule_run()
            outs = pipe.share_outputs()
            try:
                assert isinstance(outs[0], backend.TensorListGPU)
                tensors = [to_torch(o, zero_copy=pipe.exec_dynamic) for o in outs]
                expected = [np.array(o.as_cpu().as_array()) for o in outs]
            finally:
                pipe.release_outputs()
            for t, e in zip(tensors, expected):
                assert t.device == torch.device("cuda", dev) and np.array_equal(t.cpu().numpy(), e)
            if first is None:
                first = (tensors, expected)
        torch.cuda.synchronize()
        for t, e in zip(*first):
            assert np.array_equal(t.cpu().numpy(), e), exec_dynamic


@pytest.mark.gpu
@needs_gpu
def test_the_prefetch_thread_selects_the_loaders_device():
    dev = torch.cuda.device_count() - 1
    seen = []

    def batches():
        seen.append((threading.current_thread().name, torch.cuda.current_device()))
        yield 1

    with Prefetched(batches(), device_id=dev) as it:
        assert list(it) == [1]
    assert seen == [("prefetch-batches", dev)]
