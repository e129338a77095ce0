"""Weight import: ImageNet 2D weights (plain or inflated to 3D), IBM/SynAPT checkpoints and
facebookresearch TimeSformer checkpoints, with a report of what matched.

Two entry points, both returning a `LoadReport`:

- `load_imagenet(model, source)`: a torchvision-format ResNet state dict into TSN (as is) or into
  I3D / R(2+1)D (inflated the way IBM/action-recognition-pytorch inflates: each 2D kernel is
  repeated along time to the 3D kernel's temporal size, *without* dividing, so a temporally
  constant input gives k_t times the 2D response at the first conv); or a timm-named ViT state
  dict into TimeSformer (spatial attention and norm copied into the temporal ones, as the
  reference does).
- `load_checkpoint(model, source)`: a checkpoint in our own key naming — IBM/SynAPT
  `{'state_dict': ...}` files (keys possibly `module.`-prefixed) or facebookresearch TimeSformer
  `{'model_state': ...}` files (keys `model.`-prefixed).

Before any tensor is copied, `load_checkpoint` compares the temporal variant the checkpoint was
trained as with the model's. I3D with and without temporal stride, TSN with and without temporal
pooling, R(2+1)D with and without depthwise temporal convs have identical keys and shapes, so a
load into the wrong one "succeeds" and gives other logits. IBM's `train.py` stores the variant in
`arch` (`<dataset>-<modality>-<network name>-f<frames>-...`, network names `resnet-50`,
`resnet-50-ts-max`, `i3d-resnet-50-ts`, `s3d-resnet-50-dw-t-conv-ts`, ...), ours store the
registered model name there, and facebookresearch TimeSformer stores its config (`cfg`, YAML text
with `ATTENTION_TYPE`). A checkpoint that names another variant is refused, naming both; one that
names none (a bare state dict, an `arch` we cannot read) loads as before.

Rules for every load: files are read with `torch.load(weights_only=True)` (a checkpoint is data,
not code); a classifier whose shape differs from the model's is dropped, leaving the model's new
head; any other shape mismatch is an error; missing and unexpected keys are logged and returned;
a load that would fill less than `min_match` of the model's tensors is refused with an error that
shows both key sets — the IBM loader's `strict=False` on `module.`-prefixed keys loads nothing at
all and says nothing, and that must never happen here.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]
_PREFIXES = ("module.", "model.")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, empty, or not for this model. Names the file."""


class CheckpointMismatch(CheckpointError):
    """A state dict that does not fit the model (too few matching keys, wrong shapes, another variant)."""


@dataclass
class LoadReport:
    """What a load did. Lists exclude BatchNorm `num_batches_tracked` counters."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model tensors left at their initialisation
    unexpected: list[str] = field(default_factory=list)  # checkpoint tensors the model has no place for
    classifier_replaced: bool = False  # checkpoint classifier had another class count: new head kept

    @property
    def match_fraction(self) -> float:
        total = len(self.loaded) + len(self.missing)
        return len(self.loaded) / total if total else 0.0

    def summary(self) -> str:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f", ... (+{len(keys) - 6})" if len(keys) > 6 else "")

        text = (f"{self.source}: loaded {len(self.loaded)} tensors ({self.match_fraction:.0%} of the "
                f"model), missing {len(self.missing)}, unexpected {len(self.unexpected)}")
        if self.classifier_replaced:
            text += "; classifier replaced (class count differs)"
        if self.missing:
            text += f"\n  missing: {few(self.missing)}"
        if self.unexpected:
            text += f"\n  unexpected: {few(self.unexpected)}"
        return text


# --- reading --------------------------------------------------------------------------------

def read_state_dict(source: str | os.PathLike | dict) -> tuple[StateDict, str]:
    """Return ``(state_dict, description)`` from a path or an in-memory checkpoint.

    Unwraps `state_dict` / `model_state` / `model` containers and strips a `module.` and/or
    `model.` prefix shared by every key.
    """
    obj, name = read_checkpoint(source)
    return strip_prefixes(_unwrap(obj, name)), name


def read_checkpoint(source: str | os.PathLike | dict) -> tuple[dict, str]:
    """``(checkpoint object, description)``; an unreadable file is a `CheckpointError` naming it."""
    if isinstance(source, dict):
        return source, "in-memory state dict"
    name = os.fspath(source)
    if os.path.isfile(name) and os.path.getsize(name) == 0:
        raise CheckpointError(f"{name}: empty file (0 bytes), not a checkpoint; was its save cut short?")
    try:
        obj = torch.load(name, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{name}: no such checkpoint file") from None
    except pickle.UnpicklingError as e:
        # weights_only refused a pickled object: say which, not torch's how-to-load-it-anyway text
        why = next((line.strip() for line in str(e).splitlines() if "Unsupported" in line or "global" in line),
                   str(e).strip().splitlines()[0] if str(e).strip() else "")
        raise CheckpointError(f"{name}: holds objects other than tensors and containers; read as data "
                              f"(weights_only) it is refused: {why}") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{name}: not a readable checkpoint ({type(e).__name__}: {first})") from None
    return obj, name


def _unwrap(obj, name: str) -> StateDict:
    if not isinstance(obj, dict):
        raise CheckpointMismatch(f"{name}: expected a dict, got {type(obj).__name__}")
    for key in ("state_dict", "model_state", "model"):
        if isinstance(obj.get(key), dict):
            return _unwrap(obj[key], name)
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointMismatch(f"{name}: no tensors found; top-level keys: {sorted(obj)[:20]}")
    return tensors


def strip_prefixes(sd: StateDict) -> StateDict:
    """Strip `module.` (DataParallel/DDP) and `model.` (TimeSformer wrapper) when every key has it."""
    changed = True
    while changed and sd:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
                changed = True
    return sd


# --- the one checked load --------------------------------------------------------------------

def load_state_dict_checked(model: nn.Module, sd: StateDict, *, source: str = "state dict",
                            min_match: float = 0.5, new_classifier: bool = False) -> LoadReport:
    """Load `sd` into `model` non-strictly, but checked: see the module docstring.

    `new_classifier=True` never loads the checkpoint's classifier (ImageNet heads)."""
    own = model.state_dict()
    report = LoadReport(source=source)
    classifier = getattr(model, "classifier_name", None)
    sd = dict(sd)
    if classifier is not None:
        for suffix in ("weight", "bias"):
            key = f"{classifier}.{suffix}"
            if key in sd and (new_classifier or (key in own and sd[key].shape != own[key].shape)):
                del sd[key]
                report.classifier_replaced = True

    wrong_shape = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                   for k, v in sd.items() if k in own and v.shape != own[k].shape]
    if wrong_shape:
        raise CheckpointMismatch(f"{source}: shape mismatch for {len(wrong_shape)} tensors: "
                                 + "; ".join(wrong_shape[:8]))

    def counted(k: str) -> bool:
        return not k.endswith("num_batches_tracked")

    report.loaded = [k for k in own if k in sd and counted(k)]
    report.missing = [k for k in own if k not in sd and counted(k)]
    if report.classifier_replaced:  # the new head is missing by design, not by accident
        report.missing = [k for k in report.missing if not k.startswith(f"{classifier}.")]
    report.unexpected = [k for k in sd if k not in own and counted(k)]
    if report.match_fraction < min_match:
        raise CheckpointMismatch(
            f"refusing to load {source}: it fills only {len(report.loaded)} of "
            f"{len(report.loaded) + len(report.missing)} model tensors (< {min_match:.0%}).\n"
            f"  checkpoint keys look like: {list(sd)[:5]}\n  model keys look like: {list(own)[:5]}")
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    (log.warning if report.missing or report.unexpected else log.info)(report.summary())
    return report


# --- checkpoints in our own naming ------------------------------------------------------------

def load_checkpoint(model: nn.Module, source, *, min_match: float = 0.5) -> LoadReport:
    """Load an IBM/SynAPT (`state_dict`, maybe `module.`) or facebookresearch TimeSformer
    (`model_state`, `model.`) checkpoint, or a plain state dict in our key naming."""
    obj, name = read_checkpoint(source)
    check_variant(model, obj, name)
    sd = strip_prefixes(_unwrap(obj, name))
    if getattr(model, "family", None) == "timesformer":
        sd = _resize_timesformer_embeddings(sd, model)
    return load_state_dict_checked(model, sd, source=name, min_match=min_match)


# --- which temporal variant a checkpoint was trained as ----------------------------------------

@dataclass(frozen=True)
class Variant:
    """What tells same-keyed models apart: the temporal design, in IBM's network-name terms."""

    family: str  # tsn | i3d | r2plus1d | timesformer
    temporal_stride: bool = False  # I3D / R(2+1)D: stride 2 in time; TSN: temporal pooling on
    temporal_pool: str = ""  # TSN with temporal stride: max | avg
    depthwise_temporal: bool = False  # R(2+1)D: IBM's --dw_t_conv
    temporal_module: str = ""  # IBM TSN temporal modules (e.g. TAM-b3-sum); no model here has one
    attention: str = ""  # TimeSformer attention type

    def describe(self) -> str:
        if self.family == "timesformer":
            return f"TimeSformer {self.attention or '?'}"
        base = {"tsn": "resnet", "i3d": "i3d-resnet", "r2plus1d": "s3d-resnet"}[self.family]
        text = (f"{self.temporal_module}-" if self.temporal_module else "") + base
        if self.depthwise_temporal:
            text += "-dw-t-conv"
        if self.temporal_stride:
            text += f"-ts-{self.temporal_pool}" if self.family == "tsn" else "-ts"
        return text


def model_variant(model: nn.Module) -> Variant | None:
    """The variant of one of our models (None for a model this module does not know)."""
    family = getattr(model, "family", None)
    if family == "tsn":
        pool = getattr(model, "temporal_pool", None) or ""
        return Variant("tsn", temporal_stride=bool(pool), temporal_pool=pool)
    if family in ("i3d", "r2plus1d"):
        return Variant(family, temporal_stride=bool(model.temporal_stride),
                       depthwise_temporal=bool(getattr(model, "depthwise_temporal", False)))
    if family == "timesformer":
        return Variant("timesformer", attention="divided_space_time")
    return None


# IBM's network name inside `arch`: an optional temporal module, the backbone, the depth, then
# `-dw-t-conv` and `-ts[-max|-avg]`, followed by `-f<frames>` (or the end).
_IBM_NET = re.compile(r"(?:^|-)(?:(?P<module>[A-Za-z]+-b\d+-[a-z]+(?:-allc)?)-)?"
                      r"(?P<base>i3d-resnet|s3d-resnet|resnet)-(?P<depth>\d+)(?P<dw>-dw-t-conv)?"
                      r"(?P<ts>-ts(?:-(?P<pool>max|avg))?)?(?=-f\d|$)")
_FB_ATTENTION = re.compile(r"ATTENTION_TYPE:\s*['\"]?(\w+)")


def _registered_variant(name: str) -> Variant | None:
    from synapt_fast.models.registry import create_model, list_models

    if name not in list_models():
        return None
    try:
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            return model_variant(create_model(name, num_classes=1))
    except NotImplementedError:  # a builder that reads tensor values (TimeSformer): one variant only
        return None


def checkpoint_variant(obj) -> tuple[Variant | None, str]:
    """``(variant, what the checkpoint says)`` from IBM's or our `arch`, or FB TimeSformer's `cfg`;
    ``(None, "")`` when it says nothing this module can read."""
    if not isinstance(obj, dict):
        return None, ""
    arch = obj.get("arch")
    if isinstance(arch, str) and arch:
        ours = _registered_variant(arch)
        if ours is not None:
            return ours, f"arch {arch!r}"
        m = _IBM_NET.search(arch)
        if m:
            family = {"resnet": "tsn", "i3d-resnet": "i3d", "s3d-resnet": "r2plus1d"}[m["base"]]
            return Variant(family, temporal_stride=bool(m["ts"]), temporal_pool=m["pool"] or "",
                           depthwise_temporal=bool(m["dw"]), temporal_module=m["module"] or ""), f"arch {arch!r}"
    cfg = obj.get("cfg")
    if isinstance(cfg, str):
        m = _FB_ATTENTION.search(cfg)
        if m:
            return Variant("timesformer", attention=m[1]), f"cfg ATTENTION_TYPE {m[1]!r}"
    return None, ""


def matching_models(variant: Variant, like: str = "") -> list[str]:
    """Registered models of `variant` (of the same size as `like`: tiny with tiny)."""
    from synapt_fast.models.registry import list_models

    tiny = "tiny" in like
    prefix = {"tsn": "tsn_", "i3d": "i3d_", "r2plus1d": "r2plus1d_"}.get(variant.family)
    if prefix is None:
        return []
    return [n for n in list_models(prefix) if n.startswith(prefix) and ("tiny" in n) == tiny
            and _registered_variant(n) == variant]


def check_variant(model: nn.Module, obj, name: str) -> None:
    """Refuse a checkpoint trained as another temporal variant than `model` (see the module docstring)."""
    want = model_variant(model)
    have, said = checkpoint_variant(obj)
    if want is None or have is None or want == have or have.family != want.family:
        return  # unknown on either side, or another family: the key and shape checks decide
    fits = matching_models(have, like=getattr(model, "registered_name", ""))
    hint = f"; the matching model: {', '.join(fits)}" if fits else ""
    raise CheckpointMismatch(
        f"{name}: trained as {have.describe()} ({said}), but the model is {want.describe()}: the keys "
        f"match but the temporal design does not, so its logits would be wrong{hint}")


# --- ImageNet weights ---------------------------------------------------------------------------

def load_imagenet(model: nn.Module, source, *, min_match: float = 0.5) -> LoadReport:
    """Load ImageNet 2D weights: torchvision ResNet into TSN / I3D / R(2+1)D, timm ViT into
    TimeSformer. The ImageNet classifier is never loaded: the model keeps its own new head."""
    sd, name = read_state_dict(source)
    family = getattr(model, "family", None)
    if family == "timesformer":
        sd = vit_to_timesformer(sd, model)
    elif family in ("i3d", "r2plus1d"):
        sd = inflate_2d_to_3d(sd, model.state_dict())
    elif family != "tsn":
        raise ValueError(f"no ImageNet import for model family {family!r}")
    return load_state_dict_checked(model, sd, source=f"ImageNet weights {name}", min_match=min_match,
                                   new_classifier=True)


def inflate_2d_to_3d(sd2d: StateDict, sd3d: StateDict) -> StateDict:
    """IBM inflation: every 4D conv weight whose key exists in the 3D model gets a time axis
    (dim 2) and is repeated to the 3D kernel's temporal size, without dividing. Other tensors
    (BN, fc) pass through unchanged; keys the 3D model lacks pass through to be reported."""
    out = {}
    for key, value in sd2d.items():
        target = sd3d.get(key)
        if target is not None and value.dim() == 4 and target.dim() == 5 and key.endswith("weight"):
            value = value.unsqueeze(2).repeat(1, 1, target.shape[2], 1, 1)
        out[key] = value
    return out


def vit_to_timesformer(sd: StateDict, model: nn.Module) -> StateDict:
    """timm-named ViT weights -> TimeSformer keys, as the reference `load_pretrained` does:
    patch-embedding reshaped to a conv if stored as a linear, embeddings resized, and each
    block's `attn` / `norm1` copied into `temporal_attn` / `temporal_norm1` where the source has
    none. `temporal_fc` and `time_embed` keep their initialisation (zero / zeros)."""
    sd = dict(sd)
    w = sd.get("patch_embed.proj.weight")
    if w is not None and w.dim() == 2:  # manual patchify + linear checkpoints
        p = model.patch_size
        sd["patch_embed.proj.weight"] = w.reshape(w.shape[0], 3, p, p)
    for key in list(sd):
        if key.startswith("blocks.") and (".attn." in key or ".norm1." in key):
            new = key.replace(".attn.", ".temporal_attn.").replace(".norm1.", ".temporal_norm1.")
            sd.setdefault(new, sd[key])
    return _resize_timesformer_embeddings(sd, model)


def _resize_timesformer_embeddings(sd: StateDict, model: nn.Module) -> StateDict:
    """Nearest-resize `pos_embed` (on the 2D patch grid) and `time_embed` to the model's sizes."""
    sd = dict(sd)
    pos, want = sd.get("pos_embed"), model.pos_embed.shape[1]
    if pos is not None and pos.shape[1] != want and pos.shape[-1] == model.pos_embed.shape[-1]:
        side, new_side = int((pos.shape[1] - 1) ** 0.5), int((want - 1) ** 0.5)
        grid = pos[:, 1:].transpose(1, 2).reshape(1, -1, side, side)
        grid = F.interpolate(grid, size=(new_side, new_side), mode="nearest")
        sd["pos_embed"] = torch.cat((pos[:, :1], grid.flatten(2).transpose(1, 2)), 1)
    time, frames = sd.get("time_embed"), model.time_embed.shape[1]
    if time is not None and time.shape[1] != frames and time.shape[-1] == model.time_embed.shape[-1]:
        sd["time_embed"] = F.interpolate(time.transpose(1, 2), size=frames, mode="nearest").transpose(1, 2)
    return sd
