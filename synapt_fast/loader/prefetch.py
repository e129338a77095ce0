"""Fetch the next batch in a thread while the caller works on the current one.

The DALI pipeline decodes ahead on its own threads, but handing a finished batch over (DALI
outputs -> torch tensors, the `Batch`) still ran on the training thread, between steps
(benchmarks/README.md, performance note 10). A thread one batch ahead does it while the step
runs (torch releases the GIL in its kernels).
"""

from __future__ import annotations

import queue
import threading

from .handoff import use_device_in_thread

_END = object()


class Prefetched:
    """Iterates `batches` in a background thread, `depth` items ahead of the consumer.

    Items come in the same order; an exception raised by `batches` is raised by the consumer's
    `next` at the same position. Use as a context manager (or call `close`) so that leaving
    early stops the thread and closes `batches` (freeing, e.g., a DALI pipeline).
    `device_id`: the CUDA device made current in the thread (torch's current device is per
    thread; a GPU loader's tensors must be made on its pipeline's device); None leaves it.
    """

    def __init__(self, batches, depth: int = 1, device_id: int | None = None):
        self._batches = batches
        self._device_id = device_id
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._produce, name="prefetch-batches", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            use_device_in_thread(self._device_id)
            for item in self._batches:
                if not self._put((True, item)):
                    return
            self._put((True, _END))
        except BaseException as e:  # handed to the consumer, raised there
            self._put((False, e))
        finally:
            close = getattr(self._batches, "close", None)
            if close is not None:
                close()  # in this thread: a generator must not be closed while it runs elsewhere

    def _put(self, entry) -> bool:
        """Queue `entry` unless the consumer has stopped; False when stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        ok, item = self._queue.get()
        if not ok:
            self._done = True
            raise item
        if item is _END:
            self._done = True
            raise StopIteration
        return item

    def close(self) -> None:
        self._done = True
        self._stop.set()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
