"""Representation bias (paper §4.2, Eq. 1): how much of a dataset's labels static cues give away.

    B(D, phi) = log2( M(D, phi) / M_rnd ),   M_rnd = 1 / number of classes

M is the top-1 accuracy on val of a linear probe (multinomial logistic regression, full-batch
L-BFGS, deterministic) on frozen features of a 2D ImageNet ResNet-50: per clip, the TSN centre
frames of `frames` segments are centre-cropped by the DALI loader, each frame's 2048-d pooled
feature is taken and the frames are averaged, so no temporal model sees the clip.

Features are cached as `.npz` files named by a key over the split's manifest (which holds every
shard's sha256), the weights file's sha256 and the sampling: a second run on the same inputs
reads the cache; changed shards, weights or sampling give a new key and are extracted afresh.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from synapt_fast.atomic import save_atomic_with
from synapt_fast.format.manifest import MANIFEST
from synapt_fast.format.index import file_sha256

FEATURE_VERSION = 1  # bump when the extraction changes, so old caches are not reused
RESNET50_URL = "https://download.pytorch.org/models/resnet50-0676ba61.pth"


class BiasError(ValueError):
    """A bias measurement that cannot run; the message names the file or option at fault."""


def representation_bias(accuracy: float, num_classes: int) -> float:
    """Eq. 1: log2(M / M_rnd) with M_rnd = 1 / num_classes; `accuracy` is a fraction in (0, 1]."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if not 0.0 < accuracy <= 1.0:
        raise ValueError(f"accuracy must be in (0, 1], got {accuracy}")
    return math.log2(accuracy * num_classes)


# --- the probe --------------------------------------------------------------------------------

@dataclass
class LinearProbe:
    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray  # (C, D)
    bias: np.ndarray  # (C,)

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.std
        return (z @ self.weight.T + self.bias).argmax(1)


def fit_probe(x: np.ndarray, y: np.ndarray, num_classes: int, *, weight_decay: float = 1e-3,
              max_iter: int = 500, seed: int = 0) -> LinearProbe:
    """Multinomial logistic regression on standardised features, full-batch L-BFGS from zeros
    (so the fit is deterministic; `seed` only fixes torch's global state for safety)."""
    import torch

    torch.manual_seed(seed)
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(0)
    std = x.std(0) + 1e-6  # constant features (dead ReLUs) stay zero instead of dividing by 0
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    w = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-7, tolerance_change=1e-10,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w.T + b, yt) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LinearProbe(mean, std, w.detach().numpy(), b.detach().numpy())


def out_of_fold_predictions(x: np.ndarray, y: np.ndarray, num_classes: int, *, folds: int = 5,
                            weight_decay: float = 1e-3, seed: int = 0) -> np.ndarray:
    """Each train sample predicted by a probe fitted on the other folds (class-stratified, seeded).

    A probe on 2048-d features often fits its train set perfectly, which makes per-class train
    accuracy useless for ranking classes; out-of-fold accuracy on train stays informative."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for c in range(num_classes):
        idx = np.flatnonzero(y == c)
        fold[idx[rng.permutation(len(idx))]] = np.arange(len(idx)) % folds
    pred = np.empty(len(y), dtype=np.int64)
    for f in range(folds):
        test = fold == f
        if test.any() and (~test).any():
            pred[test] = fit_probe(x[~test], y[~test], num_classes, weight_decay=weight_decay, seed=seed).predict(x[test])
    return pred


def per_class_accuracy(pred: np.ndarray, y: np.ndarray, class_names: list[str]) -> dict[str, float | None]:
    """Accuracy of each class by name; None for a class with no samples."""
    out = {}
    for i, name in enumerate(class_names):
        mask = y == i
        out[name] = float((pred[mask] == i).mean()) if mask.any() else None
    return out


# --- features ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeatureSpec:
    """What the features are: backbone and sampling (part of the cache key)."""

    arch: str = "tsn_r50"
    frames: int = 8
    size: int = 224


def check_weights(weights: Path) -> Path:
    weights = Path(weights)
    if not weights.is_file():
        raise BiasError(
            f"{weights}: ImageNet weights not found. Download torchvision's ResNet50_Weights.IMAGENET1K_V1 "
            f"({RESNET50_URL}) and pass the file with --weights; nothing is downloaded for you.")
    return weights


def cache_key(split_dir: Path, weights_sha256: str, spec: FeatureSpec) -> tuple[str, str]:
    """(key, manifest sha256): the manifest holds every shard's sha256, so it stands for the shards."""
    manifest_sha = file_sha256(Path(split_dir) / MANIFEST)
    text = json.dumps({"manifest": manifest_sha, "weights": weights_sha256, "spec": asdict(spec),
                       "version": FEATURE_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest(), manifest_sha


def build_backbone(spec: FeatureSpec, weights: Path):
    """A 2D ResNet TSN with ImageNet weights, in eval mode (BatchNorm uses its running stats)."""
    from synapt_fast.models import create_model
    from synapt_fast.models.weights import CheckpointMismatch, load_imagenet

    if not spec.arch.startswith("tsn_"):
        raise BiasError(f"--arch {spec.arch}: the bias probe needs a 2D frame backbone (tsn_r50, tsn_tiny)")
    try:
        model = create_model(spec.arch, num_classes=1, num_frames=spec.frames, image_size=spec.size)
        load_imagenet(model, weights)
    except KeyError as e:
        raise BiasError(str(e).strip('"')) from None
    except (CheckpointMismatch, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise BiasError(f"{weights}: {e}") from None
    return model.eval()


def feature_device(loader):
    """Where the loader's video tensors are: cuda:<its device> when DALI decodes on the GPU."""
    import torch

    device_id = getattr(loader, "device_id", None)
    return torch.device("cpu") if device_id is None else torch.device("cuda", device_id)


def extract(split_dir: Path, model, spec: FeatureSpec, *, batch_size: int, workers: int,
            decode: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Clip features (N, D) and labels (N,) in sample-position order, through the DALI loader
    (`decode`: auto | cpu | gpu); the model is moved to the loader's device."""
    import torch

    from synapt_fast.loader import Sampling, Transform, make_loader

    loader = make_loader(split_dir, Sampling("segments", spec.frames), Transform(size=spec.size, layout="NTCHW"),
                         train=False, batch_size=batch_size, workers=workers, decode=decode)
    n = loader.manifest.num_samples
    feats = np.zeros((n, model.num_features), dtype=np.float32)
    labels = np.full(n, -1, dtype=np.int64)
    model = model.to(feature_device(loader))  # decoded on the GPU: the backbone runs there too
    with torch.no_grad():
        for batch in loader:
            f = model.forward_features(batch.video[:, 0])  # one view: the centre crop
            pos = batch.pos.cpu().numpy()
            feats[pos] = f.float().cpu().numpy()
            labels[pos] = batch.label.cpu().numpy()
    if (labels < 0).any():
        raise BiasError(f"{split_dir}: the loader returned {int((labels >= 0).sum())} of {n} samples")
    return feats, labels


def cached_features(split_dir: Path, model_fn, spec: FeatureSpec, weights_sha256: str, cache_dir: Path, *,
                    batch_size: int, workers: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Features from the cache when its key matches, else extracted (building the model via
    `model_fn`) and cached atomically. Returns features, labels and a record of what was used."""
    split_dir, cache_dir = Path(split_dir), Path(cache_dir)
    key, manifest_sha = cache_key(split_dir, weights_sha256, spec)
    # Files of one split folder, weights and sampling share a prefix, so that a cache made stale
    # by rewritten shards is deleted when its successor is written.
    same = json.dumps([str(split_dir.resolve()), weights_sha256, asdict(spec)])
    prefix = f"{split_dir.parent.name}-{split_dir.name}-{hashlib.sha256(same.encode()).hexdigest()[:8]}"
    path = cache_dir / f"{prefix}-{key[:16]}.npz"
    record = {"split": str(split_dir), "manifest_sha256": manifest_sha, "cache": str(path), "key": key}
    if path.is_file():
        try:
            with np.load(path) as z:
                if str(z["key"]) == key:
                    return z["features"], z["labels"], dict(record, cache_hit=True)
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache file is rebuilt below
    feats, labels = extract(split_dir, model_fn(), spec, batch_size=batch_size, workers=workers)
    cache_dir.mkdir(parents=True, exist_ok=True)
    save_atomic_with(path, lambda tmp: np.savez(tmp, features=feats, labels=labels, key=np.array(key)),
                     durable=False)
    for stale in cache_dir.glob(f"{prefix}-*.npz"):
        if stale != path:
            stale.unlink(missing_ok=True)
    return feats, labels, dict(record, cache_hit=False)


def measure_bias(train_dir: Path, val_dir: Path, weights: Path, spec: FeatureSpec, *, cache_dir: Path,
                 batch_size: int = 16, workers: int = 2, weight_decay: float = 1e-3, seed: int = 0,
                 folds: int = 5) -> dict:
    """Fit the probe on train features, score it on val; the JSON record the `bias` command writes.
    Per-class accuracies: on train (as the paper ranks HMDB51), on train out-of-fold (`folds`
    probes each scoring the samples it did not see) and on val."""
    from synapt_fast.format.verify import ShardError, quick_check

    weights = check_weights(weights)
    if folds < 2:
        raise BiasError(f"--folds {folds}: out-of-fold accuracy needs at least 2 folds")
    try:
        train_m, val_m = quick_check(train_dir), quick_check(val_dir)
    except ShardError as e:
        raise BiasError(str(e)) from None
    if train_m.class_names != val_m.class_names:
        raise BiasError(f"{train_dir} and {val_dir} have different class lists; subset val with "
                        f"--classes-from {Path(train_dir) / 'subset.json'}")
    weights_sha = file_sha256(weights)
    model = []

    def model_fn():
        if not model:
            model.append(build_backbone(spec, weights))
        return model[0]

    common = dict(cache_dir=cache_dir, batch_size=batch_size, workers=workers)
    xtr, ytr, rec_tr = cached_features(train_dir, model_fn, spec, weights_sha, **common)
    xva, yva, rec_va = cached_features(val_dir, model_fn, spec, weights_sha, **common)
    names = train_m.class_names
    probe = fit_probe(xtr, ytr, len(names), weight_decay=weight_decay, seed=seed)
    ptr, pva = probe.predict(xtr), probe.predict(xva)
    poof = out_of_fold_predictions(xtr, ytr, len(names), folds=folds, weight_decay=weight_decay, seed=seed)
    m = float((pva == yva).mean())
    m_rnd = 1.0 / len(names)
    return {
        "dataset": train_m.set, "train_split": str(train_dir), "val_split": str(val_dir),
        "classes": len(names), "class_names": names, "num_train": int(len(ytr)), "num_val": int(len(yva)),
        "M": m, "M_rnd": m_rnd, "B": representation_bias(m, len(names)) if m > 0 else None,
        "train_accuracy": float((ptr == ytr).mean()),
        "per_class_train_accuracy": per_class_accuracy(ptr, ytr, names),
        "per_class_val_accuracy": per_class_accuracy(pva, yva, names),
        # Ranking key of `subset --bias-ranked` (default): train accuracy of out-of-fold probes.
        "train_cv_accuracy": float((poof == ytr).mean()), "cv_folds": folds,
        "per_class_train_cv_accuracy": per_class_accuracy(poof, ytr, names),
        "arch": spec.arch, "frames": spec.frames, "size": spec.size,
        "weights": str(weights), "weights_sha256": weights_sha,
        "probe": {"kind": "multinomial logistic regression, L-BFGS, standardised features",
                  "weight_decay": weight_decay, "seed": seed},
        "features": {"train": rec_tr, "val": rec_va},
    }
