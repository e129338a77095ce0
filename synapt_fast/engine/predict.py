"""Class scores for raw video files or a shard split from a trained checkpoint (`synapt-fast predict`).

A raw file is decoded in memory with PyAV and turned into the frames its shard would hold (the
sharder's constant-rate resampling, its short-side resize), then sampled and cropped by the same
numpy code the reference loader uses (`loader/sampling.py`, `loader/reference.py`): the views of
evaluation, at the checkpoint recipe's `[eval]` settings unless overridden. A shard split goes
through the evaluation loader itself. So a clip scores the same as a raw file and from its shard,
up to the codec's loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .evaluate_checkpoint import Trained


@dataclass
class Prediction:
    source: str  # file path, or split:position
    top: list[tuple[str, float]]  # (class name, probability), best first
    label: str | None = None  # the true class, known for shard samples

    def record(self) -> dict:
        rec = {"source": self.source, "top1": self.top[0][0], "scores": {n: round(p, 6) for n, p in self.top}}
        if self.label is not None:
            rec["label"] = self.label
        return rec


def decode_video(path: Path, *, fps: float = 30.0, short_side: int = 128) -> np.ndarray:
    """(T, H, W, 3) uint8: every frame of a video file at `fps`, short side `short_side` (0: as is),
    as `synapt-fast shard` resamples and resizes before encoding."""
    import av

    # The sharder's resampling and sizes, so the frames match those of the file's shard.
    from synapt_fast.sharding.transcode import resample, target_size

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise ValueError(f"{path}: cannot open as a video ({e})") from None
    with container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or fps)

        def timed():
            start = None
            for n, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else n / rate
                start = t if start is None else start
                yield t - start, frame

        out, size, last = [], None, (None, None)
        try:
            for frame in resample(timed(), fps, 1.0 / rate, None):
                if frame is not last[0]:  # resampling repeats frames: convert each once
                    size = size or target_size(frame.width, frame.height, short_side)
                    # AREA, as the sharder scales before encoding
                    small = frame.reformat(width=size[0], height=size[1], interpolation="AREA")
                    last = (frame, small.to_ndarray(format="rgb24"))
                out.append(last[1])
        except av.FFmpegError as e:
            raise ValueError(f"{path}: corrupt stream after {len(out)} frames ({e})") from None
    if not out:
        raise ValueError(f"{path}: no frames decoded")
    return np.stack(out)


def _views(trained: Trained, frames: np.ndarray) -> torch.Tensor:
    """[V, *clip]: the evaluation views of one decoded video."""
    from synapt_fast.loader.batch import arrange_eval
    from synapt_fast.loader.reference import augment
    from synapt_fast.loader.sampling import numpy_indices
    from synapt_fast.loader.transforms import Transform

    from .build import build_sampling

    r = trained.recipe
    sampling = build_sampling(r)
    d = r.data
    transform = Transform(size=d.image_size, train_crop=d.train_crop, flip=d.flip, eval_crops=r.eval.crops,
                          resize_ratio=d.resize_ratio, layout=trained.model.input_layout)
    idx = numpy_indices(sampling, len(frames), train=False)
    crops = augment(frames[idx], transform, False, np.random.default_rng(0))
    return arrange_eval(crops.unsqueeze(0), sampling.clips(False), transform.layout)[0]


def _top(trained: Trained, probs: torch.Tensor, k: int) -> list[tuple[str, float]]:
    p, i = probs.topk(min(k, len(trained.class_names)))
    return [(trained.class_names[j], float(q)) for j, q in zip(i.tolist(), p.tolist())]


@torch.no_grad()
def predict_files(trained: Trained, paths: list[Path], *, topk: int = 5, fps: float = 30.0,
                  short_side: int = 128, on_error=None):
    """One `Prediction` per readable file; `on_error(path, message)` for each that is not."""
    model = trained.model.eval()
    for path in paths:
        try:
            views = _views(trained, decode_video(Path(path), fps=fps, short_side=short_side))
        except ValueError as e:
            if on_error is None:
                raise
            on_error(path, str(e))
            continue
        probs = model(views).float().softmax(-1).mean(0)
        yield Prediction(str(path), _top(trained, probs, topk))


@torch.no_grad()
def predict_split(trained: Trained, split: Path, env, *, topk: int = 5):
    """One `Prediction` per sample of a shard split (source `split:position`), in split order."""
    from synapt_fast.format.verify import quick_check

    from .evaluate_checkpoint import eval_loader

    names = list(quick_check(Path(split)).class_names)  # the split's labels (its classes may differ)
    model = trained.model.eval().to(env.device)
    loader = eval_loader(trained.recipe, env, str(split), model.input_layout)
    out = []
    for batch in loader.iterate(0):
        video = batch.video.to(env.device)
        b, v = video.shape[:2]
        probs = model(video.flatten(0, 1)).float().softmax(-1).view(b, v, -1).mean(1).cpu()
        for p, label, pos in zip(probs, batch.label.tolist(), batch.pos.tolist()):
            out.append((pos, Prediction(f"{split}:{pos}", _top(trained, p, topk), names[label])))
    return [p for _, p in sorted(out, key=lambda x: x[0])]
