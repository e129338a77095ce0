"""Which codecs DALI's decoders read, and which backend decodes a shard set, decided before any
pipeline starts. No PyAV here: the loader imports this on GPU training images that lack it."""

from __future__ import annotations

# DALI 2.4's CPU `fn.decoders.video` reads only these; the GPU ("mixed") decoder reads what NVDEC does.
DALI_CPU_CODECS = frozenset({"vp8", "vp9", "mjpeg"})
DALI_GPU_CODECS = frozenset({"vp8", "vp9", "mjpeg", "h264", "hevc", "av1", "mpeg4"})


class DecodeDeviceError(ValueError):
    pass


def cuda_device_count() -> int:
    try:
        from nvidia.dali.backend import GetCUDADeviceCount

        return int(GetCUDADeviceCount())
    except Exception:  # noqa: BLE001 - no driver, no CUDA runtime: no GPU
        return 0


def decode_device(codec: str, requested: str = "auto") -> str:
    """'gpu' or 'cpu' for `codec`; `requested` is auto | cpu | gpu. Refuses impossible choices."""
    if requested not in ("auto", "cpu", "gpu"):
        raise DecodeDeviceError(f"decode device must be auto, cpu or gpu, got {requested!r}")
    gpu = cuda_device_count() > 0
    if requested == "gpu" and not gpu:
        raise DecodeDeviceError("--decode gpu needs a CUDA GPU, and none is visible")
    device = requested if requested != "auto" else ("gpu" if gpu else "cpu")
    if device == "cpu" and codec not in DALI_CPU_CODECS:
        raise DecodeDeviceError(
            f"these shards are {codec}, which DALI's CPU decoder cannot read (it reads "
            f"{', '.join(sorted(DALI_CPU_CODECS))}); re-shard with `synapt-fast shard --codec vp9`"
            + (" or decode on a GPU" if not gpu else " or use --decode gpu")
        )
    if device == "gpu" and codec not in DALI_GPU_CODECS:
        raise DecodeDeviceError(f"DALI's GPU decoder cannot read {codec}; re-shard with --codec vp9")
    return device
