"""Which codecs DALI's decoders read, which backend decodes a shard set (decided before any
pipeline starts), and what NVDEC takes. No PyAV here: the loader imports this on GPU training
images that lack it.

DALI's GPU ("mixed") video decoder is NVDEC. What NVDEC decodes depends on the GPU generation
and on the stream (NVIDIA Video Codec SDK: the NVDEC application note's capability table and the
programming guide's per-codec limits): no AV1 before GA10x (so none on A100 or Hopper H100/H200),
a smallest picture per codec, 8-bit 4:2:0 everywhere and 10-bit / 4:4:4 only for some codecs.
A split NVDEC cannot take is refused here, naming the setting that makes one it can, and the
shard writer refuses such clips of GPU-only codecs when it writes them (`shard_refusal`,
`clip_refusal`), because DALI stops the whole pipeline on a stream its decoder rejects.
"""

from __future__ import annotations

# DALI 2.4's CPU `fn.decoders.video` reads only these; the GPU ("mixed") decoder reads what NVDEC does.
DALI_CPU_CODECS = frozenset({"vp8", "vp9", "mjpeg"})
DALI_GPU_CODECS = frozenset({"vp8", "vp9", "mjpeg", "h264", "hevc", "av1", "mpeg4"})


class DecodeDeviceError(ValueError):
    pass


# Smallest picture (width, height) NVDEC decodes, per codec (programming guide, "Video Decoder
# Capabilities"; the same on every generation that decodes the codec at all).
NVDEC_MIN_SIZE = {"h264": (48, 16), "hevc": (144, 144), "vp8": (48, 16), "vp9": (128, 128), "av1": (128, 128),
                  "mpeg4": (48, 16)}
# Pixel formats NVDEC decodes before Blackwell (which adds H.264 High 10 / 4:2:2 and HEVC 4:2:2):
# H.264 8-bit 4:2:0 only; HEVC Main / Main 10 and (from Turing) 4:4:4; VP9 profile 0 (8-bit 4:2:0)
# and profile 2 (10-bit); AV1 Main (8 / 10-bit 4:2:0); MJPEG through nvJPEG.
NVDEC_PIX_FMTS = {
    "h264": {"yuv420p", "yuvj420p"},
    "hevc": {"yuv420p", "yuvj420p", "yuv420p10le", "yuv444p", "yuvj444p", "yuv444p10le"},
    "vp8": {"yuv420p"},
    "vp9": {"yuv420p", "yuv420p10le"},
    "av1": {"yuv420p", "yuv420p10le"},
    "mpeg4": {"yuv420p"},
    "mjpeg": {"yuvj420p", "yuv420p", "yuvj422p", "yuvj444p"},
}
# Compute capabilities whose NVDEC decodes AV1: GA10x (8.6), Orin (8.7), Ada (8.9), Blackwell
# (10.x, 12.x). Not Volta (7.0), Turing (7.5), A100 (8.0) or Hopper (9.0).
AV1_CAPABILITIES = {(8, 6), (8, 7), (8, 9)}


def cuda_device_count() -> int:
    try:
        from nvidia.dali.backend import GetCUDADeviceCount

        return int(GetCUDADeviceCount())
    except Exception:  # noqa: BLE001 - no driver, no CUDA runtime: no GPU
        return 0


def local_cuda_device() -> int:
    """The CUDA device this process should use, as an index among those it sees.

    A launcher gives each process its GPU either through `LOCAL_RANK` (torchrun: every process
    sees every GPU) or by making only that GPU visible (`CUDA_VISIBLE_DEVICES=3`, as Slurm and
    many schedulers do), in which case it is device 0 whatever the rank. Refuses a rank with no
    GPU of its own rather than let DALI fail deep inside a pipeline build."""
    import os

    return cuda_index(int(os.environ.get("LOCAL_RANK", 0)), cuda_device_count())


def cuda_index(local_rank: int, visible: int) -> int:
    """`local_cuda_device` for a rank that sees `visible` GPUs (the trainer counts them with torch)."""
    if visible == 1:
        return 0
    if visible and local_rank >= visible:
        raise DecodeDeviceError(f"LOCAL_RANK {local_rank} but only {visible} CUDA device(s) visible: run at most "
                                f"{visible} processes per machine, or give each process its GPU with CUDA_VISIBLE_DEVICES")
    return local_rank


def compute_capability(device_id: int = 0) -> tuple[int, int] | None:
    """(major, minor) of CUDA device `device_id`, or None where torch cannot tell (CPU build)."""
    try:
        import torch

        if torch.cuda.is_available():
            return tuple(torch.cuda.get_device_capability(device_id))
    except Exception:  # noqa: BLE001 - no usable CUDA runtime in torch: unknown
        pass
    return None


def has_av1_nvdec(capability: tuple[int, int]) -> bool:
    return capability in AV1_CAPABILITIES or capability[0] >= 10


def nvdec_refusal(codec: str, *, width: int | None = None, height: int | None = None, pix_fmt: str | None = None,
                  capability: tuple[int, int] | None = None) -> str | None:
    """Why NVDEC cannot decode such a stream, with the setting to use; None when it can (or
    when a fact is unknown: None for size, format or capability skips that check)."""
    if codec not in DALI_GPU_CODECS:
        return f"DALI's GPU decoder cannot read {codec}; re-shard with --codec vp9"
    if codec == "av1" and capability is not None and not has_av1_nvdec(capability):
        return (f"this GPU (compute capability {capability[0]}.{capability[1]}) has no AV1 NVDEC (none before "
                "GA10x, and none on A100 or Hopper); re-shard with --codec vp9 or hevc")
    if width is not None and height is not None and codec in NVDEC_MIN_SIZE:
        mw, mh = NVDEC_MIN_SIZE[codec]
        if width < mw or height < mh:
            return (f"{width}x{height} is below NVDEC's smallest {codec} picture ({mw}x{mh}); re-shard with "
                    f"--short-side {max(mw, mh)} or more")
    if pix_fmt is not None and codec in NVDEC_PIX_FMTS and pix_fmt not in NVDEC_PIX_FMTS[codec]:
        return (f"NVDEC does not decode {codec} in {pix_fmt} (it takes {', '.join(sorted(NVDEC_PIX_FMTS[codec]))}); "
                f"re-shard without --copy so that clips are re-encoded as 8-bit 4:2:0")
    return None


def shard_refusal(codec: str, short_side: int) -> str | None:
    """A shard run no loader could read: a GPU-only codec at a short side below NVDEC's
    smallest picture. Checked before any clip is encoded."""
    if codec in DALI_CPU_CODECS or not short_side or codec not in NVDEC_MIN_SIZE:
        return None
    mw, mh = NVDEC_MIN_SIZE[codec]
    if short_side < max(mw, mh):
        return (f"--codec {codec} --short-side {short_side}: {codec} is decoded only on the GPU, and NVDEC's "
                f"smallest {codec} picture is {mw}x{mh}; use --short-side {max(mw, mh)} or more, or --codec vp9")
    return None


def clip_refusal(codec: str, width: int, height: int, pix_fmt: str | None = None) -> str | None:
    """Why a clip of a GPU-only codec would be unreadable (the skip reason the shard writer
    records), or None. Clips of codecs DALI's CPU decoder reads are always kept."""
    if codec in DALI_CPU_CODECS:
        return None
    reason = nvdec_refusal(codec, width=width, height=height, pix_fmt=pix_fmt)
    return f"not decodable on the GPU: {reason}" if reason else None


def _split_refusal(codec: str, encoding: dict | None, capability: tuple[int, int] | None) -> str | None:
    """NVDEC's verdict on a split from its manifest's `encoding` (short side and pixel format)."""
    enc = encoding or {}
    side = enc.get("short_side") or None  # 0: sizes kept from the sources (checked per clip when written)
    return nvdec_refusal(codec, width=side, height=side, pix_fmt=enc.get("pix_fmt"), capability=capability)


def decode_device(codec: str, requested: str = "auto", *, encoding: dict | None = None, device_id: int = 0) -> str:
    """'gpu' or 'cpu' for `codec`; `requested` is auto | cpu | gpu. Refuses impossible choices.

    `encoding` (the manifest's) lets the GPU check the split's short side and pixel format;
    `device_id` is the CUDA device whose generation decides AV1."""
    if requested not in ("auto", "cpu", "gpu"):
        raise DecodeDeviceError(f"decode device must be auto, cpu or gpu, got {requested!r}")
    gpu = cuda_device_count() > 0
    if requested == "gpu" and not gpu:
        raise DecodeDeviceError("--decode gpu needs a CUDA GPU, and none is visible")
    capability = compute_capability(device_id) if gpu else None
    gpu_reason = _split_refusal(codec, encoding, capability) if gpu else None
    if requested == "auto":
        # A split NVDEC cannot take but the CPU decoder can (VP9 below 128x128) goes to the CPU.
        device = "gpu" if gpu and not (gpu_reason and codec in DALI_CPU_CODECS) else "cpu"
    else:
        device = requested
    if device == "cpu" and codec not in DALI_CPU_CODECS:
        raise DecodeDeviceError(
            f"these shards are {codec}, which DALI's CPU decoder cannot read (it reads "
            f"{', '.join(sorted(DALI_CPU_CODECS))}); re-shard with `synapt-fast shard` (MJPEG, the default) "
            "or `--codec vp9`"
            + (" or decode on a GPU" if not gpu else f" ({gpu_reason})" if gpu_reason else " or use --decode gpu")
        )
    if device == "gpu":
        reason = _split_refusal(codec, encoding, capability)
        if reason:
            raise DecodeDeviceError(reason + (" or use --decode cpu" if codec in DALI_CPU_CODECS else ""))
    return device


def decode_for_trainer(trainer_device: str, requested: str = "auto") -> str:
    """The loader's `decode` for a trainer on `trainer_device` (cpu | cuda[:N]): `auto` follows
    the trainer (a CPU run decodes on the CPU even where DALI sees a GPU, a CUDA run lets the
    loader pick NVDEC when the split allows it); an explicit cpu | gpu is kept."""
    if requested != "auto":
        return requested
    return "cpu" if str(trainer_device).split(":")[0] == "cpu" else "auto"
