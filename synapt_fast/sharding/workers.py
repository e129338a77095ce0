"""Transcoding in worker processes: results in input order, whatever finishes first, and workers
that never outlive the run."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from synapt_fast.format.codecs import clip_refusal

from .sources import SourceItem
from .transcode import BadClip, EncodeOptions, Encoded, encode_item


def _watch_parent(parent: int) -> None:
    """Worker initializer: exit when the main process is gone (killed, even by SIGKILL), instead
    of waiting forever on a queue nobody will fill."""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _process(job: tuple[SourceItem, EncodeOptions]) -> Encoded | str:
    item, opts = job
    if item.problem is not None:
        return item.problem
    try:
        enc = encode_item(item, opts)
    except BadClip as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 - a clip must never stop the run; the reason is recorded
        return f"unexpected error: {type(e).__name__}: {e}"
    # A GPU-only codec's clip NVDEC rejects would stop every pipeline that meets it: skip it here.
    return clip_refusal(opts.codec, enc.width, enc.height) or enc


def results(jobs: list[tuple[SourceItem, EncodeOptions]], workers: int) -> Iterator[Encoded | str]:
    if workers == 1 or len(jobs) <= 1:
        yield from map(_process, jobs)
        return
    # spawn, not fork: the parent may hold DALI/torch threads that must not be forked. An executor,
    # not a Pool: a worker that dies (OOM killer, a crashing decoder) raises BrokenProcessPool
    # instead of hanging the run. Results come back in input order, whatever finishes first.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_watch_parent, initargs=(os.getpid(),)) as pool:
        # Bounded look-ahead keeps memory flat on huge inputs while both workers stay busy.
        window = 4 * workers
        futures = deque(pool.submit(_process, job) for job in jobs[:window])
        try:
            for job in jobs[window:]:
                result = futures.popleft().result()
                futures.append(pool.submit(_process, job))
                yield result
            while futures:
                yield futures.popleft().result()
        except BaseException:
            # Interrupted (Ctrl-C, a failed shard write): drop the queued clips instead of letting the
            # `with` finish every one of them first.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
