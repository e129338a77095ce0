"""The torchcodec peer for the loader benchmark: the reference loader with torchcodec's decoder.

Everything but the decode is the reference loader's (`synapt_fast.loader.reference`): the same
torch DataLoader, webdataset stream, rank partition, index math and augmentation. Only the frames
come from torchcodec's CPU `VideoDecoder` over the sample's in-memory bytes
(`get_frames_at(indices)`), so the comparison isolates the decoder.

torchcodec is optional (the `bench` extra): `unavailable()` says why it cannot be used, and the
benchmark records that reason instead of the contender. PyPI's torchcodec 0.17.0 wheel links
torch's CUDA libraries (libtorch_cuda.so, libnvrtc.so.13) and does not load with a CPU torch;
0.13.0 is a CPU build and matches torch 2.13.
"""

from __future__ import annotations

import numpy as np

from synapt_fast.loader.reference import ReferenceLoader, _Samples


def unavailable() -> str | None:
    """None when torchcodec imports and decodes; else the reason (the exact error)."""
    import importlib

    try:
        importlib.import_module("torchcodec.decoders")
    except Exception as exc:  # an OSError from a wheel built for another torch is the usual one
        return f"torchcodec not usable: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    return None


def decode_frames(data: bytes, wanted: np.ndarray) -> np.ndarray:
    """RGB uint8 (len(wanted), H, W, 3) at `wanted` frame indices, decoded by torchcodec."""
    from torchcodec.decoders import VideoDecoder

    # One FFmpeg thread: the DataLoader workers are the parallelism, as for the PyAV reference.
    decoder = VideoDecoder(data, device="cpu", dimension_order="NHWC", num_ffmpeg_threads=1)
    last = decoder.metadata.num_frames - 1
    # Indices past the end (a frame count the container overstates) repeat the last frame.
    idx = np.minimum(wanted, last).astype(np.int64).tolist()
    return decoder.get_frames_at(idx).data.numpy()


class TorchCodecSamples(_Samples):
    """`_Samples` with torchcodec decoding: the same stream, selection, shuffle and rng order."""

    def decode(self, data: bytes, idx: np.ndarray) -> np.ndarray:
        return decode_frames(data, idx)


class TorchCodecLoader(ReferenceLoader):
    """The reference loader (DataLoader, workers, batching, epochs) over `TorchCodecSamples`."""

    def __init__(self, split_dir, sampling, transform, **kw):
        super().__init__(split_dir, sampling, transform, **kw)
        # The DataLoader holds this very dataset object; its workers start on first iteration, so
        # swapping the class here swaps the decode and nothing else.
        self.dataset.__class__ = TorchCodecSamples
